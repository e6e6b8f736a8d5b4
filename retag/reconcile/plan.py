"""Level-triggered reconciliation: every source tag's current digest carries a generated tag.

The event path (`on_image_pushed`) is edge-triggered: it reacts to each ImagePushed event. Events
can still be lost to us (subscription disabled, app down past Event Grid's 24 h retry window,
pushes made before acr-retag was deployed, a filter changed). Reconciliation compares the desired
state with the registry and closes the gap, like a Kubernetes controller:

- `plan_repository` is the pure decision for one source tag of one repository: `in-sync` (a tag
  of the template's generated pattern for that source tag is already on its digest), `tag` (create
  the tag rendered from the source tag's `last_updated_on` and digest, so Flux ordering stays the
  push order) or `skipped` (updated within the grace period: left to the event path).
- `SourceTagResult`, `RepositoryResult` and `ReconcileReport` are the report (table, JSON, log
  lines).

Pure: no I/O. The engine that reads the registry and adds the tags is `retag.reconcile.job`
(`reconcile_registry`, and `run_scheduled_reconcile` for the `reconcile_tags` timer); the CLI
(`python -m retag reconcile`) is `retag.cli.reconcile`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from retag.logline import format_field, format_text
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


# --------------------------------------------------------------------------------------------
# Report


@dataclass(frozen=True)
class SourceTagResult:
    """The result for one source tag of one repository."""

    source_tag: str
    status: SourceStatus
    digest: str | None = None
    updated_on: datetime | None = None
    tag: str | None = None
    """The tag created (tagged), to create (would-tag), or already there (in-sync)."""
    reason: str = ""
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_tag": self.source_tag,
            "status": self.status,
            "digest": self.digest,
            "updated_on": utc_iso(self.updated_on) if self.updated_on else None,
            "tag": self.tag,
            "reason": self.reason,
            "attempts": self.attempts,
        }


_SEVERITY: dict[SourceStatus, int] = {
    "absent": 0,
    "in-sync": 1,
    "would-tag": 2,
    "tagged": 3,
    "skipped": 4,
    "failed": 5,
}


@dataclass(frozen=True)
class RepositoryResult:
    """Per repository: `in-sync | tagged | would-tag (dry-run) | skipped | failed`, or
    `not-applicable` (no source tag in it) and `not-reached` (time box over before it started)."""

    repository: str
    status: RepositoryStatus
    reason: str = ""
    sources: tuple[SourceTagResult, ...] = ()
    duration_ms: int = 0

    @classmethod
    def from_sources(
        cls, repository: str, sources: Sequence[SourceTagResult], duration_ms: int
    ) -> RepositoryResult:
        """The repository's status is its worst source tag's (failed > skipped > tagged ...)."""
        worst = max((source.status for source in sources), key=_SEVERITY.__getitem__)
        status: RepositoryStatus = "not-applicable" if worst == "absent" else worst
        if status == "not-applicable":
            reason = "no source tag (" + ", ".join(s.source_tag for s in sources) + ")"
        else:
            reason = "; ".join(
                f"{source.source_tag}: {source.reason}"
                for source in sources
                if source.status != "absent" and worst in (source.status, "in-sync")
            )
        return cls(repository, status, reason, tuple(sources), duration_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "status": self.status,
            "reason": self.reason,
            "duration_ms": self.duration_ms,
            "sources": [source.to_dict() for source in self.sources],
        }

    def log_line(self) -> str:
        """`acr-retag reconcile status=... repository=... source_tag=... digest=... tag=...
        reason="..."`, like the event path's outcome line; the source tag shown is the one that
        decided the status."""
        shown = next(
            (s for s in self.sources if s.status == self.status),
            next((s for s in self.sources if s.status != "absent"), None),
        )
        parts = [
            "acr-retag reconcile",
            f"status={self.status}",
            f"repository={format_field(self.repository)}",
            f"source_tag={format_field(shown.source_tag if shown else None)}",
            f"digest={format_field(shown.digest if shown else None)}",
            f"tag={format_field(shown.tag if shown else None)}",
            f"duration_ms={self.duration_ms}",
            f"reason={format_text(self.reason)}",
        ]
        return " ".join(parts)


@dataclass
class ReconcileReport:
    """Everything one run did, in catalog order."""

    mode: Mode
    started_at: datetime
    max_duration: timedelta
    repositories: list[RepositoryResult] = field(default_factory=list)
    excluded: int = 0
    """Repositories in the catalog but outside the filters (not listed individually)."""
    requests: int = 0
    """HTTP requests the registry adapter sent during the run (token requests included)."""
    duration_s: float = 0.0
    error: str | None = None
    """Set when the catalog itself could not be listed to the end (a failure: exit code 1)."""
    unlisted: str | None = None
    """Set when, after the time box was over, the rest of the catalog could not be listed: the
    repositories after the last one listed are not in the report (the next run covers them)."""

    @property
    def counts(self) -> dict[RepositoryStatus, int]:
        counts: dict[RepositoryStatus, int] = dict.fromkeys(REPOSITORY_STATUSES, 0)
        for result in self.repositories:
            counts[result.status] += 1
        return counts

    @property
    def failed(self) -> bool:
        """True when a repository failed or the catalog could not be read (exit code 1)."""
        return self.error is not None or any(r.status == "failed" for r in self.repositories)

    @property
    def complete(self) -> bool:
        """Every repository in scope was reached (no time-box stop, no catalog error)."""
        return (
            self.error is None
            and self.unlisted is None
            and not any(r.status == "not-reached" for r in self.repositories)
        )

    def summary_line(self) -> str:
        counts = self.counts
        parts = [
            "acr-retag reconcile-summary",
            f"mode={self.mode}",
            f"repositories={len(self.repositories)}",
            *(f"{status}={count}" for status, count in counts.items()),
            f"excluded={self.excluded}",
            f"requests={self.requests}",
            f"duration={self.duration_s:.1f}s",
            f"complete={'yes' if self.complete else 'no'}",
        ]
        if self.error:
            parts.append(f"error={format_text(self.error)}")
        if self.unlisted:
            parts.append(f"unlisted={format_text(self.unlisted)}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "started_at": utc_iso(self.started_at),
            "max_duration_s": self.max_duration.total_seconds(),
            "duration_s": round(self.duration_s, 3),
            "complete": self.complete,
            "error": self.error,
            "unlisted": self.unlisted,
            "requests": self.requests,
            "summary": {
                "repositories": len(self.repositories),
                **self.counts,
                "excluded": self.excluded,
            },
            "repositories": [result.to_dict() for result in self.repositories],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render_table(self) -> str:
        """A human table (one row per repository and source tag), then the summary line."""
        header = ("REPOSITORY", "STATUS", "SOURCE", "DIGEST", "TAG", "REASON")
        rows: list[tuple[str, ...]] = []
        for result in self.repositories:
            shown = [s for s in result.sources if s.status != "absent"]
            if not shown:
                rows.append((result.repository, result.status, "-", "-", "-", result.reason))
                continue
            for source in shown:
                rows.append(
                    (
                        result.repository,
                        source.status,
                        source.source_tag,
                        short_digest(source.digest, algorithm=False) if source.digest else "-",
                        source.tag or "-",
                        source.reason,
                    )
                )
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
            for row in (header, *rows)
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        lines.append(self.summary_line())
        return "\n".join(line.rstrip() for line in lines)
