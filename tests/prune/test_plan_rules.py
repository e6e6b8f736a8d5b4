"""Table tests: one rule of the planner per case (issue 4, "Semantics")."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from retag.oci import DOCKER_MANIFEST_LIST, OCI_MANIFEST
from retag.prune.plan import (
    DeleteReason,
    KeepReason,
    PrunePolicy,
    RepositoryPlan,
    plan_repository,
)
from retag.registry import ManifestInfo, TagInfo
from tests.prune.builders import (
    NOW,
    ago,
    digest,
    gen_name,
    index,
    is_generated,
    manifest,
    manifests_for,
    policy,
    tag,
)

A, B, C, D, E = (digest(n) for n in range(1, 6))


def reasons(plan: RepositoryPlan) -> dict[str, str]:
    """name -> keep reason value, or 'delete:<reason>'."""
    out = {k.name: k.reason.value for k in plan.kept}
    for d in plan.deletions:
        assert d.name not in out, f"{d.name} both kept and deleted"
        out[d.name] = f"delete:{d.reason.value}"
    return out


def old_generated(n: int, d: str, days: float = 30) -> TagInfo:
    when = ago(days=days, minutes=n)
    return tag(gen_name(when, d), d, when)


# ---------------------------------------------------------------------------------- tag rules


def test_source_tag_and_every_tag_on_its_digest_are_kept() -> None:
    latest = tag("latest", A, ago(days=90))
    on_source = tag(gen_name(ago(days=90), A), A, ago(days=90))
    other = tag(gen_name(ago(days=80), B), B, ago(days=80))
    plan = plan_repository("app", [latest, on_source, other], None, policy(keep=0), NOW)
    assert reasons(plan) == {
        "latest": "source-tag",
        on_source.name: "on-source-digest",
        other.name: "delete:expired",
    }


def test_several_source_tags_each_protect_their_digest() -> None:
    tags = [
        tag("latest", A, ago(days=90)),
        tag("stable", B, ago(days=90)),
        tag(gen_name(ago(days=90), A), A, ago(days=90)),
        tag(gen_name(ago(days=90), B, "stable"), B, ago(days=90)),
        tag(gen_name(ago(days=90), C), C, ago(days=90)),
    ]
    plan = plan_repository("app", tags, None, policy(keep=0, source_tags=("latest", "stable")), NOW)
    got = reasons(plan)
    assert got["latest"] == got["stable"] == "source-tag"
    assert [d.name for d in plan.deletions] == [tags[4].name]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [("generated", "not-a-candidate"), ("all", "delete:expired")],
)
def test_scope_decides_which_tags_are_candidates(scope: str, expected: str) -> None:
    tags = [tag("latest", A, ago(days=90)), tag("v1.2.3", B, ago(days=90))]
    plan = plan_repository("app", tags, None, policy(keep=0, scope=scope), NOW)
    assert reasons(plan)["v1.2.3"] == expected
    assert reasons(plan)["latest"] == "source-tag"


def test_scope_all_never_deletes_source_tags_even_when_they_match_nothing() -> None:
    tags = [tag("latest", A, ago(days=90)), tag("prod", A, ago(days=90))]
    plan = plan_repository("app", tags, None, policy(keep=0, scope="all"), NOW)
    assert plan.deletions == ()
    assert reasons(plan) == {"latest": "source-tag", "prod": "on-source-digest"}


def test_keep_the_newest_n_candidates_by_update_time() -> None:
    tags = [old_generated(n, digest(100 + n)) for n in range(6)]  # n=0 newest
    plan = plan_repository("app", tags, None, policy(keep=3), NOW)
    got = reasons(plan)
    assert [got[t.name] for t in tags] == ["newest-n"] * 3 + ["delete:expired"] * 3
    # Oldest first, so a time-boxed run removes the oldest garbage first.
    assert [d.name for d in plan.deletions] == [tags[5].name, tags[4].name, tags[3].name]


def test_newest_ties_are_broken_by_name() -> None:
    when = ago(days=30)
    tags = [tag(f"latest_20261001000000_{n:012x}", digest(n), when) for n in (3, 1, 2)]
    plan = plan_repository("app", tags, None, policy(keep=1), NOW)
    got = reasons(plan)
    assert got["latest_20261001000000_000000000003"] == "newest-n"
    assert got["latest_20261001000000_000000000001"] == "delete:expired"


def test_keep_zero_and_keep_more_than_candidates() -> None:
    tags = [old_generated(n, digest(100 + n)) for n in range(3)]
    assert len(plan_repository("app", tags, None, policy(keep=0), NOW).deletions) == 3
    many = plan_repository("app", tags, None, policy(keep=10), NOW)
    assert many.deletions == ()
    assert {k.reason for k in many.kept} == {KeepReason.NEWEST}


def test_newest_counts_every_candidate_young_or_locked() -> None:
    """keep=2: the two newest candidates are kept whatever else protects them."""
    young = tag(gen_name(ago(hours=1), A), A, ago(hours=1))
    locked = tag(gen_name(ago(days=20), B), B, ago(days=20), can_write=False)
    old1 = tag(gen_name(ago(days=30), C), C, ago(days=30))
    old2 = tag(gen_name(ago(days=40), D), D, ago(days=40))
    plan = plan_repository("app", [old2, young, old1, locked], None, policy(keep=2), NOW)
    assert reasons(plan) == {
        young.name: "newest-n",
        locked.name: "newest-n",
        old1.name: "delete:expired",
        old2.name: "delete:expired",
    }


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(days=7), "delete:expired"),  # exactly min_age: old enough
        (timedelta(days=7) - timedelta(seconds=1), "too-young"),
        (timedelta(hours=1), "too-young"),
        (-timedelta(hours=1), "too-young"),  # clock skew: in the future
    ],
)
def test_min_age_boundary(age: timedelta, expected: str) -> None:
    t = tag(gen_name(NOW - age, A), A, NOW - age)
    plan = plan_repository("app", [t], None, policy(keep=0), NOW)
    assert reasons(plan)[t.name] == expected


def test_age_counts_from_the_later_of_created_and_updated() -> None:
    t = tag(gen_name(ago(days=30), A), A, ago(days=30), created=ago(days=1))
    assert reasons(plan_repository("app", [t], None, policy(keep=0), NOW))[t.name] == "too-young"


@pytest.mark.parametrize(
    ("can_delete", "can_write"), [(False, True), (True, False), (False, False)]
)
def test_locked_tags_are_kept(can_delete: bool, can_write: bool) -> None:
    t = tag(gen_name(ago(days=30), A), A, ago(days=30), can_delete=can_delete, can_write=can_write)
    plan = plan_repository("app", [t], None, policy(keep=0), NOW)
    assert reasons(plan)[t.name] == "locked"


@pytest.mark.parametrize(("can_delete", "can_write"), [(False, True), (True, False)])
def test_tags_on_locked_manifests_are_kept(can_delete: bool, can_write: bool) -> None:
    t = tag(gen_name(ago(days=30), A), A, ago(days=30))
    m = manifest(A, ago(days=30), tags=[t.name], can_delete=can_delete, can_write=can_write)
    plan = plan_repository("app", [t], [m], policy(keep=0), NOW)
    assert reasons(plan)[t.name] == "manifest-locked"


def test_without_manifests_listing_only_the_tag_lock_counts() -> None:
    """Documented: manifests=None means manifest locks are unknown (the executor always lists)."""
    t = tag(gen_name(ago(days=30), A), A, ago(days=30))
    plan = plan_repository("app", [t], None, policy(keep=0), NOW)
    assert not plan.manifests_listed
    assert reasons(plan) == {t.name: "delete:expired"}


def test_a_tag_listed_twice_on_different_digests_is_kept() -> None:
    name = gen_name(ago(days=30), A)
    tags = [tag(name, A, ago(days=30)), tag(name, B, ago(days=29))]
    assert reasons(plan_repository("app", tags, None, policy(keep=0), NOW)) == {
        name: "inconsistent-listing"
    }


def test_a_tag_repushed_between_the_two_listings_is_kept() -> None:
    t = tag(gen_name(ago(days=30), A), A, ago(days=30))
    ms = [manifest(A, ago(days=30)), manifest(B, ago(days=1), tags=[t.name])]
    plan = plan_repository("app", [t], ms, policy(keep=0, untagged=True, min_age=timedelta(0)), NOW)
    got = reasons(plan)
    assert got[t.name] == "inconsistent-listing"
    assert got[B] == "tagged"
    assert got[A] == "tagged"  # the tags listing still shows the tag there: trust neither


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        plan_repository("app", [], None, policy(), datetime(2026, 1, 1))


@pytest.mark.parametrize(("keep", "min_age"), [(-1, timedelta(0)), (1, timedelta(seconds=-1))])
def test_policy_rejects_negative_values(keep: int, min_age: timedelta) -> None:
    with pytest.raises(ValueError, match="must"):
        PrunePolicy(frozenset({"latest"}), is_generated, keep, min_age, False)


# ----------------------------------------------------------------------------- manifest rules


def test_untagged_disabled_keeps_untagged_manifests() -> None:
    m = manifest(A, ago(days=30))
    plan = plan_repository("app", [], [m], policy(untagged=False), NOW)
    assert reasons(plan) == {A: "untagged-disabled"}


def test_old_untagged_manifest_is_deleted_by_digest() -> None:
    plan = plan_repository("app", [], [manifest(A, ago(days=30))], policy(untagged=True), NOW)
    assert [(d.kind, d.name, d.reason) for d in plan.deletions] == [
        ("manifest", A, DeleteReason.UNTAGGED)
    ]


@pytest.mark.parametrize(
    ("m", "expected"),
    [
        (manifest(A, ago(days=1)), "too-young"),
        (manifest(A, ago(days=30), can_delete=False), "manifest-locked"),
        (manifest(A, ago(days=30), can_write=False), "manifest-locked"),
        (manifest(A, ago(days=30), has_subject=True), "has-subject"),
        (manifest(A, ago(days=30), media_type=None), "unknown-media-type"),
        (
            manifest(A, ago(days=30), media_type="application/vnd.oci.artifact.manifest.v1+json"),
            "unknown-media-type",
        ),
        (
            manifest(
                A,
                ago(days=30),
                media_type="application/vnd.docker.distribution.manifest.v1+prettyjws",
            ),
            "unknown-media-type",
        ),
        (manifest(A, ago(days=30), media_type=OCI_MANIFEST), "delete:untagged"),
        (manifest(A, ago(days=30), media_type=DOCKER_MANIFEST_LIST), "delete:untagged"),
    ],
)
def test_untagged_manifest_rules(m: ManifestInfo, expected: str) -> None:
    plan = plan_repository("app", [], [m], policy(untagged=True), NOW)
    assert reasons(plan) == {A: expected}


def test_tagged_manifest_is_never_deleted_as_untagged() -> None:
    t = tag("v1", A, ago(days=30))
    plan = plan_repository(
        "app", [t], [manifest(A, ago(days=30), tags=["v1"])], policy(untagged=True), NOW
    )
    assert reasons(plan) == {"v1": "not-a-candidate", A: "tagged"}


def test_tag_only_in_the_manifests_listing_still_protects_the_manifest() -> None:
    m = manifest(A, ago(days=30), tags=["pushed-after-tag-listing"])
    plan = plan_repository("app", [], [m], policy(untagged=True), NOW)
    assert reasons(plan) == {A: "tagged"}


def test_children_of_a_tagged_multi_arch_index_are_kept() -> None:
    """acr-cli #131/#342: --untagged deleted the platform images of tagged multi-arch images."""
    idx = index(A, ago(days=30), [B, C], tags=["latest"])
    ms = [idx, manifest(B, ago(days=30)), manifest(C, ago(days=30))]
    plan = plan_repository("app", [tag("latest", A, ago(days=30))], ms, policy(untagged=True), NOW)
    assert plan.deletions == ()
    assert reasons(plan) == {
        "latest": "source-tag",
        A: "tagged",
        B: "referenced-by-index",
        C: "referenced-by-index",
    }


