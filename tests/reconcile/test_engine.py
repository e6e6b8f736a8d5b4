"""Reconciliation against the emulator: the real adapter and SDK over TLS, events lost."""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.on_push import handle_event
from retag.reconcile.job import reconcile_registry
from retag.reconcile.report import ReconcileReport
from retag.registry import Registry, TransientRegistryError
from tests.reconcile.conftest import Pusher, make_registry, make_settings, tags_of, writes
from tests.support.images import oci_index

HOUR = 3600


def reconcile(acr: Emulator, registry: Registry, **options: Any) -> ReconcileReport:
    env = options.pop("env", {})
    options.setdefault("now", acr.now())
    return reconcile_registry(registry, make_settings(acr, **env), **options)


def statuses(report: ReconcileReport) -> dict[str, str]:
    return {result.repository: result.status for result in report.repositories}


def generated(tags: dict[str, str]) -> dict[str, str]:
    return {name: digest for name, digest in tags.items() if name != "latest"}


def per_repository_requests(acr: Emulator) -> Counter[str]:
    """Requests per repository in the emulator log (catalog and token calls excluded)."""
    counts: Counter[str] = Counter()
    for entry in acr.requests():
        path = entry["path"]
        match = re.fullmatch(r"/acr/v1/(.+)/_(?:tags|manifests)(?:/[^/]+)?", path)
        match = match or re.fullmatch(r"/v2/(.+)/(?:manifests|blobs)/.+", path)
        if match:
            counts[match.group(1)] += 1
        elif not path.startswith(("/oauth2/", "/acr/v1/_catalog")):
            counts["(other) " + entry["method"] + " " + path] += 1
    return counts


