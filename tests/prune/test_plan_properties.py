"""Property tests of the planner over random repositories.

Random tags (source, generated, other), digests, times, tag and manifest locks, indexes (nested,
shared children, dangling references), referrers, unknown media types, and listings that disagree
(tags pointing at digests the manifests listing lacks, tags only the manifests listing shows).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retag.oci import KNOWN_MEDIA_TYPES, OCI_INDEX
from retag.prune.plan import (
    DeleteReason,
    KeepReason,
    PrunePolicy,
    RepositoryPlan,
    plan_repository,
)
from retag.registry import ManifestInfo, TagInfo
from tests.prune.builders import DOCKER_MANIFEST, NOW, digest, gen_name, policy

MEDIA_TYPES = [
    DOCKER_MANIFEST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
    None,
]
AGES_HOURS = st.integers(min_value=-3, max_value=24 * 40)


@dataclass(frozen=True)
class Repo:
    tags: list[TagInfo]
    manifests: list[ManifestInfo] | None
    policy: PrunePolicy


@st.composite
def repos(draw: st.DrawFn) -> Repo:
    n_manifests = draw(st.integers(min_value=0, max_value=10))
    digests = [digest(i + 1) for i in range(n_manifests)]
    extra_digests = [digest(1000 + i) for i in range(2)]  # known to the tags listing only

    manifests: list[ManifestInfo] = []
    for i, d in enumerate(digests):
        media_type = draw(st.sampled_from(MEDIA_TYPES))
        # References only to earlier manifests (acyclic), sometimes dangling.
        refs: list[str] = []
        if i and draw(st.booleans()):
            refs = draw(
                st.lists(st.sampled_from([*digests[:i], digest(9999)]), max_size=3, unique=True)
            )
        updated = NOW - timedelta(hours=draw(AGES_HOURS))
        manifests.append(
            ManifestInfo(
                digest=d,
                media_type=media_type,
                tags=(),
                created_on=updated - timedelta(hours=draw(st.integers(0, 5))),
                last_updated_on=updated,
                references=tuple(refs),
                has_subject=draw(st.booleans()) and draw(st.booleans()),
                can_delete=draw(st.integers(0, 5)) > 0,
                can_write=draw(st.integers(0, 5)) > 0,
            )
        )

    tags: list[TagInfo] = []
    targets = digests + extra_digests
    n_tags = draw(st.integers(min_value=0, max_value=14))
    names: set[str] = set()
    for _ in range(n_tags):
        d = draw(st.sampled_from(targets))
        updated = NOW - timedelta(hours=draw(AGES_HOURS), seconds=draw(st.integers(0, 59)))
        kind = draw(
            st.sampled_from(
                ["generated", "generated", "generated", "source", "stable-src", "other"]
            )
        )
        if kind == "generated":
            name = gen_name(updated, d, draw(st.sampled_from(["latest", "stable"])))
        elif kind == "source":
            name = "latest"
        elif kind == "stable-src":
            name = "stable"
        else:
            name = draw(st.sampled_from(["v1", "v2", "prod", "latest-old", "latest_123"]))
        if name in names:
            continue
        names.add(name)
        tags.append(
            TagInfo(
                name=name,
                digest=d,
                created_on=updated - timedelta(hours=draw(st.integers(0, 3))),
                last_updated_on=updated,
                can_delete=draw(st.integers(0, 12)) > 0,
                can_write=draw(st.integers(0, 12)) > 0,
            )
        )

    listed: list[ManifestInfo] | None = None
    if draw(st.integers(0, 4)) > 0:
        listed = []
        for m in manifests:
            on = [t.name for t in tags if t.digest == m.digest]
            if draw(st.integers(0, 9)) == 0:
                on.append("only-in-manifests-listing")
            listed.append(replace(m, tags=tuple(on)))
    pol = policy(
        keep=draw(st.integers(0, 4)),
        min_age=timedelta(hours=draw(st.sampled_from([0, 1, 24, 24 * 7]))),
        untagged=draw(st.booleans()),
        scope=draw(st.sampled_from(["generated", "all"])),
        source_tags=draw(st.sampled_from([("latest",), ("latest", "stable")])),
    )
    return Repo(tags, listed, pol)


def _age(created: object, updated: object) -> timedelta:
    return NOW - max(created, updated)  # type: ignore[type-var, operator]


def source_digests(repo: Repo) -> set[str]:
    out = {t.digest for t in repo.tags if t.name in repo.policy.source_tags}
    for m in repo.manifests or ():
        if set(m.tags) & repo.policy.source_tags:
            out.add(m.digest)
    return out


def apply(repo: Repo, plan: RepositoryPlan) -> Repo:
    """What the registry looks like after every deletion of the plan succeeded."""
    gone_tags = {d.name for d in plan.deletions if d.kind == "tag"}
    gone_manifests = {d.digest for d in plan.deletions if d.kind == "manifest"}
    tags = [t for t in repo.tags if t.name not in gone_tags and t.digest not in gone_manifests]
    manifests = None
    if repo.manifests is not None:
        manifests = [
            replace(m, tags=tuple(n for n in m.tags if n not in gone_tags))
            for m in repo.manifests
            if m.digest not in gone_manifests
        ]
    return Repo(tags, manifests, repo.policy)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_every_item_is_either_deleted_or_kept_with_one_reason(
    repo: Repo, plan: RepositoryPlan
) -> None:
    entries = [("tag", k.name) for k in plan.kept if k.kind == "tag"]
    entries += [("tag", d.name) for d in plan.deletions if d.kind == "tag"]
    assert sorted(entries) == sorted(("tag", n) for n in {t.name for t in repo.tags})
    if repo.manifests is None:
        assert all(k.kind == "tag" for k in plan.kept)
        assert all(d.kind == "tag" for d in plan.deletions)
    else:
        m_entries = [k.name for k in plan.kept if k.kind == "manifest"]
        m_entries += [d.name for d in plan.deletions if d.kind == "manifest"]
        assert sorted(m_entries) == sorted(m.digest for m in repo.manifests)


def check_plan_never_deletes_a_protected_tag(repo: Repo, plan: RepositoryPlan) -> None:
    sources = source_digests(repo)
    by_name = {t.name: t for t in repo.tags}
    manifest_by_digest = {m.digest: m for m in repo.manifests or ()}
    for d in plan.deletions:
        if d.kind != "tag":
            continue
        t = by_name[d.name]
        assert d.reason is DeleteReason.EXPIRED
        assert t.name not in repo.policy.source_tags
        assert t.digest not in sources
        assert repo.policy.is_candidate(t.name)
        assert _age(t.created_on, t.last_updated_on) >= repo.policy.min_age
        assert not t.locked
        m = manifest_by_digest.get(t.digest)
        assert m is None or not m.locked
        # The manifests listing never shows the tag elsewhere.
        assert all(
            t.name not in m2.tags or m2.digest == t.digest for m2 in manifest_by_digest.values()
        )


def check_plan_never_deletes_a_protected_manifest(repo: Repo, plan: RepositoryPlan) -> None:
    doomed = [d for d in plan.deletions if d.kind == "manifest"]
    if not doomed:
        return
    assert repo.manifests is not None
    assert repo.policy.untagged
    deleted_tags = {(d.name, d.digest) for d in plan.deletions if d.kind == "tag"}
    doomed_digests = {d.digest for d in doomed}
    manifest_by_digest = {m.digest: m for m in repo.manifests}
    survivors = [m for m in repo.manifests if m.digest not in doomed_digests]
    # Transitive closure of references from every manifest that stays.
    reachable: set[str] = set()
    stack = [r for m in survivors for r in m.references]
    while stack:
        r = stack.pop()
        if r not in reachable:
            reachable.add(r)
            stack.extend(manifest_by_digest[r].references if r in manifest_by_digest else ())
    position = {d.digest: i for i, d in enumerate(plan.deletions)}
    for d in doomed:
        m = manifest_by_digest[d.digest]
        tags_here = {t.name for t in repo.tags if t.digest == m.digest} | set(m.tags)
        assert all((n, m.digest) in deleted_tags for n in tags_here), (
            "would delete a tagged manifest"
        )
        assert d.reason is (
            DeleteReason.UNTAGGED_AFTER_PRUNE if tags_here else DeleteReason.UNTAGGED
        )
        assert m.digest not in source_digests(repo)
        assert m.digest not in reachable, "child of a surviving index"
        assert not m.has_subject
        assert m.media_type in KNOWN_MEDIA_TYPES
        assert _age(m.created_on, m.last_updated_on) >= repo.policy.min_age
        assert not m.locked
        # Parents (doomed indexes referencing it) are deleted first.
        for parent in d.parents:
            assert position[parent] < position[d.digest]
        assert set(d.parents) == {
            p.digest for p in doomed_m(doomed, manifest_by_digest) if d.digest in p.references
        }
        # Tags first, then manifests.
        assert all(position[d.digest] > i for i, x in enumerate(plan.deletions) if x.kind == "tag")


def doomed_m(doomed: list, manifest_by_digest: dict[str, ManifestInfo]) -> list[ManifestInfo]:  # type: ignore[type-arg]
    return [manifest_by_digest[d.digest] for d in doomed]


def check_keeps_exactly_the_newest_candidates(repo: Repo, plan: RepositoryPlan) -> None:
    sources = source_digests(repo)
    conflicting = {
        n
        for m in repo.manifests or ()
        for n in m.tags
        for t in repo.tags
        if t.name == n and t.digest != m.digest
    }
    candidates = [
        t
        for t in repo.tags
        if t.name not in repo.policy.source_tags
        and t.digest not in sources
        and t.name not in conflicting
        and repo.policy.is_candidate(t.name)
    ]
    expected = sorted(candidates, key=lambda t: (t.last_updated_on, t.name), reverse=True)[
        : repo.policy.keep
    ]
    newest = {k.name for k in plan.kept if k.reason is KeepReason.NEWEST}
    assert newest == {t.name for t in expected}
    assert len(newest) == min(repo.policy.keep, len(candidates))
    # Nothing newer than a deleted tag is deleted for lack of a reason: every deleted candidate
    # is older than (or tied below) every kept-as-newest one.
    for d in plan.deletions:
        if d.kind == "tag":
            t = next(t for t in repo.tags if t.name == d.name)
            assert all((t.last_updated_on, t.name) < (e.last_updated_on, e.name) for e in expected)


def check_kept_reasons_are_true(repo: Repo, plan: RepositoryPlan) -> None:
    by_name = {t.name: t for t in repo.tags}
    manifest_by_digest = {m.digest: m for m in repo.manifests or ()}
    for k in plan.kept:
        if k.kind == "tag":
            t = by_name[k.name]
            if k.reason is KeepReason.TOO_YOUNG:
                assert _age(t.created_on, t.last_updated_on) < repo.policy.min_age
            elif k.reason is KeepReason.LOCKED:
                assert t.locked
            elif k.reason is KeepReason.MANIFEST_LOCKED:
                assert manifest_by_digest[t.digest].locked
            elif k.reason is KeepReason.NOT_A_CANDIDATE:
                assert not repo.policy.is_candidate(t.name)
            elif k.reason is KeepReason.SOURCE_TAG:
                assert t.name in repo.policy.source_tags
            else:
                assert k.reason in (
                    KeepReason.NEWEST,
                    KeepReason.ON_SOURCE_DIGEST,
                    KeepReason.INCONSISTENT_LISTING,
                )
        else:
            m = manifest_by_digest[k.digest]
            if k.reason is KeepReason.HAS_SUBJECT:
                assert m.has_subject
            elif k.reason is KeepReason.UNKNOWN_MEDIA_TYPE:
                assert m.media_type not in KNOWN_MEDIA_TYPES
            elif k.reason is KeepReason.MANIFEST_LOCKED:
                assert m.locked
            elif k.reason is KeepReason.UNTAGGED_DISABLED:
                assert not repo.policy.untagged
            elif k.reason is KeepReason.REFERENCED_BY_INDEX:
                assert any(k.digest in other.references for other in repo.manifests or ())


def check_applying_the_plan_then_replanning_deletes_nothing_more(
    repo: Repo, plan: RepositoryPlan
) -> None:
    after = apply(repo, plan)
    again = plan_repository("app", after.tags, after.manifests, after.policy, NOW)
    assert again.deletions == ()
    # And the kept items keep their reasons (the plan is a fixpoint, not just empty).
    assert {(k.kind, k.name, k.reason) for k in again.kept} <= {
        (k.kind, k.name, k.reason) for k in plan.kept
    }


def check_planning_is_deterministic_and_order_independent(repo: Repo, plan: RepositoryPlan) -> None:
    shuffled = plan_repository(
        "app",
        list(reversed(repo.tags)),
        None if repo.manifests is None else list(reversed(repo.manifests)),
        repo.policy,
        NOW,
    )
    assert sorted(plan.deletions, key=repr) == sorted(shuffled.deletions, key=repr)
    assert sorted(plan.kept, key=repr) == sorted(shuffled.kept, key=repr)


@SETTINGS
@given(repos())
def test_plan_invariants(repo: Repo) -> None:
    """Partition, no protected item deleted, exactly the newest N kept, every reason true."""
    plan = plan_repository("app", repo.tags, repo.manifests, repo.policy, NOW)
    check_every_item_is_either_deleted_or_kept_with_one_reason(repo, plan)
    check_plan_never_deletes_a_protected_tag(repo, plan)
    check_plan_never_deletes_a_protected_manifest(repo, plan)
    check_keeps_exactly_the_newest_candidates(repo, plan)
    check_kept_reasons_are_true(repo, plan)


@SETTINGS
@given(repos())
def test_plan_is_a_fixpoint_and_deterministic(repo: Repo) -> None:
    """Applying the plan and planning again deletes nothing; listing order does not matter."""
    plan = plan_repository("app", repo.tags, repo.manifests, repo.policy, NOW)
    check_applying_the_plan_then_replanning_deletes_nothing_more(repo, plan)
    check_planning_is_deterministic_and_order_independent(repo, plan)
