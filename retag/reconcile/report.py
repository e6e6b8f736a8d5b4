"""The reconciliation report: per source tag, per repository and per run.

`ReconcileReport.ok` is False whenever the run did not do what it was asked: the catalog listing
failed, a repository failed, the time box ran out with repositories not reached, or the run was
interrupted; `error` then names the cause in one line. A dry run that only reports drift is ok.
`to_dict()` is the `--json` data (`duration_s`, RFC 3339 `Z` times, every count present, snake
case); `log_line()` the one log-line format (`acr-retag reconcile-repository ...`,
`acr-retag reconcile ...`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from retag.logline import line
from retag.oci import short_digest
from retag.reconcile.plan import REPOSITORY_STATUSES, Mode, RepositoryStatus, SourceStatus
from retag.settings import format_duration
from retag.timeutil import utc_iso


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


def _snake(status: str) -> str:
    return status.replace("-", "_")


@dataclass(frozen=True)
class RepositoryResult:
    """Per repository: `in-sync | tagged | would-tag (dry-run) | skipped | failed`, or
    `not-applicable` (no source tag in it) and `not-reached` (time box over before it started)."""

    repository: str
    status: RepositoryStatus
    reason: str = ""
    sources: tuple[SourceTagResult, ...] = ()
    duration_ms: float = 0

    @classmethod
    def from_sources(
        cls, repository: str, sources: Sequence[SourceTagResult], duration_ms: float
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
            "duration_s": round(self.duration_ms / 1000, 3),
            "sources": [source.to_dict() for source in self.sources],
        }

    def log_line(self) -> str:
        """`acr-retag reconcile-repository status=... repository=... source_tag=... digest=...
        tag=... reason="..."`; the source tag shown is the one that decided the status."""
        shown = next(
            (s for s in self.sources if s.status == self.status),
            next((s for s in self.sources if s.status != "absent"), None),
        )
        return line(
            "reconcile-repository",
            {
                "status": self.status,
                "repository": self.repository,
                "source_tag": shown.source_tag if shown else None,
                "digest": shown.digest if shown else None,
                "tag": shown.tag if shown else None,
                "duration_ms": float(self.duration_ms),
                "reason": self.reason,
            },
        )


@dataclass
class ReconcileReport:
    """Everything one run did, in catalog order."""

    mode: Mode | str
    started_at: datetime
    max_duration: timedelta
    repositories: list[RepositoryResult] = field(default_factory=list)
    excluded: int = 0
    """Repositories in the catalog but outside the filters (not listed individually)."""
    requests: int = 0
    """HTTP requests the run sent (summed from per-thread tallies; token requests included)."""
    duration_s: float = 0.0
    catalog_error: str | None = None
    """Set when the catalog itself could not be listed to the end (before the time box)."""
    unlisted: str | None = None
    """Set when, after the time box was over, the rest of the catalog could not be listed: the
    repositories after the last one listed are not in the report (the next run covers them)."""
    interrupted: bool = False
    throttled: int = 0
    past_due: bool = False

    @property
    def counts(self) -> dict[RepositoryStatus, int]:
        counts: dict[RepositoryStatus, int] = dict.fromkeys(REPOSITORY_STATUSES, 0)
        for result in self.repositories:
            counts[result.status] += 1
        return counts

    @property
    def complete(self) -> bool:
        """Every repository in scope was reached (no time-box stop, no catalog error)."""
        return (
            self.catalog_error is None
            and self.unlisted is None
            and not self.interrupted
            and not any(r.status == "not-reached" for r in self.repositories)
        )

    @property
    def error(self) -> str | None:
        """One line naming why the run is not ok; None when it is (a run with mode off too)."""
        not_reached = self.counts["not-reached"]
        failed = [r for r in self.repositories if r.status == "failed"]
        if self.mode == "off" or self.catalog_error is not None:
            return self.catalog_error if self.mode != "off" else None
        if self.interrupted:
            return f"interrupted: {not_reached} repositories not reached; the next run continues"
        if failed:
            return f"{len(failed)} repositories failed; first: {failed[0].repository}: " + (
                failed[0].reason
            )
        if not self.complete:
            rest = f"; {self.unlisted}" if self.unlisted else ""
            return (
                f"time box of {format_duration(self.max_duration)} reached: {not_reached}"
                f" repositories not reached{rest}; the next run continues"
            )
        return None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def failed(self) -> bool:
        """Not ok (exit code 1)."""
        return not self.ok

    def log_line(self) -> str:
        """`acr-retag reconcile mode=... ok=... repositories=... <status counts> ...`."""
        fields: dict[str, object] = {
            "mode": self.mode,
            "ok": self.ok,
            "repositories": len(self.repositories),
            **{_snake(status): count for status, count in self.counts.items()},
            "excluded": self.excluded,
            "requests": self.requests,
            "throttled": self.throttled,
            "duration_ms": round(self.duration_s * 1000, 1),
            "complete": self.complete,
            "interrupted": self.interrupted,
        }
        if self.past_due:
            fields["past_due"] = True
        if self.error:
            fields["error"] = self.error
        return line("reconcile", fields)

    summary_line = log_line

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "mode": self.mode,
            "started_at": utc_iso(self.started_at),
            "max_duration_s": self.max_duration.total_seconds(),
            "duration_s": round(self.duration_s, 3),
            "complete": self.complete,
            "interrupted": self.interrupted,
            "unlisted": self.unlisted,
            "requests": self.requests,
            "throttled": self.throttled,
            "summary": {
                "repositories": len(self.repositories),
                **{_snake(status): count for status, count in self.counts.items()},
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
        lines.append(self.log_line())
        return "\n".join(text.rstrip() for text in lines)