def test_nested_indexes_protect_grandchildren() -> None:
    ms = [
        index(A, ago(days=30), [B], tags=["v1"]),
        index(B, ago(days=30), [C]),
        manifest(C, ago(days=30)),
        manifest(D, ago(days=30)),
    ]
    plan = plan_repository("app", [tag("v1", A, ago(days=30))], ms, policy(untagged=True), NOW)
    got = reasons(plan)
    assert got[B] == got[C] == "referenced-by-index"
    assert got[D] == "delete:untagged"


def test_referenced_wins_over_the_childs_own_reason() -> None:
    ms = [index(A, ago(days=30), [B], tags=["v1"]), manifest(B, ago(hours=1))]
    plan = plan_repository("app", [tag("v1", A, ago(days=30))], ms, policy(untagged=True), NOW)
    assert reasons(plan)[B] == "referenced-by-index"


def test_child_of_a_young_untagged_index_is_kept() -> None:
    ms = [index(A, ago(hours=1), [B]), manifest(B, ago(days=30))]
    plan = plan_repository("app", [], ms, policy(untagged=True), NOW)
    assert reasons(plan) == {A: "too-young", B: "referenced-by-index"}


def test_child_shared_with_a_kept_index_is_kept() -> None:
    ms = [
        index(A, ago(days=30), [C]),  # untagged, old: deleted
        index(B, ago(days=30), [C], tags=["v2"]),
        manifest(C, ago(days=30)),
    ]
    plan = plan_repository("app", [tag("v2", B, ago(days=30))], ms, policy(untagged=True), NOW)
    assert reasons(plan) == {
        "v2": "not-a-candidate",
        A: "delete:untagged",
        B: "tagged",
        C: "referenced-by-index",
    }


