"""The prune executor against the emulator, through the real adapter and azure-containerregistry.

Ages come from the emulator's controllable clock: content is pushed "in the past" and the run
measures ages against the emulator's own `now`.
"""

from __future__ import annotations

from datetime import timedelta

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.prune.job import prune_registry
from retag.prune.plan import PrunePolicy
from retag.prune.report import PruneReport
from tests.prune.emulated import TEMPLATE, Seeder, deletes, manifests_of, tags_of
from tests.support.images import oci_image, oci_index, referrer


def policy(*, keep: int = 2, untagged: bool = False, scope: str = "generated") -> PrunePolicy:
    return PrunePolicy.for_scope(
        scope,  # type: ignore[arg-type]
        source_tags=["latest"],
        is_generated=TEMPLATE.is_generated,
        keep=keep,
        min_age=timedelta(days=7),
        untagged=untagged,
    )


def run(
    acr: Emulator, registry: AcrRegistry, pol: PrunePolicy, mode: str, **kw: object
) -> PruneReport:
    return prune_registry(registry, pol, mode=mode, now=acr.now, **kw)  # type: ignore[arg-type]


def outcome(report: PruneReport, repository: str = "app") -> dict[str, str]:
    """item name -> keep reason, "deleted" or "failed"."""
    (result,) = [r for r in report.repositories if r.repository == repository]
    out = {k.name: k.reason.value for k in result.kept}
    out.update({d.name: "deleted" for d in result.deleted})
    out.update({f.item.name: "failed" for f in result.failed})
    return out


class Scene:
    """One repository exercising every tag rule and every untagged-manifest rule."""

    def __init__(self, s: Seeder) -> None:
        self.src = s.image()
        s.push("app", self.src, "latest", at=s.ago(days=60))
        self.on_source = TEMPLATE.render("latest", s.ago(days=60), self.src.digest)
        s.tag("app", self.src, self.on_source, at=s.ago(days=60))
        self.old = [s.generated("app", at=s.ago(days=d)) for d in (50, 40, 30, 20, 15)]
        self.young = [s.generated("app", at=s.ago(days=d)) for d in (2, 1)]
        s.lock_tag("app", self.old[4][0], deleteEnabled=False)
        s.lock_manifest("app", self.old[3][1].digest, writeEnabled=False)
        s.tag("app", self.old[0][1], "v1.0", at=s.ago(days=50))
        self.untagged = s.image()
        s.push("app", self.untagged, None, at=s.ago(days=30))
        self.multi = oci_index(seed=101, layer_size=64)
        s.push("app", self.multi, "multi", at=s.ago(days=30))
        self.orphan = oci_index(seed=202, layer_size=64)
        s.push("app", self.orphan, None, at=s.ago(days=30))
        self.sbom = referrer(self.src, seed=303)
        s.push("app", self.sbom, None, at=s.ago(days=30))
        self.fresh = oci_image(seed=404, layer_size=64)
        s.push("app", self.fresh, None, at=s.ago(hours=3))
        s.now()

    def expected_tags(self) -> dict[str, str]:
        old = [name for name, _ in self.old]
        return {
            "latest": "source-tag",
            self.on_source: "on-source-digest",
            self.young[1][0]: "newest-n",
            self.young[0][0]: "newest-n",
            old[4]: "locked",
            old[3]: "manifest-locked",
            old[2]: "deleted",
            old[1]: "deleted",
            old[0]: "deleted",
            "v1.0": "not-a-candidate",
            "multi": "not-a-candidate",
        }

    def expected_manifests(self, *, untagged: bool) -> dict[str, str]:
        tagged = [self.src, self.old[0][1], self.old[3][1], self.old[4][1], self.multi]
        tagged += [image for _, image in self.young]
        out = {image.digest: "tagged" for image in tagged}
        loose = {
            self.old[1][1].digest: "deleted",
            self.old[2][1].digest: "deleted",
            self.untagged.digest: "deleted",
            self.orphan.digest: "deleted",
            **{c.digest: "deleted" for c in self.orphan.children},
            **{c.digest: "referenced-by-index" for c in self.multi.children},
            self.sbom.digest: "has-subject",
            self.fresh.digest: "too-young",
        }
        if not untagged:
            loose = dict.fromkeys(loose, "untagged-disabled")
        return out | loose


