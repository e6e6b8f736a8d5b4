"""Decision table for `plan_repository`: one source tag, the tags on its digest, the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from retag.naming import TagTemplate
from retag.reconcile.plan import plan_repository
from retag.registry import TagInfo

DIGEST = "sha256:" + "3f2a9c1b7d4e" + "0" * 52
OTHER = "sha256:" + "b" * 64
PUSHED = datetime(2026, 11, 29, 23, 7, 0, tzinfo=UTC)
NOW = PUSHED + timedelta(hours=1)
GRACE = timedelta(minutes=15)
TEMPLATE = TagTemplate.parse("{tag}_{timestamp}_{digest:.12}", ("latest", "stable"))
EXPECTED = "latest_20261129230700_3f2a9c1b7d4e"
OLDER = "latest_20200101000000_3f2a9c1b7d4e"


def tag(
    name: str, digest: str = DIGEST, updated: datetime = PUSHED, *, writable: bool = True
) -> TagInfo:
    return TagInfo(name, digest, updated, updated, can_delete=writable, can_write=writable)


SOURCE = tag("latest")


def plan(
    tags: list[TagInfo],
    *,
    source: TagInfo = SOURCE,
    now: datetime = NOW,
    grace: timedelta = GRACE,
    template: TagTemplate = TEMPLATE,
) -> tuple[str, str | None, str]:
    decision = plan_repository("team/app", source, tags, template, now, grace)
    if decision.outcome == "look":  # the engine then lists the whole repository: model it
        decision = plan_repository("team/app", source, tags, template, now, grace, tags)
    assert decision.repository == "team/app"
    assert decision.source_tag == source.name
    assert decision.digest == source.digest
    return decision.outcome, decision.tag, decision.reason


@pytest.mark.parametrize(
    ("case", "tags", "outcome", "new_or_existing"),
    [
        ("only the source tag", [SOURCE], "tag", EXPECTED),
        ("empty listing", [], "tag", EXPECTED),
        ("generated tag on the digest", [SOURCE, tag("latest_20261129220000_3f2a9c1b7d4e")],
         "in-sync", "latest_20261129220000_3f2a9c1b7d4e"),
        ("the very tag we would create", [SOURCE, tag(EXPECTED)], "in-sync", EXPECTED),
        ("a generated tag with another timestamp counts",
         [tag(OLDER)], "in-sync", OLDER),
        ("generated tag but on another digest (stale listing)",
         [SOURCE, tag("latest_20261129220000_bbbbbbbbbbbb", OTHER)], "tag", EXPECTED),
        ("generated for another source tag only",
         [SOURCE, tag("stable"), tag("stable_20261129220000_3f2a9c1b7d4e")], "tag", EXPECTED),
        ("only non-generated tags", [SOURCE, tag("v1.2.3"), tag("latest-old"), tag("latest_x")],
         "tag", EXPECTED),
        ("locked generated tag still counts", [SOURCE, tag(EXPECTED, writable=False)],
         "in-sync", EXPECTED),
        # Issue 12: in sync means the NEWEST generated tag (Flux's choice) is on the digest.
        ("rollback: an older tag on the digest, a newer one elsewhere (event lost)",
         [SOURCE, tag(OLDER), tag("latest_20261129225000_bbbbbbbbbbbb", OTHER)], "tag", EXPECTED),
        ("an older tag on the digest, still the newest: a re-push, in sync",
         [SOURCE, tag(OLDER), tag("latest_20190101000000_bbbbbbbbbbbb", OTHER)], "in-sync", OLDER),
    ],
)  # fmt: skip
def test_decision_table(
    case: str, tags: list[TagInfo], outcome: str, new_or_existing: str | None
) -> None:
    got_outcome, got_tag, reason = plan(tags)
    assert (got_outcome, got_tag) == (outcome, new_or_existing), case
    assert reason


def test_newest_generated_tag_is_reported_with_the_count_of_others() -> None:
    older = tag("latest_20261129200000_3f2a9c1b7d4e", updated=PUSHED - timedelta(hours=3))
    newer = tag("latest_20261129210000_3f2a9c1b7d4e", updated=PUSHED - timedelta(hours=2))
    outcome, existing, reason = plan([newer, SOURCE, older])
    assert (outcome, existing) == ("in-sync", newer.name)
    assert "+1 more" in reason


@pytest.mark.parametrize(
    ("age", "outcome"),
    [
        (timedelta(0), "skipped"),
        (timedelta(minutes=14, seconds=59), "skipped"),
        (timedelta(minutes=15), "tag"),
        (timedelta(days=400), "tag"),
    ],
)
def test_grace_period(age: timedelta, outcome: str) -> None:
    got, new_tag, reason = plan([SOURCE], now=PUSHED + age)
    assert got == outcome
    if outcome == "skipped":
        assert new_tag is None
        assert "grace" in reason
    else:
        assert new_tag == EXPECTED


def test_source_tag_in_the_future_is_left_alone_and_says_why() -> None:
    outcome, new_tag, reason = plan([SOURCE], now=PUSHED - timedelta(minutes=5))
    assert (outcome, new_tag) == ("skipped", None)
    assert "clock skew" in reason


def test_in_sync_wins_over_grace() -> None:
    """A fresh push the event path already tagged reports in-sync, not skipped."""
    outcome, existing, _ = plan([SOURCE, tag(EXPECTED)], now=PUSHED + timedelta(seconds=3))
    assert (outcome, existing) == ("in-sync", EXPECTED)


def test_zero_grace_tags_immediately() -> None:
    assert plan([SOURCE], now=PUSHED, grace=timedelta(0))[0] == "tag"


def test_locked_source_tag_is_still_tagged() -> None:
    """A lock on `latest` protects that tag, not the digest: a new tag is still added."""
    locked = tag("latest", writable=False)
    assert plan([locked], source=locked)[:2] == ("tag", EXPECTED)


def test_timestamp_is_the_source_tags_last_update_in_utc() -> None:
    from datetime import timezone

    local = datetime(2026, 11, 30, 1, 7, 0, tzinfo=timezone(timedelta(hours=2)))
    source = TagInfo("latest", DIGEST, local - timedelta(days=1), local)
    assert plan([source], source=source)[1] == EXPECTED
    naive = TagInfo("latest", DIGEST, PUSHED, PUSHED.replace(tzinfo=None))
    assert plan([naive], source=naive)[1] == EXPECTED


def test_second_source_tag_gets_its_own_tag() -> None:
    stable = tag("stable")
    outcome, new_tag, _ = plan([SOURCE, stable, tag(EXPECTED)], source=stable)
    assert (outcome, new_tag) == ("tag", "stable_20261129230700_3f2a9c1b7d4e")


def test_custom_template() -> None:
    template = TagTemplate.parse("build-{timestamp}-{digest:.7}", ("latest",))
    outcome, new_tag, _ = plan([SOURCE], template=template)
    assert (outcome, new_tag) == ("tag", "build-20261129230700-3f2a9c1")
    assert plan([SOURCE, tag("build-20250101000000-3f2a9c1")], template=template)[0] == "in-sync"


def test_an_older_generated_tag_on_the_digest_asks_for_the_whole_repository() -> None:
    """Only the tags on the digest are known: the caller must look wider (one full listing)."""
    decision = plan_repository("team/app", SOURCE, [SOURCE, tag(OLDER)], TEMPLATE, NOW, GRACE)
    assert decision.outcome == "look"
    rollback = [SOURCE, tag(OLDER), tag("latest_20261129225000_bbbbbbbbbbbb", OTHER)]
    again = plan_repository(
        "team/app", SOURCE, [SOURCE, tag(OLDER)], TEMPLATE, NOW, GRACE, rollback
    )
    assert (again.outcome, again.tag) == ("tag", EXPECTED)
    assert "rollback" in again.reason