def test_untagged_index_and_its_children_go_together_parents_first() -> None:
    ms = [manifest(C, ago(days=30)), index(B, ago(days=30), [C]), index(A, ago(days=30), [B, C])]
    plan = plan_repository("app", [], ms, policy(untagged=True), NOW)
    order = [(d.name, d.wave, d.parents) for d in plan.deletions]
    assert order == [(A, 0, ()), (B, 1, (A,)), (C, 2, tuple(sorted((A, B))))]


def test_manifest_whose_tags_this_plan_deletes_is_deleted_after_them() -> None:
    t = tag(gen_name(ago(days=30), A), A, ago(days=30))
    plan = plan_repository(
        "app", [t], [manifest(A, ago(days=30), tags=[t.name])], policy(keep=0, untagged=True), NOW
    )
    assert [(d.kind, d.reason, d.tags) for d in plan.deletions] == [
        ("tag", DeleteReason.EXPIRED, ()),
        ("manifest", DeleteReason.UNTAGGED_AFTER_PRUNE, (t.name,)),
    ]


def test_manifest_keeping_one_tag_is_not_deleted() -> None:
    old = tag(gen_name(ago(days=30), A), A, ago(days=30))
    kept = tag("v1", A, ago(days=30))
    ms = manifests_for([old, kept])
    plan = plan_repository("app", [old, kept], ms, policy(keep=0, untagged=True), NOW)
    assert reasons(plan) == {old.name: "delete:expired", "v1": "not-a-candidate", A: "tagged"}