def test_every_tag_rule_dry_run_then_delete(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    scene = Scene(seed)
    before_tags, before_manifests = tags_of(acr, "app"), manifests_of(acr, "app")
    acr.clear_requests()

    dry = run(acr, registry, policy(keep=2), "dry-run")
    assert deletes(acr, accepted_only=False) == [], "dry-run sent a DELETE"
    assert tags_of(acr, "app") == before_tags
    assert outcome(dry) == scene.expected_tags() | scene.expected_manifests(untagged=False)
    planned = [(d.kind, d.name) for d in dry.repositories[0].deleted]
    old = [name for name, _ in scene.old]
    assert planned == [("tag", old[0]), ("tag", old[1]), ("tag", old[2])]  # oldest first

    real = run(acr, registry, policy(keep=2), "delete")
    assert real.ok
    assert real.complete
    assert [(d.kind, d.name) for d in real.repositories[0].deleted] == planned
    assert outcome(real) == outcome(dry)
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in deletes(acr)) == sorted(old[:3])
    assert set(tags_of(acr, "app")) == set(before_tags) - set(old[:3])
    assert manifests_of(acr, "app") == before_manifests, "a tag delete removed a manifest"

    again = run(acr, registry, policy(keep=2), "delete")
    assert again.totals()["deleted_tags"] == 0


