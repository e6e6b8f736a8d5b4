"""Level-triggered reconciliation: every source tag's current digest carries a generated tag.

The event path (`on_image_pushed`) is edge-triggered: it reacts to each ImagePushed event. Events
can still be lost to us (subscription disabled, app down past Event Grid's 24 h retry window,
pushes made before acr-retag was deployed, a filter changed). Reconciliation compares the desired
state with the registry and closes the gap, like a Kubernetes controller:

- `plan_repository` is the pure decision for one source tag of one repository: `in-sync` (a tag
  of the template's generated pattern for that source tag is already on its digest), `tag` (create
  the tag rendered from the source tag's `last_updated_on` and digest, so Flux ordering stays the
  push order) or `skipped` (updated within the grace period: left to the event path).
- `reconcile_registry` streams the catalog, and per repository and source tag makes ONE `get_tag`
  and ONE filtered `list_tags(digest=...)`; in apply mode it creates the missing tag with the same
  engine as the event path (`retagger.add_generated_tag`). It never moves or deletes a tag.
  Bounded concurrency, back-off on throttling, time-boxed; re-running is idempotent, so the next
  run continues where this one stopped.
- `add_reconcile_parser` / `run_reconcile` are the CLI (`python -m retag reconcile`);
  `run_scheduled_reconcile` is what the `reconcile_tags` timer function calls.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TextIO

from retag.naming import TagTemplate
from retag.registry import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RegistryError,
    TagInfo,
    TransientRegistryError,
)

if TYPE_CHECKING:
    from retag.config import Settings

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
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_DURATION = timedelta(minutes=8)
"""Below the 15-minute default schedule and the Functions timeout; the next run continues."""

_logger = logging.getLogger(__name__)


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
    updated_on = _utc(source.last_updated_on)

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
        key=lambda tag: (_utc(tag.last_updated_on), tag.name),
    )
    if existing:
        newest = existing[-1].name
        more = f" (+{len(existing) - 1} more)" if len(existing) > 1 else ""
        return decide("in-sync", newest, f"{newest}{more} is on {_short(source.digest)}")
    age = _utc(now) - updated_on
    if age < grace:
        when = (
            f"updated {_format_age(age)} ago"
            if age >= timedelta(0)
            else f"updated in the future ({_iso(updated_on)}; clock skew?)"
        )
        return decide(
            "skipped",
            None,
            f"within grace period: {source.name} {when}, grace {_format_age(grace)};"
            " left to the event path",
        )
    new_tag = template.render(source.name, updated_on, source.digest)
    return decide(
        "tag", new_tag, f"no generated tag on {_short(source.digest)} (pushed {_iso(updated_on)})"
    )


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
            "updated_on": _iso(self.updated_on) if self.updated_on else None,
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
            f"repository={_field(self.repository)}",
            f"source_tag={_field(shown.source_tag if shown else None)}",
            f"digest={_field(shown.digest if shown else None)}",
            f"tag={_field(shown.tag if shown else None)}",
            f"duration_ms={self.duration_ms}",
            f"reason={json.dumps(self.reason)}",
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
            parts.append(f"error={json.dumps(self.error)}")
        if self.unlisted:
            parts.append(f"unlisted={json.dumps(self.unlisted)}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "started_at": _iso(self.started_at),
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
                        _short(source.digest) if source.digest else "-",
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


# --------------------------------------------------------------------------------------------
# Engine


def reconcile_registry(
    registry: Registry,
    settings: Settings,
    *,
    mode: Mode = "apply",
    repository_filter: re.Pattern[str] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_duration: timedelta = DEFAULT_MAX_DURATION,
    now: datetime | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    retry_delay: float = 1.0,
    max_retry_delay: float = 30.0,
    max_attempts: int = 5,
) -> ReconcileReport:
    """Reconcile every repository in scope; never raises for registry errors (see the report).

    In scope: `settings.retag.in_scope(repository)` and, when given, `repository_filter` (full
    match). Per repository and source tag: one `get_tag` (absent: nothing more) and one
    `list_tags(digest=...)`; in apply mode one `add_generated_tag` when the tag is missing.
    `now` (default: the current time) is the reference for the grace period. Repositories run on
    `concurrency` threads; `TransientRegistryError` (after the adapter's own retries) is retried
    with exponential back-off (from `retry_delay`, at most `max_retry_delay`, jittered) up to
    `max_attempts`, within the time box; the pause is shared, so while the registry throttles
    every worker slows down, not only the one that was refused. No
    repository starts after `max_duration`: the rest are reported `not-reached`.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    engine = _Engine(
        registry=registry,
        settings=settings,
        mode=mode,
        repository_filter=repository_filter,
        now=_utc(now) if now is not None else datetime.now(UTC),
        monotonic=monotonic,
        sleep=sleep,
        retry_delay=retry_delay,
        max_retry_delay=max_retry_delay,
        max_attempts=max_attempts,
        deadline=monotonic() + max_duration.total_seconds(),
    )
    return engine.run(concurrency, max_duration)


@dataclass
class _Engine:
    registry: Registry
    settings: Settings
    mode: Mode
    repository_filter: re.Pattern[str] | None
    now: datetime
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]
    retry_delay: float
    max_retry_delay: float
    max_attempts: int
    deadline: float
    _random: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _resume_at: float = 0.0
    """Shared back-off: no attempt starts before this (monotonic) time."""

    def in_scope(self, repository: str) -> bool:
        if not self.settings.retag.in_scope(repository):
            return False
        return self.repository_filter is None or bool(self.repository_filter.fullmatch(repository))

    def run(self, concurrency: int, max_duration: timedelta) -> ReconcileReport:
        started = self.monotonic()
        requests_before = self.registry.requests_made
        report = ReconcileReport(mode=self.mode, started_at=self.now, max_duration=max_duration)
        entries: list[Future[RepositoryResult] | RepositoryResult] = []
        slots = threading.BoundedSemaphore(concurrency)
        stopped = False
        with ThreadPoolExecutor(concurrency, thread_name_prefix="reconcile") as pool:
            try:
                for repository in self._catalog():
                    if not self.in_scope(repository):
                        report.excluded += 1
                        continue
                    if not stopped:
                        slots.acquire()
                        stopped = self.monotonic() >= self.deadline
                        if stopped:
                            slots.release()
                    if stopped:
                        entries.append(
                            RepositoryResult(
                                repository,
                                "not-reached",
                                f"time box of {_format_age(max_duration)} over; the next run"
                                " continues",
                            )
                        )
                        continue
                    future = pool.submit(self.repository, repository)
                    future.add_done_callback(lambda _: slots.release())
                    entries.append(future)
            except Exception as error:  # the report says what happened; the run never crashes
                if stopped:
                    # The time box is over anyway: repositories not listed yet are simply not
                    # reached, which the next run covers.
                    report.unlisted = f"catalog listing stopped: {_describe(error)}"
                else:
                    if not isinstance(error, RegistryError):
                        _logger.exception("listing repositories failed unexpectedly")
                    report.error = f"listing repositories failed: {_describe(error)}"
        report.repositories = [
            entry.result() if isinstance(entry, Future) else entry for entry in entries
        ]
        report.requests = self.registry.requests_made - requests_before
        report.duration_s = self.monotonic() - started
        return report

    def _catalog(self) -> Iterator[str]:
        """Stream the catalog; after a transient failure, list again and skip names seen."""
        seen: set[str] = set()
        attempt = 0
        while True:
            try:
                for repository in self.registry.list_repositories():
                    if repository not in seen:
                        seen.add(repository)
                        yield repository
                return
            except TransientRegistryError:
                attempt += 1
                if not self._backoff(attempt):
                    raise

    def _backoff(self, attempt: int) -> bool:
        """Pause before retry `attempt + 1`; False when out of attempts or of time."""
        if attempt >= self.max_attempts:
            return False
        delay = min(self.max_retry_delay, self.retry_delay * 2 ** (attempt - 1))
        delay *= 1 + self._random.random() / 2
        now = self.monotonic()
        if now + delay >= self.deadline:
            return False
        with self._lock:
            self._resume_at = max(self._resume_at, now + delay)
        self._pace()
        return True

    def _pace(self) -> None:
        """Wait out the shared back-off (never past the deadline)."""
        while True:
            with self._lock:
                resume_at = self._resume_at
            wait = min(resume_at, self.deadline) - self.monotonic()
            if wait <= 0:
                return
            self.sleep(wait)

    def repository(self, repository: str) -> RepositoryResult:
        started = self.monotonic()
        sources = [
            self._source_with_retry(repository, tag) for tag in self.settings.retag.source_tags
        ]
        duration_ms = int((self.monotonic() - started) * 1000)
        return RepositoryResult.from_sources(repository, sources, duration_ms)

    def _source_with_retry(self, repository: str, source_tag: str) -> SourceTagResult:
        attempt = 0
        while True:
            attempt += 1
            self._pace()
            try:
                result = self._source(repository, source_tag)
            except TransientRegistryError as error:
                if self._backoff(attempt):
                    continue
                return SourceTagResult(
                    source_tag,
                    "failed",
                    reason=(
                        f"registry busy or unavailable after {attempt} attempt(s):"
                        f" {_describe(error)}; the next run retries"
                    ),
                    attempts=attempt,
                )
            except Exception as error:  # one repository never aborts the run
                _logger.exception("reconcile %s:%s failed unexpectedly", repository, source_tag)
                return SourceTagResult(
                    source_tag,
                    "failed",
                    reason=f"unexpected error: {_describe(error)}",
                    attempts=attempt,
                )
            if attempt == 1:
                return result
            return SourceTagResult(
                result.source_tag,
                result.status,
                result.digest,
                result.updated_on,
                result.tag,
                result.reason,
                attempt,
            )

    def _source(self, repository: str, source_tag: str) -> SourceTagResult:
        registry = self.registry
        try:
            source = registry.get_tag(repository, source_tag)
            tags_on_digest = list(registry.list_tags(repository, digest=source.digest))
        except NotFoundError:
            return SourceTagResult(source_tag, "absent", reason="no such tag")
        except PermissionDeniedError as error:
            return SourceTagResult(
                source_tag, "failed", reason=f"permission denied reading tags: {error}"
            )
        except TransientRegistryError:
            raise
        except RegistryError as error:
            return SourceTagResult(source_tag, "failed", reason=_describe(error))
        decision = plan_repository(
            repository,
            source,
            tags_on_digest,
            self.settings.retag.template,
            self.now,
            self.settings.reconcile.grace,
        )

        def result(
            status: SourceStatus, reason: str, tag: str | None = decision.tag
        ) -> SourceTagResult:
            return SourceTagResult(
                source_tag, status, decision.digest, decision.updated_on, tag, reason
            )

        if decision.outcome == "in-sync":
            return result("in-sync", decision.reason)
        if decision.outcome == "skipped":
            return result("skipped", decision.reason)
        new_tag = decision.tag
        assert new_tag is not None  # outcome "tag" always renders one
        if self.mode == "dry-run":
            return result("would-tag", decision.reason + "; dry-run: not written")
        from retag.retagger import add_generated_tag

        try:
            created = add_generated_tag(
                registry,
                repository,
                decision.digest,
                new_tag,
                check_existing=self.settings.retag.template.needs_existing_check,
            )
        except NotFoundError as error:
            return result("skipped", f"manifest gone before tagging: {error}")
        except ConflictError as error:
            return result("skipped", f"locked or conflicting target, not forced: {error}")
        except PermissionDeniedError as error:
            return result("failed", f"permission denied writing: {error}")
        except TransientRegistryError:
            raise
        except (RegistryError, ValueError) as error:
            return result("failed", _describe(error))
        return result("tagged", decision.reason, created)