def test_source_digest_manifest_is_kept_even_if_listing_shows_no_tags() -> None:
    """The tags listing says `latest` points at A, the manifests listing (later) shows no tag."""
    plan = plan_repository(
        "app",
        [tag("latest", A, ago(days=30))],
        [manifest(A, ago(days=30))],
        policy(untagged=True),
        NOW,
    )
    assert reasons(plan)[A] == "tagged"


def test_dangling_reference_is_ignored() -> None:
    ms = [index(A, ago(days=30), [E], tags=["v1"]), manifest(B, ago(days=30))]
    plan = plan_repository("app", [tag("v1", A, ago(days=30))], ms, policy(untagged=True), NOW)
    assert reasons(plan)[B] == "delete:untagged"


def test_every_item_gets_exactly_one_entry() -> None:
    tags = [tag("latest", A, ago(days=30))] + [old_generated(n, digest(50 + n)) for n in range(5)]
    ms = [*manifests_for(tags), manifest(B, ago(days=30))]
    plan = plan_repository("app", tags, ms, policy(keep=1, untagged=True), NOW)
    names = [k.name for k in plan.kept] + [d.name for d in plan.deletions]
    assert sorted(names) == sorted([t.name for t in tags] + [m.digest for m in ms])
    assert plan.kept_by_reason()[KeepReason.NEWEST][0].name == tags[1].name
