"""Level-triggered reconciliation: every source tag's current digest carries a generated tag.

The event path (`on_image_pushed`) is edge-triggered: it reacts to each ImagePushed event. Events
can still be lost to us (subscription disabled, app down past Event Grid's 24 h retry window,
pushes made before acr-retag was deployed, a filter changed). Reconciliation compares the desired
state with the registry and closes the gap, like a Kubernetes controller:

- `plan_repository` is the pure decision for one source tag of one repository: `in-sync` (the
  NEWEST generated tag of that source tag, the one Flux selects, is on its digest), `tag` (create
  the tag rendered from the source tag's `last_updated_on` and digest, so Flux ordering stays the
  push order: a rollback whose event was lost gets a tag that sorts newest), `skipped` (updated
  within the grace period: left to the event path), or `look` (the digest carries an older
  generated tag: the caller reads every tag of the repository and asks again).
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

from retag.naming import TagTemplate, newest_generated
from retag.oci import short_digest
from retag.registry import TagInfo
from retag.settings import format_duration
from retag.timeutil import as_utc, utc_iso

Mode = Literal["dry-run", "apply"]
DecisionOutcome = Literal["in-sync", "tag", "skipped", "look"]
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
    repository_tags: Sequence[TagInfo] | None = None,
) -> Decision:
    """Decide for one source tag, given the tags currently on its digest (and, for `look`, every
    tag of the repository). Pure. The rule is the event path's (`retag.tagging`): in sync means
    the newest generated tag of the source tag is on its digest.

    - `in-sync`: the digest carries a generated tag of this source tag from this push or a later
      one; or an older one that is still the newest of the repository (a re-push of the same
      digest needs no new tag: Flux already runs it).
    - `look`: the digest carries only older generated tags and `repository_tags` is None: the
      caller lists the repository and calls again with it.
    - `skipped`: not in sync, but the source tag moved less than `grace` before `now`; the event
      path is probably still on it, and tagging now could give the push two tags.
    - `tag`: not in sync (no generated tag on the digest, or a newer one on another digest: a
      rollback whose event was lost): create `template.render(source, last_updated_on, digest)`.

    Tags in `tags_on_digest` that point elsewhere are ignored, so a stale listing cannot make a
    repository look in sync. A repository with several source tags gets one decision per tag.
    """
    updated_on = as_utc(source.last_updated_on)
    short = short_digest(source.digest, algorithm=False)

    def decide(outcome: DecisionOutcome, tag: str | None, reason: str) -> Decision:
        return Decision(repository, source.name, source.digest, updated_on, outcome, tag, reason)

    existing = [
        tag for tag in tags_on_digest if tag.digest == source.digest and tag.name != source.name
    ]
    on_digest = newest_generated(template, source.name, existing)
    # Label fields are read when the tag is written (retag.tagging); until then a preview.
    render = template.preview if template.label_names else template.render
    new_tag = render(source.name, updated_on, source.digest)
    not_synced = f"no generated tag on {short}"
    if on_digest is not None:
        count = sum(1 for tag in existing if template.is_generated(tag.name, source.name))
        more = f" (+{count - 1} more)" if count > 1 else ""
        new_when, on_when = template.push_time(updated_on), template.pushed_at_of(on_digest.name)
        if new_when is None or (on_when is not None and on_when >= new_when):
            return decide("in-sync", on_digest.name, f"{on_digest.name}{more} is on {short}")
        if repository_tags is None:
            return decide("look", on_digest.name, f"{on_digest.name} is on {short}, older")
        newest = newest_generated(template, source.name, repository_tags)
        if newest is None or newest.digest == source.digest:
            reason = f"{on_digest.name}{more} is on {short} and is the newest"
            return decide("in-sync", on_digest.name, reason)
        not_synced = (
            f"the newest generated tag {newest.name} is on "
            f"{short_digest(newest.digest, algorithm=False)}, not on {short} (a rollback)"
        )
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
    return decide("tag", new_tag, f"{not_synced} (pushed {utc_iso(updated_on)})")
