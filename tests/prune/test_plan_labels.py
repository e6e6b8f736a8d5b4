"""Pruning with a label template (`prod-{revision:.7}-{timestamp}`, issue 14 item 1): only tags
the template can render are candidates, aged by the push time in their names; a team's own
tags of other shapes are never touched. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from retag.naming import TagTemplate
from retag.prune.plan import PrunePolicy, plan_repository
from retag.registry import TagInfo

TEMPLATE = TagTemplate.parse("prod-{revision:.7}-{timestamp}", ["latest"])
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def tag(name: str, digest: str, days_ago: float) -> TagInfo:
    when = NOW - timedelta(days=days_ago)
    return TagInfo(name, "sha256:" + digest * 64, when, when)


def test_only_rendered_tags_are_pruned_and_the_newest_are_kept() -> None:
    tags = [
        tag("latest", "a", 0.1),
        tag("prod-aaaaaaa-20261202095000", "a", 0.1),  # on the source digest
        tag("prod-bbbbbbb-20261120120000", "b", 12),
        tag("prod-ccccccc-20261110120000", "c", 22),
        tag("prod-ddddddd-20261101120000", "d", 31),
        tag("prod-manual", "e", 40),  # the team's own tags: not the template's shape
        tag("prod-eeeeeee-hotfix", "e", 40),
        tag("v1.4.2", "e", 40),
    ]
    policy = PrunePolicy.for_scope(
        "generated",
        source_tags=["latest"],
        is_generated=TEMPLATE.is_generated,
        keep=1,
        min_age=timedelta(days=7),
        untagged=False,
        pushed_at_of=TEMPLATE.pushed_at_of,
    )
    plan = plan_repository("team/web", tags, None, policy, NOW)
    deleted = {d.name for d in plan.tag_deletions}
    assert deleted == {"prod-ccccccc-20261110120000", "prod-ddddddd-20261101120000"}
    kept = {k.name: str(k.reason.value) for k in plan.kept if k.kind == "tag"}
    assert kept["prod-manual"] == kept["prod-eeeeeee-hotfix"] == kept["v1.4.2"] == "not-a-candidate"