# --------------------------------------------------------------------------------------------
# Timer (the `reconcile_tags` function) and CLI (`python -m retag reconcile`)


def run_scheduled_reconcile(
    settings: Settings,
    registry_factory: Callable[[], Registry],
    *,
    log: logging.Logger | Callable[[str], None],
    past_due: bool = False,
    now: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_duration: timedelta = DEFAULT_MAX_DURATION,
) -> ReconcileReport | None:
    """The `reconcile_tags` timer: one run honouring RECONCILE_MODE (`off` returns None without
    building the registry). Logs one line per repository that is not in sync (tagged, would-tag,
    skipped, failed) and one summary line. `log` is a Logger (warnings for skipped, errors for
    failed) or any callable taking a line."""
    mode = settings.reconcile.mode
    late = " past_due=true" if past_due else ""
    if mode == "off":
        _emit(
            log,
            logging.INFO,
            f'acr-retag reconcile-summary mode=off{late} reason="RECONCILE_MODE=off"',
        )
        return None
    report = reconcile_registry(
        registry_factory(),
        settings,
        mode=mode,
        concurrency=concurrency,
        max_duration=max_duration,
        now=now,
    )
    levels = {"failed": logging.ERROR, "skipped": logging.WARNING}
    for result in report.repositories:
        if result.status in ("tagged", "would-tag", "skipped", "failed"):
            _emit(log, levels.get(result.status, logging.INFO), result.log_line())
    summary = report.summary_line() + late
    _emit(log, logging.ERROR if report.failed else logging.INFO, summary)
    return report


