"""The reconciliation engine: stream the catalog, decide per source tag, add the missing tags.

`reconcile_registry` streams the catalog, and per repository and source tag makes ONE `get_tag`
and ONE filtered `list_tags(digest=...)`; the decision is `retag.reconcile.plan_repository` (pure).
In apply mode it creates the missing tag with the same engine as the event path
(`retag.tagging.add_generated_tag`). It never moves or deletes a tag. Bounded concurrency,
back-off on throttling, time-boxed; re-running is idempotent, so the next run continues where
this one stopped. `run_scheduled_reconcile` is what the `reconcile_tags` timer function calls.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from retag.logline import describe_error
from retag.reconcile.plan import (
    Mode,
    ReconcileReport,
    RepositoryResult,
    SourceStatus,
    SourceTagResult,
    plan_repository,
)
from retag.registry import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RegistryError,
    TransientRegistryError,
)
from retag.settings import format_duration
from retag.timeutil import as_utc

if TYPE_CHECKING:
    from retag.settings import Settings

DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_DURATION = timedelta(minutes=8)
"""Below the 15-minute default schedule and the Functions timeout; the next run continues."""

_logger = logging.getLogger(__name__)


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
        now=as_utc(now) if now is not None else datetime.now(UTC),
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
                                f"time box of {format_duration(max_duration)} over; the next run"
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
                    report.unlisted = f"catalog listing stopped: {describe_error(error)}"
                else:
                    if not isinstance(error, RegistryError):
                        _logger.exception("listing repositories failed unexpectedly")
                    report.error = f"listing repositories failed: {describe_error(error)}"
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
                        f" {describe_error(error)}; the next run retries"
                    ),
                    attempts=attempt,
                )
            except Exception as error:  # one repository never aborts the run
                _logger.exception("reconcile %s:%s failed unexpectedly", repository, source_tag)
                return SourceTagResult(
                    source_tag,
                    "failed",
                    reason=f"unexpected error: {describe_error(error)}",
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
            return SourceTagResult(source_tag, "failed", reason=describe_error(error))
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
        from retag.tagging import add_generated_tag

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
            return result("failed", describe_error(error))
        return result("tagged", decision.reason, created)


# --------------------------------------------------------------------------------------------
# Timer (the `reconcile_tags` function)


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