def test_missed_push_gets_exactly_one_tag_with_its_push_time(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    digest = pusher.push("team/app")
    assert acr.subscribers() == []  # nobody received the ImagePushed event
    pushed_at = registry.get_tag("team/app", "latest").last_updated_on
    acr.advance_clock(HOUR)

    report = reconcile(acr, registry)

    settings = make_settings(acr)
    expected = settings.retag.template.render("latest", pushed_at, digest)
    assert expected.startswith("latest_20261129230")  # the push time, not the reconcile time
    assert tags_of(acr, registry, "team/app") == {"latest": digest, expected: digest}
    assert statuses(report) == {"team/app": "tagged"}
    [result] = report.repositories
    assert result.sources[0].tag == expected
    assert not report.failed
    assert report.complete

    # The second run does nothing, and costs exactly 2 requests for the repository.
    acr.clear_requests()
    again = reconcile(acr, registry)
    assert statuses(again) == {"team/app": "in-sync"}
    assert again.repositories[0].sources[0].tag == expected
    assert writes(acr) == []
    assert per_repository_requests(acr) == {"team/app": 2}
    assert tags_of(acr, registry, "team/app") == {"latest": digest, expected: digest}


def test_in_sync_costs_two_requests_per_repository(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    names = [f"svc-{i}" for i in range(6)] + ["team/deep/app"]
    for name in names:
        pusher.push(name)
    pusher.push("versions-only", tag="v1.0.0")  # no source tag: 1 request, nothing else
    acr.advance_clock(HOUR)
    first = reconcile(acr, registry, concurrency=3)
    assert statuses(first) == {**dict.fromkeys(names, "tagged"), "versions-only": "not-applicable"}

    acr.clear_requests()
    second = reconcile(acr, registry, concurrency=3)
    assert set(statuses(second).values()) == {"in-sync", "not-applicable"}
    assert per_repository_requests(acr) == {**dict.fromkeys(names, 2), "versions-only": 1}
    catalog = [e for e in acr.requests() if e["path"] == "/acr/v1/_catalog"]
    assert len(catalog) == 1
    # tokens are cached per scope: the run's tallies (one per worker thread, summed) count
    # exactly the requests the emulator logged
    assert len(acr.requests()) == second.requests
    assert second.requests == 1 + 2 * len(names) + 1


def test_repository_tagged_by_the_event_path_is_untouched(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    digest = pusher.push("app")
    [event] = [e for e in acr.events() if e["eventType"].endswith("ImagePushed")]
    settings = make_settings(acr)
    outcome = handle_event(event, settings, lambda: registry)  # the event path, on time
    assert outcome.status == "retagged"
    by_event = tags_of(acr, registry, "app")
    assert len(generated(by_event)) == 1
    acr.advance_clock(HOUR)
    acr.clear_requests()

    report = reconcile(acr, registry)

    assert statuses(report) == {"app": "in-sync"}
    assert report.repositories[0].sources[0].tag == outcome.new_tag
    assert writes(acr) == []
    assert tags_of(acr, registry, "app") == by_event == {"latest": digest, outcome.new_tag: digest}


def test_push_within_the_grace_period_is_left_to_the_event_path(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    digest = pusher.push("app")
    acr.advance_clock(5 * 60)
    acr.clear_requests()

    early = reconcile(acr, registry, env={"RECONCILE_GRACE": "15m"})
    assert statuses(early) == {"app": "skipped"}
    assert "grace" in early.repositories[0].reason
    assert writes(acr) == []
    assert tags_of(acr, registry, "app") == {"latest": digest}

    acr.advance_clock(11 * 60)
    late = reconcile(acr, registry, env={"RECONCILE_GRACE": "15m"})
    assert statuses(late) == {"app": "tagged"}
    assert len(generated(tags_of(acr, registry, "app"))) == 1


def test_only_the_latest_push_of_the_source_tag_is_tagged(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    """Two missed pushes: only the digest `latest` points to now gets a tag (level-triggered)."""
    first = pusher.push("app")
    acr.advance_clock(60)
    second = pusher.push("app")
    acr.advance_clock(HOUR)
    reconcile(acr, registry)
    tags = tags_of(acr, registry, "app")
    assert list(generated(tags).values()) == [second]
    assert first not in tags.values()


def test_include_and_exclude_filters_and_repository_regex(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    for name in ("team/a", "team/b", "team/secret", "other/c"):
        pusher.push(name)
    acr.advance_clock(HOUR)
    env = {"RETAG_REPOSITORIES": "team/.*", "RETAG_EXCLUDE_REPOSITORIES": "team/secret"}
    acr.clear_requests()

    narrowed = reconcile(acr, registry, env=env, repository_filter=re.compile("team/[a-z]"))
    assert statuses(narrowed) == {"team/a": "tagged", "team/b": "tagged"}
    assert narrowed.excluded == 2
    touched = set(per_repository_requests(acr))
    assert touched == {"team/a", "team/b"}

    # --repository narrows further (full match), never widens past the retag filters
    only_a = reconcile(acr, registry, env=env, repository_filter=re.compile("team/a|other/c"))
    assert statuses(only_a) == {"team/a": "in-sync"}
    assert only_a.excluded == 3
    for name in ("team/secret", "other/c"):
        assert generated(tags_of(acr, registry, name)) == {}


def test_locked_repository_is_reported_not_forced(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    digest = pusher.push("frozen")
    pusher.push("open")
    pusher.lock_repository("frozen")
    acr.advance_clock(HOUR)

    report = reconcile(acr, registry)

    assert statuses(report) == {"frozen": "skipped", "open": "tagged"}
    assert "locked" in report.repositories[0].reason
    assert tags_of(acr, registry, "frozen") == {"latest": digest}
    assert not report.failed  # a lock is the user's decision, not a failure


def test_existing_tag_with_the_rendered_name_on_another_digest_is_never_moved(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    """With a template that has no digest, the rendered name can exist already: never moved."""
    env = {"RETAG_TAG_TEMPLATE": "{tag}-{timestamp}"}
    digest = pusher.push("app")
    pushed_at = registry.get_tag("app", "latest").last_updated_on
    clash = make_settings(acr, **env).retag.template.render("latest", pushed_at, digest)
    other = pusher.push("app", tag=clash)
    pusher.lock_tag("app", clash)
    acr.advance_clock(HOUR)

    report = reconcile(acr, registry, env=env)

    assert statuses(report) == {"app": "skipped"}
    assert "not overwriting" in report.repositories[0].reason
    assert tags_of(acr, registry, "app") == {"latest": digest, clash: other}


def test_dry_run_writes_nothing(acr: Emulator, registry: AcrRegistry, pusher: Pusher) -> None:
    digests = {name: pusher.push(name) for name in ("a", "b")}
    acr.advance_clock(HOUR)
    acr.clear_requests()

    report = reconcile(acr, registry, mode="dry-run")

    assert statuses(report) == {"a": "would-tag", "b": "would-tag"}
    assert writes(acr) == []
    for name, digest in digests.items():
        assert tags_of(acr, registry, name) == {"latest": digest}
        [source] = report.repositories[0 if name == "a" else 1].sources
        assert source.tag is not None
        assert source.tag.startswith("latest_")
    assert report.mode == "dry-run"
    # ... and apply then creates exactly the tags the dry-run announced
    announced = {r.repository: r.sources[0].tag for r in report.repositories}
    applied = reconcile(acr, registry)
    assert {r.repository: r.sources[0].tag for r in applied.repositories} == announced


def test_multi_arch_index_is_tagged_on_the_index_digest(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    index = oci_index(seed=7)
    digest = pusher.push("multi", image=index)
    acr.advance_clock(HOUR)
    reconcile(acr, registry)
    tags = tags_of(acr, registry, "multi")
    assert set(tags.values()) == {digest}
    assert len(generated(tags)) == 1
    manifest = registry.get_manifest("multi", next(iter(generated(tags))))
    assert manifest.raw == index.raw


def test_every_source_tag_gets_its_own_tag(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    env = {"RETAG_SOURCE_TAGS": "latest,stable"}
    image_digest = pusher.push("app")
    pusher.push("app", tag="stable", image=pusher.images[image_digest])
    pusher.push("only-stable", tag="stable")
    acr.advance_clock(HOUR)

    report = reconcile(acr, registry, env=env)

    assert statuses(report) == {"app": "tagged", "only-stable": "tagged"}
    names = sorted(tags_of(acr, registry, "app"))
    assert [n.split("_")[0] for n in names] == ["latest", "latest", "stable", "stable"]
    assert [s.status for s in report.repositories[1].sources] == ["absent", "tagged"]
    acr.clear_requests()
    again = reconcile(acr, registry, env=env)
    assert set(statuses(again).values()) == {"in-sync"}
    assert per_repository_requests(acr) == {"app": 4, "only-stable": 3}


def test_throttling_is_honoured_and_converges(acr: Emulator, pusher: Pusher) -> None:
    """ACR-style 429 + Retry-After: the adapter waits as told, the engine backs off beyond."""
    names = ["a", "b", "c"]
    for name in names:
        pusher.push(name)
    acr.advance_clock(HOUR)
    acr.set_faults(rate_limit_per_second=5, seed=1)
    with make_registry(acr) as registry:
        report = reconcile(acr, registry, concurrency=3, retry_delay=0.5, max_retry_delay=2.0)
        acr.clear_faults()
        assert any(entry["status"] == 429 for entry in acr.requests())
        assert statuses(report) == dict.fromkeys(names, "tagged")
        for name in names:
            assert len(generated(tags_of(acr, registry, name))) == 1


class SleepClock:
    """A monotonic clock that only moves when the engine sleeps (thread-safe)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def test_transient_errors_are_retried_with_back_off(acr: Emulator, pusher: Pusher) -> None:
    names = [f"svc-{i}" for i in range(4)]
    for name in names:
        pusher.push(name)
    acr.advance_clock(HOUR)
    acr.set_faults(error_rate=0.3, error_status=503, seed=3)
    clock = SleepClock()
    # No adapter retries: every 503 surfaces as TransientRegistryError to the engine's back-off.
    with make_registry(acr, retry_total=0) as impatient:
        report = reconcile(
            acr,
            impatient,
            concurrency=2,
            max_attempts=40,
            max_duration=timedelta(hours=1),
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        )
        acr.clear_faults()
        assert sum(1 for e in acr.requests() if e["status"] == 503) > 0
        assert statuses(report) == dict.fromkeys(names, "tagged")
        assert any(source.attempts > 1 for r in report.repositories for source in r.sources)
        assert clock.sleeps
        for name in names:
            assert len(generated(tags_of(acr, impatient, name))) == 1


def test_unavailable_registry_fails_cleanly_within_the_time_box(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    pusher.push("app")
    acr.advance_clock(HOUR)
    acr.set_faults(error_rate=1.0, error_status=503)
    slept: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    with make_registry(acr, retry_total=0) as impatient:
        report = reconcile(
            acr,
            impatient,
            max_duration=timedelta(seconds=30),
            monotonic=lambda: clock[0],
            sleep=sleep,
            retry_delay=1.0,
        )
    acr.clear_faults()

    assert report.failed
    assert report.error is not None
    assert "listing repositories failed" in report.error
    assert report.repositories == []
    assert slept
    assert sum(slept) < 30  # backed off, never past the time box
    assert all(b > a for a, b in itertools.pairwise(slept))  # exponential


class SlowRegistry:
    """The real adapter, plus a test clock that moves one minute per source-tag read."""

    def __init__(self, inner: AcrRegistry) -> None:
        self.inner = inner
        self.now = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_tag(self, repository: str, tag: str) -> Any:
        self.now += 60.0
        return self.inner.get_tag(repository, tag)


def test_time_box_stops_starting_repositories_and_the_next_run_continues(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    names = [f"repo-{i}" for i in range(5)]
    digests = {name: pusher.push(name) for name in names}
    acr.advance_clock(HOUR)
    slow = SlowRegistry(registry)

    first = reconcile(
        acr,
        slow,  # type: ignore[arg-type]
        concurrency=1,
        max_duration=timedelta(seconds=150),
        monotonic=lambda: slow.now,
    )

    # started at t=0, 60 and 120; at t=180 the 150 s box is over
    assert statuses(first) == {
        "repo-0": "tagged",
        "repo-1": "tagged",
        "repo-2": "tagged",
        "repo-3": "not-reached",
        "repo-4": "not-reached",
    }
    assert not first.complete
    # Issue 11: a run stopped by its time box with work left is not ok, and says why.
    assert not first.ok
    assert first.error == (
        "time box of 2m30s reached: 2 repositories not reached; the next run continues"
    )
    assert "next run" in first.repositories[3].reason
    for name in ("repo-3", "repo-4"):
        assert tags_of(acr, registry, name) == {"latest": digests[name]}

    second = reconcile(acr, registry, concurrency=1)
    assert statuses(second) == {
        "repo-0": "in-sync",
        "repo-1": "in-sync",
        "repo-2": "in-sync",
        "repo-3": "tagged",
        "repo-4": "tagged",
    }
    assert second.complete
    for name in names:
        assert list(generated(tags_of(acr, registry, name)).values()) == [digests[name]]


def test_zero_time_box_starts_nothing(acr: Emulator, registry: AcrRegistry, pusher: Pusher) -> None:
    pusher.push("app")
    acr.advance_clock(HOUR)
    acr.clear_requests()
    report = reconcile(acr, registry, max_duration=timedelta(0))
    assert statuses(report) == {"app": "not-reached"}
    assert per_repository_requests(acr) == {}


class Wrapped:
    """The real adapter with one operation replaced (to inject failures the emulator cannot)."""

    def __init__(self, inner: AcrRegistry, **replacements: Any) -> None:
        self.inner = inner
        self.replacements = replacements

    def __getattr__(self, name: str) -> Any:
        return self.replacements.get(name) or getattr(self.inner, name)


def test_catalog_failure_after_the_time_box_is_reported_with_the_time_box(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    for name in ("a", "b", "c"):
        pusher.push(name)
    acr.advance_clock(HOUR)

    def catalog() -> Any:
        yield "a"
        yield "b"
        raise TransientRegistryError("429 while listing page 2")

    report = reconcile(
        acr,
        Wrapped(registry, list_repositories=catalog),
        max_duration=timedelta(0),
        retry_delay=0.01,
    )
    assert statuses(report) == {"a": "not-reached", "b": "not-reached"}
    assert report.unlisted is not None
    assert report.catalog_error is None  # the listing was cut by the time box, not broken
    # Issue 11: the time box was hit with work left: not ok, and the error says both.
    assert not report.ok
    assert report.error is not None
    assert report.error.startswith("time box of 0s reached: 2 repositories not reached; ")
    assert "429 while listing page 2" in report.error
    assert not report.complete
    assert " ok=false " in report.log_line()


def test_unexpected_errors_fail_one_repository_or_the_listing_never_the_run(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    for name in ("a", "b"):
        pusher.push(name)
    acr.advance_clock(HOUR)

    def get_tag(repository: str, tag: str) -> Any:
        if repository == "a":
            raise RuntimeError("bug in a dependency")
        return registry.get_tag(repository, tag)

    report = reconcile(acr, Wrapped(registry, get_tag=get_tag))
    assert statuses(report) == {"a": "failed", "b": "tagged"}
    assert "RuntimeError: bug in a dependency" in report.repositories[0].reason
    assert report.failed

    def catalog() -> Any:
        yield "a"
        raise ValueError("malformed catalog page")

    broken = reconcile(acr, Wrapped(registry, list_repositories=catalog))
    assert statuses(broken) == {"a": "tagged"}
    assert broken.error == "listing repositories failed: ValueError: malformed catalog page"
    assert broken.failed


def test_repository_deleted_between_listing_and_reading_is_not_applicable(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    pusher.push("real")
    acr.advance_clock(HOUR)

    def catalog() -> Any:
        yield "gone"
        yield from registry.list_repositories()

    report = reconcile(acr, Wrapped(registry, list_repositories=catalog))
    assert statuses(report) == {"gone": "not-applicable", "real": "tagged"}