def _emit(log: logging.Logger | Callable[[str], None], level: int, line: str) -> None:
    if isinstance(log, logging.Logger):
        log.log(level, line)
    else:
        log(line)


def add_reconcile_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `reconcile` to the CLI's subcommands and return its parser; the caller dispatches the
    parsed args to `run_reconcile` (retag.cli sets its own handler)."""
    parser = subparsers.add_parser(
        "reconcile",
        help="give every source tag's digest a generated tag (catch up missed events)",
        description=(
            "Level-triggered catch-up for the event path: for each repository in scope"
            " (RETAG_REPOSITORIES / RETAG_EXCLUDE_REPOSITORIES) and each source tag"
            " (RETAG_SOURCE_TAGS), create the generated tag (RETAG_TAG_TEMPLATE, timestamp ="
            " the source tag's last update) when no generated tag points to its digest. Only"
            " ever adds tags. Source tags updated within RECONCILE_GRACE are left to the event"
            " path. Exit codes: 0 ok, 1 a repository failed, 2 usage or settings error."
        ),
        epilog=(
            "example: python -m retag reconcile --dry-run --repository 'team-a/.*'"
            " --max-duration 2m"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report the drift without writing anything"
    )
    parser.add_argument("--json", action="store_true", help="print every repository as JSON")
    parser.add_argument(
        "--repository",
        metavar="REGEX",
        type=_regex_argument,
        help="only repositories fully matching REGEX (on top of the retag filters)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"repositories checked in parallel (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--max-duration",
        metavar="DURATION",
        type=_duration_argument,
        default=DEFAULT_MAX_DURATION,
        help="stop starting repositories after this long, e.g. 90s, 10m (default 8m)",
    )
    return parser


def run_reconcile(
    args: argparse.Namespace,
    *,
    settings: Settings | None = None,
    registry: Registry | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `reconcile` for parsed CLI args. Exit code: 0 ok, 1 any failed, 2 settings error.

    `settings` defaults to `load_settings()` (the environment); `registry` to the ACR adapter
    built from them. The CLI passes its own when it has resolved `--registry` or a `.env` file.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    from retag.config import SettingsError, load_settings

    try:
        resolved = settings if settings is not None else load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=err)
        return 2
    owned = None
    if registry is None:
        from retag.acr import AcrRegistry

        try:
            registry = owned = AcrRegistry.from_settings(resolved.registry)
        except (RegistryError, ValueError) as error:
            print(f"error: {error}", file=err)
            return 2
    try:
        report = reconcile_registry(
            registry,
            resolved,
            mode="dry-run" if args.dry_run else "apply",
            repository_filter=args.repository,
            concurrency=args.concurrency,
            max_duration=args.max_duration,
        )
    finally:
        if owned is not None:
            owned.close()
    print(report.to_json() if args.json else report.render_table(), file=out)
    if args.json:
        print(report.summary_line(), file=err)
    return 1 if report.failed else 0


def _regex_argument(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {error}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _duration_argument(text: str) -> timedelta:
    from retag.config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# --------------------------------------------------------------------------------------------
# Helpers


def _utc(moment: datetime) -> datetime:
    """Aware UTC datetime (naive values are taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat().replace("+00:00", "Z")


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _format_age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds < 0:
        return f"-{_format_age(-age)}"
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def _field(value: str | None) -> str:
    if value is None:
        return "-"
    return value if _PLAIN.fullmatch(value) else json.dumps(value)


_PLAIN = re.compile(r"[A-Za-z0-9._:/@+-]+")


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