def test_untagged_rules_keep_multi_arch_children_and_referrers(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    scene = Scene(seed)
    before_tags, before_manifests = tags_of(acr, "app"), manifests_of(acr, "app")
    acr.clear_requests()

    dry = run(acr, registry, policy(keep=2, untagged=True), "dry-run")
    assert deletes(acr, accepted_only=False) == []
    expected = scene.expected_tags() | scene.expected_manifests(untagged=True)
    assert outcome(dry) == expected
    # Every index was read for its children (ACR lists indexes without references), and the
    # untagged OCI index's OCI children for a `subject`, before planning.
    reads = [
        r["path"]
        for r in acr.requests()
        if r["method"] == "GET" and "/v2/" in r["path"] and r["status"] == 200
    ]
    assert sorted(p.rsplit("/", 1)[-1] for p in reads) == sorted(
        [scene.multi.digest, scene.orphan.digest, *(c.digest for c in scene.orphan.children)]
    )

    acr.clear_requests()
    real = run(acr, registry, policy(keep=2, untagged=True), "delete")
    assert real.ok
    assert real.complete
    assert outcome(real) == expected
    assert [(d.kind, d.name) for d in real.repositories[0].deleted] == [
        (d.kind, d.name) for d in dry.repositories[0].deleted
    ]
    doomed = {name for name, value in expected.items() if value == "deleted"}
    assert set(tags_of(acr, "app")) == set(before_tags) - doomed
    assert manifests_of(acr, "app") == before_manifests - doomed
    # The multi-arch image is whole: index and both platform manifests.
    assert {scene.multi.digest, *(c.digest for c in scene.multi.children)} <= manifests_of(
        acr, "app"
    )
    # The untagged index went before its children; tags before any manifest.
    order = [r["path"].rsplit("/", 1)[-1] for r in deletes(acr)]
    assert order.index(scene.orphan.digest) < min(
        order.index(c.digest) for c in scene.orphan.children
    )
    tag_positions = [i for i, r in enumerate(deletes(acr)) if "/_tags/" in r["path"]]
    manifest_positions = [i for i, r in enumerate(deletes(acr)) if "/manifests/" in r["path"]]
    assert max(tag_positions) < min(manifest_positions)

    assert (
        run(acr, registry, policy(keep=2, untagged=True), "delete").totals()["deleted_manifests"]
        == 0
    )


def old_tags(seed: Seeder, repository: str, count: int, *, days: float = 30) -> list[str]:
    """`count` old generated tags, each on its own image (oldest first)."""
    names = [
        seed.generated(repository, at=seed.ago(days=days, minutes=count - i))[0]
        for i in range(count)
    ]
    seed.now()
    return names


def test_manifest_that_gains_a_tag_before_its_deletion_is_kept(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    """Re-read right before deleting an untagged manifest: a tag pushed meanwhile is not lost."""
    (old,) = old_tags(seed, "app", 1)
    loose = seed.image()
    seed.push("app", loose, None, at=seed.ago(days=30))
    seed.now()
    pushed: list[str] = []

    def push_tag_meanwhile(_: object) -> None:
        if not pushed:  # after the tag deletion, before the manifest phase
            seed.tag("app", loose, "rescued", at=acr.now())
            pushed.append("rescued")

    report = run(
        acr,
        registry,
        policy(keep=0, untagged=True),
        "delete",
        concurrency=1,
        progress=push_tag_meanwhile,
    )
    assert pushed == ["rescued"]
    got = outcome(report)
    assert got[old] == "deleted"
    assert got[loose.digest] == "gained-tag"
    assert tags_of(acr, "app")["rescued"] == loose.digest
    assert loose.digest in manifests_of(acr, "app")
    assert report.ok


def test_tag_locked_after_planning_is_kept_not_failed(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    names = old_tags(seed, "app", 3)

    def lock_last(_: object) -> None:
        seed.lock_tag("app", names[2], deleteEnabled=False)

    report = run(acr, registry, policy(keep=0), "delete", concurrency=1, progress=lock_last)
    got = outcome(report)
    assert [got[n] for n in names] == ["deleted", "deleted", "locked"]
    assert report.ok
    assert set(tags_of(acr, "app")) == {names[2]}


def test_throttling_is_absorbed_not_failed(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    names = old_tags(seed, "app", 40)
    acr.clear_requests()
    acr.set_faults(rate_limit_per_second=25)
    report = run(acr, registry, policy(keep=0), "delete", concurrency=8)
    acr.clear_faults()
    assert report.ok, report.render_table()
    assert report.complete
    assert report.totals()["deleted_tags"] == 40
    assert tags_of(acr, "app") == {}
    assert any(r["status"] == 429 for r in acr.requests()), "the test did not throttle"
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in deletes(acr)) == sorted(names)


def test_server_errors_are_retried_and_never_abort_the_run(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    names = old_tags(seed, "app", 30)
    old_tags(seed, "other", 10)
    acr.clear_requests()
    acr.set_faults(error_rate=0.3, error_status=503, seed=7)
    report = run(acr, registry, policy(keep=0), "delete", concurrency=4)
    acr.clear_faults()
    assert sum(1 for r in acr.requests() if r["status"] == 503) > 5
    assert report.ok, report.render_table()
    assert report.totals()["deleted_tags"] == 40
    assert tags_of(acr, "app") == {}
    assert len(names) == 30


def test_time_box_stops_starting_deletions_then_the_next_run_resumes(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    names = old_tags(seed, "a", 12)
    other = old_tags(seed, "b", 3)

    def deletions_so_far() -> float:
        """A clock that ticks one second per accepted DELETE: deterministic time box."""
        return float(len(deletes(acr)))

    first = run(
        acr,
        registry,
        policy(keep=0),
        "delete",
        concurrency=1,
        clock=deletions_so_far,
        max_duration=timedelta(seconds=5),
    )
    (a,) = first.repositories
    assert len(a.deleted) == 5
    assert [d.name for d in a.remaining] == names[5:]
    assert first.unvisited == ["b"]
    assert not first.complete
    # Issue 11: a run stopped by its time box with work left did not do what it was asked.
    assert not first.ok
    assert first.error == (
        "time box of 5s reached: 7 deletion(s) and 1 repositories left for the next run"
    )
    assert f"error: {first.error}" in first.render_table()
    assert set(tags_of(acr, "a")) == set(names[5:])

    second = run(acr, registry, policy(keep=0), "delete")
    assert second.complete
    assert second.ok
    assert second.totals()["deleted_tags"] == 7 + 3
    assert tags_of(acr, "a") == tags_of(acr, "b") == {}
    assert len(other) == 3


def test_requests_one_per_deletion_and_one_per_listing_page(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    seed.generated_on_one_image("app", 150)
    seed.now()
    run(acr, registry, policy(keep=0), "dry-run")  # warm the token cache for every scope
    acr.clear_requests()
    report = run(acr, registry, policy(keep=0), "delete")
    assert report.totals()["deleted_tags"] == 150
    by_kind: dict[str, int] = {}
    for r in acr.requests():
        path = r["path"]
        kind = (
            "catalog"
            if path.endswith("_catalog")
            else path.rsplit("/", 1)[-1]
            if r["method"] == "GET"
            else r["method"]
        )
        by_kind[kind] = by_kind.get(kind, 0) + 1
    # 150 tags: two pages at 100 per page; one manifest: one page.
    assert by_kind.get("_tags") == 2
    assert by_kind.get("_manifests") == 1
    assert by_kind.get("catalog") == 1
    assert by_kind.get("DELETE", 0) <= 150 + 8  # +1 challenge per worker that started cold
    assert report.requests == len(acr.requests())


def test_repository_filter_and_permission_errors() -> None:
    """A registry where anonymous callers may read but not delete: every deletion fails, the run
    finishes, and repositories outside the filter are never listed."""
    with Emulator(
        anonymous=True, anonymous_actions={"pull", "push", "metadata_read", "metadata_write"}
    ) as acr:
        seed = Seeder(acr)
        try:
            old_tags(seed, "team/app", 7)
            old_tags(seed, "skip-me", 2)
            acr.clear_requests()
            with AcrRegistry(
                acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle
            ) as client:
                report = run(
                    acr, client, policy(keep=0), "delete", repositories=r"team/.*", concurrency=2
                )
        finally:
            seed.close()
        assert [r.repository for r in report.repositories] == ["team/app"]
        assert not any("skip-me" in r["path"] for r in acr.requests())
        (result,) = report.repositories
        assert not report.ok
        assert len(result.failed) == 7
        assert all("permission denied" in f.error for f in result.failed)
        # After 5 refusals in a row the rest is reported without asking again.
        asked = {r["path"] for r in acr.requests() if r["method"] == "DELETE"}
        assert 5 <= len(asked) < 7
        assert sum(1 for f in result.failed if f.error.endswith("(not attempted)")) == 7 - len(
            asked
        )
        assert len(tags_of(acr, "team/app")) == 7
        assert "permission denied" in report.render_table()


def test_ctrl_c_during_delete_returns_the_partial_report(
    acr: Emulator, registry: AcrRegistry, seed: Seeder
) -> None:
    """Issue 11: Ctrl-C (a real SIGINT sent to the main thread) while deletions run: in-flight
    work finishes, nothing new starts, and the report says what was deleted."""
    import signal
    import threading
    import time

    old_tags(seed, "a", 15)
    old_tags(seed, "b", 15)
    acr.clear_requests()
    acr.set_faults(latency_ms=30)

    def interrupt_after_the_first_delete() -> None:
        deadline = time.monotonic() + 10
        while not deletes(acr) and time.monotonic() < deadline:
            time.sleep(0.005)
        signal.pthread_kill(main, signal.SIGINT)

    main = threading.main_thread().ident
    assert main is not None
    threading.Thread(target=interrupt_after_the_first_delete, daemon=True).start()
    report = run(acr, registry, policy(keep=0), "delete", concurrency=1)
    acr.clear_faults()

    assert report.interrupted
    assert not report.ok
    assert report.error is not None
    assert report.error.startswith("interrupted: ")
    deleted = [d.name for r in report.repositories for d in r.deleted]
    assert 1 <= len(deleted) < 30
    # The partial report is the truth: exactly what the registry accepted.
    assert sorted(deleted) == sorted(r["path"].rsplit("/", 1)[-1] for r in deletes(acr))
    assert report.totals()["remaining"] + len(report.unvisited) > 0
