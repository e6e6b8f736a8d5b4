"""The prune report: per repository and per run, in the one output contract.

`PruneReport.ok` is False whenever the run did not do what it was asked: the catalog listing
failed, a repository could not be read, deletions failed, the time box ran out with work left,
or the run was interrupted; `error` then names the cause in one line. A dry run that only plans
and hit none of that is ok. `to_dict()` is the `--json` data (`duration_s`, RFC 3339 `Z` times,
every count present, `would_delete_*` in dry-run); `log_line()` the one log-line format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from retag.logline import line
from retag.oci import short_digest
from retag.prune.plan import Deletion, KeepReason, Kept, group_kept
from retag.settings import format_duration
from retag.timeutil import utc_iso

ReportMode = Literal["off", "dry-run", "delete"]


@dataclass(frozen=True, slots=True)
class Failure:
    item: Deletion
    error: str

    def to_dict(self) -> dict[str, str]:
        return {**self.item.to_dict(), "error": self.error}


def _named(counts: dict[str, int], dry_run: bool) -> dict[str, int]:
    """`deleted_*` renamed `would_delete_*` in dry-run (nothing was deleted)."""
    if not dry_run:
        return counts
    return {k.replace("deleted_", "would_delete_"): v for k, v in counts.items()}


@dataclass(frozen=True)
class RepositoryResult:
    """What happened in one repository. In dry-run, `deleted` is what delete mode would delete."""

    repository: str
    deleted: tuple[Deletion, ...] = ()
    kept: tuple[Kept, ...] = ()
    failed: tuple[Failure, ...] = ()
    remaining: tuple[Deletion, ...] = ()
    """Planned deletions not attempted (time box over, interrupted, or the repository failed)."""
    error: str | None = None
    """The repository could not be read (listing or inspecting failed) or failed part-way."""
    requests: int = 0
    """HTTP requests this repository cost (listings, deletions, re-reads; retries included)."""
    kept_summary: tuple[tuple[str, int], ...] | None = None
    """Set by `summarised()`: the kept counts by reason once `kept` holds only the locked items."""
    mode: ReportMode = "delete"
    duration_ms: float = 0.0

    @property
    def kept_by_reason(self) -> dict[KeepReason, list[Kept]]:
        return group_kept(self.kept)

    @property
    def locked(self) -> tuple[Kept, ...]:
        """Items that would have been deleted but for a lock (tag or manifest)."""
        return tuple(k for k in self.kept if k.reason.is_lock)

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None

    def kept_counts(self) -> dict[str, int]:
        if self.kept_summary is not None:
            return dict(self.kept_summary)
        counts: dict[str, int] = {}
        for item in self.kept:
            counts[item.reason.value] = counts.get(item.reason.value, 0) + 1
        return dict(sorted(counts.items()))

    def counts(self) -> dict[str, int]:
        return {
            "deleted_tags": sum(1 for d in self.deleted if d.kind == "tag"),
            "deleted_manifests": sum(1 for d in self.deleted if d.kind == "manifest"),
            "kept": sum(self.kept_counts().values()),
            "locked": len(self.locked),
            "failed": len(self.failed),
            "remaining": len(self.remaining),
        }

    def to_dict(self) -> dict[str, object]:
        dry = self.mode == "dry-run"
        deleted_items = "would_delete_items" if dry else "deleted_items"
        return {
            "repository": self.repository,
            "ok": self.ok,
            "error": self.error,
            "requests": self.requests,
            "duration_s": round(self.duration_ms / 1000, 3),
            **_named(self.counts(), dry),
            "kept_by_reason": self.kept_counts(),
            deleted_items: [d.to_dict() for d in self.deleted],
            "kept_items": [k.to_dict() for k in self.kept],
            "failed_items": [f.to_dict() for f in self.failed],
            "remaining_items": [d.to_dict() for d in self.remaining],
        }

    def log_line(self, mode: str | None = None) -> str:
        """`acr-retag prune-repository ...` (the timer logs one per repository)."""
        mode = mode or self.mode
        kept = ",".join(f"{k}:{v}" for k, v in self.kept_counts().items()) or None
        counts = _named(self.counts(), mode == "dry-run")
        return line(
            "prune-repository",
            {
                "repository": self.repository,
                "mode": mode,
                "ok": self.ok,
                **counts,
                "kept_by_reason": kept,
                "requests": self.requests,
                "duration_ms": float(self.duration_ms),
                **({"error": self.error} if self.error else {}),
            },
        )

    def summarised(self) -> RepositoryResult:
        """A copy without the per-item list of kept items (the bulk of a big repository), its
        counts preserved; locked items, deletions, failures and remaining items stay."""
        if self.kept_summary is not None:
            return self
        return replace(
            self,
            kept=tuple(k for k in self.kept if k.reason.is_lock),
            kept_summary=tuple(self.kept_counts().items()),
        )


@dataclass
class PruneReport:
    """The outcome of one run. In dry-run, "deleted" means "would be deleted"."""

    mode: ReportMode
    started_at: datetime
    repositories: list[RepositoryResult] = field(default_factory=list)
    unvisited: list[str] = field(default_factory=list)
    """Repositories in scope that were not even planned (time box over, or interrupted)."""
    duration_s: float = 0.0
    requests: int = 0
    """HTTP requests the run sent (listings, deletions, re-reads, retries, token calls)."""
    timed_out: bool = False
    throttled: int = 0
    """Attempts the registry throttled (or failed transiently) that were retried later."""
    catalog_error: str | None = None
    """Listing the repositories failed part-way."""
    interrupted: bool = False
    max_duration: timedelta | None = None

    @property
    def duration_seconds(self) -> float:
        return self.duration_s

    @property
    def complete(self) -> bool:
        """Every repository in scope was listed and visited and every planned deletion tried."""
        return (
            self.catalog_error is None
            and not self.interrupted
            and not self.unvisited
            and not any(r.remaining for r in self.repositories)
        )

    @property
    def error(self) -> str | None:
        """One line naming why the run is not ok; None when it is."""
        if self.mode == "off":
            return None
        if self.catalog_error is not None:
            return self.catalog_error
        if self.interrupted:
            return f"interrupted: {self._left()} left for the next run"
        broken = [r for r in self.repositories if r.error is not None]
        if broken:
            more = f" (and {len(broken) - 1} more repositories)" if len(broken) > 1 else ""
            return f"{broken[0].repository}: {broken[0].error}{more}"
        failures = [(r.repository, f) for r in self.repositories for f in r.failed]
        if failures:
            repository, first = failures[0]
            return (
                f"{len(failures)} deletion(s) failed; first: {repository} {first.item.kind}"
                f" {first.item.name}: {first.error}"
            )
        if not self.complete:
            box = f" of {format_duration(self.max_duration)}" if self.max_duration else ""
            return f"time box{box} reached: {self._left()} left for the next run"
        return None

    @property
    def ok(self) -> bool:
        return self.error is None

    def _left(self) -> str:
        t = self.totals()
        return f"{t['remaining']} deletion(s) and {t['unvisited_repositories']} repositories"

    def totals(self) -> dict[str, int]:
        totals = {
            "repositories": len(self.repositories),
            "deleted_tags": 0,
            "deleted_manifests": 0,
            "kept": 0,
            "locked": 0,
            "failed": 0,
            "remaining": 0,
        }
        for r in self.repositories:
            for key, value in r.counts().items():
                totals[key] += value
        totals["errors"] = sum(1 for r in self.repositories if r.error is not None)
        totals["unvisited_repositories"] = len(self.unvisited)
        return totals

    def log_line(self) -> str:
        """`acr-retag prune mode=... ok=... ...`: one summary line for the whole run."""
        return line(
            "prune",
            {
                "mode": self.mode,
                "ok": self.ok,
                **_named(self.totals(), self.mode == "dry-run"),
                "requests": self.requests,
                "throttled": self.throttled,
                "duration_ms": round(self.duration_s * 1000, 1),
                "complete": self.complete,
                "interrupted": self.interrupted,
                **({"error": self.error} if self.error else {}),
            },
        )

    def to_dict(self) -> dict[str, object]:
        dry = self.mode == "dry-run"
        return {
            "ok": self.ok,
            "error": self.error,
            "mode": self.mode,
            "started_at": utc_iso(self.started_at),
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "throttled": self.throttled,
            "complete": self.complete,
            "timed_out": self.timed_out,
            "interrupted": self.interrupted,
            "totals": _named(self.totals(), dry),
            "unvisited_repositories": list(self.unvisited),
            "repositories": [r.to_dict() for r in self.repositories],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Every item with its reason (`--json`)."""
        return json.dumps(self.to_dict(), indent=indent)

    def render_table(self) -> str:
        """Human table, one row per repository: deleted, kept by rule, locked, failed, remaining."""
        deleted = "WOULD DELETE" if self.mode == "dry-run" else "DELETED"
        header = [
            "REPOSITORY",
            f"{deleted} TAGS",
            f"{deleted} MANIFESTS",
            "LOCKED",
            "FAILED",
            "REMAINING",
            "KEPT BY RULE",
        ]
        rows: list[list[str]] = []
        for r in self.repositories:
            c = r.counts()
            rule = " ".join(f"{k}={v}" for k, v in r.kept_counts().items()) or "-"
            if r.error:
                rule = f"ERROR {r.error}"
            rows.append([r.repository, *(str(c[k]) for k in _TABLE_COUNTS), rule])
        t = self.totals()
        total_row = ["TOTAL", *(str(t[k]) for k in _TABLE_COUNTS), f"{t['kept']} kept"]
        widths = [
            max(len(row[i]) for row in [header, *rows, total_row]) for i in range(len(header))
        ]

        def cells(row: list[str]) -> str:
            return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

        rule_line = "  ".join("-" * w for w in widths)
        out = [cells(header), rule_line, *(cells(r) for r in rows), rule_line, cells(total_row)]
        out.append(
            f"mode={self.mode} requests={self.requests} throttled={self.throttled} "
            f"duration={self.duration_s:.1f}s"
        )
        verb = "would delete" if self.mode == "dry-run" else "deleted"
        for r in self.repositories:
            out.extend(
                f"{verb}: {r.repository} {d.kind} {d.name}"
                f" ({short_digest(d.digest)}; {d.reason.value})"
                for d in r.deleted
            )
            out.extend(
                f"locked: {r.repository} {k.kind} {k.name} ({k.reason.value})" for k in r.locked
            )
            out.extend(
                f"failed: {r.repository} {f.item.kind} {f.item.name}: {f.error}" for f in r.failed
            )
        if self.error:
            out.append(f"error: {self.error}")
        return "\n".join(out) + "\n"


_TABLE_COUNTS = ("deleted_tags", "deleted_manifests", "locked", "failed", "remaining")
