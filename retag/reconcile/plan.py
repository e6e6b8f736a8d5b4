"""Level-triggered reconciliation: every source tag's current digest carries a generated tag.

The event path (`on_image_pushed`) is edge-triggered: it reacts to each ImagePushed event. Events
can still be lost to us (subscription disabled, app down past Event Grid's 24 h retry window,
pushes made before acr-retag was deployed, a filter changed). Reconciliation compares the desired
state with the registry and closes the gap, like a Kubernetes controller:

- `plan_repository` is the pure decision for one source tag of one repository: `in-sync` (a tag
  of the template's generated pattern for that source tag is already on its digest), `tag` (create
  the tag rendered from the source tag's `last_updated_on` and digest, so Flux ordering stays the
  push order) or `skipped` (updated within the grace period: left to the event path).
- `retag.reconcile.report` holds the report (`SourceTagResult`, `RepositoryResult`,
  `ReconcileReport`: table, JSON, log lines).

Pure: no I/O. The engine that reads the registry and adds the tags is `retag.reconcile.job`
(`reconcile_registry`, and `run_scheduled_reconcile` for the `reconcile_tags` timer); the CLI
(`python -m retag reconcile`) is `retag.cli.reconcile`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from retag.naming import TagTemplate
from retag.oci import short_digest
from retag.registry import TagInfo
from retag.settings import format_duration
from retag.timeutil import as_utc, utc_iso

Mode = Literal["dry-run", "apply"]
DecisionOutcome = Literal["in-sync", "tag", "skipped"]
SourceStatus = Literal["absent", "in-sync", "tagged", "would-tag", "skipped", "failed"]
RepositoryStatus = Literal[
    "in-sync", "tagged", "would-tag", "skipped", "failed", "not-applicable", "not-reached"
]

REPOSITORY_STATUSES: tuple[RepositoryStatus, ...] = (
    "in-sync",
    "tagged",
    "would-tag",
    "skipped",
    "failed",
    "not-applicable",
    "not-reached",
)

# --------------------------------------------------------------------------------------------
# Pure decision


@dataclass(frozen=True)
class Decision:
    """What reconciliation does for one source tag of one repository."""

    repository: str
    source_tag: str
    digest: str
    updated_on: datetime
    """The source tag's `last_updated_on` (its push time), UTC."""
    outcome: DecisionOutcome
    tag: str | None = None
    """`tag`: the tag to create; `in-sync`: the newest generated tag already on the digest."""
    reason: str = ""


def plan_repository(  # noqa: PLR0917 - the documented positional contract
    repository: str,
    source: TagInfo,
    tags_on_digest: Sequence[TagInfo],
    template: TagTemplate,
    now: datetime,
    grace: timedelta,
) -> Decision:
    """Decide for one source tag, given the tags currently on its digest. Pure.

    - `in-sync`: a tag the template generates for this source tag already points to the digest
      (whatever its timestamp: a re-push of the same digest needs no new tag to redeploy).
    - `skipped`: not in sync, but the source tag moved less than `grace` before `now`; the event
      path is probably still on it, and tagging now could give the push two tags.
    - `tag`: the tag `template.render(source tag, source.last_updated_on, digest)` is missing.

    Tags in `tags_on_digest` that point elsewhere are ignored, so a stale listing cannot make a
    repository look in sync. A repository with several source tags gets one decision per tag.
    """
    updated_on = as_utc(source.last_updated_on)
    short = short_digest(source.digest, algorithm=False)

    def decide(outcome: DecisionOutcome, tag: str | None, reason: str) -> Decision:
        return Decision(repository, source.name, source.digest, updated_on, outcome, tag, reason)

    existing = sorted(
        (
            tag
            for tag in tags_on_digest
            if tag.digest == source.digest
            and tag.name != source.name
            and template.is_generated(tag.name, source.name)
        ),
        key=lambda tag: (as_utc(tag.last_updated_on), tag.name),
    )
    if existing:
        newest = existing[-1].name
        more = f" (+{len(existing) - 1} more)" if len(existing) > 1 else ""
        return decide("in-sync", newest, f"{newest}{more} is on {short}")
    age = as_utc(now) - updated_on
    if age < grace:
        when = (
            f"updated {format_duration(age)} ago"
            if age >= timedelta(0)
            else f"updated in the future ({utc_iso(updated_on)}; clock skew?)"
        )
        return decide(
            "skipped",
            None,
            f"within grace period: {source.name} {when}, grace {format_duration(grace)};"
            " left to the event path",
        )
    new_tag = template.render(source.name, updated_on, source.digest)
    return decide("tag", new_tag, f"no generated tag on {short} (pushed {utc_iso(updated_on)})")
