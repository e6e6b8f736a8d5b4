"""The reconciliation job: per repository, decide per source tag and add the missing tags, on the
one catalog sweep (`retag.sweep`).

Per repository and source tag: ONE `get_tag` and ONE filtered `list_tags(digest=...)` (plus one
full listing when the digest carries only an older generated tag: in sync, or a rollback?); the
decision is `retag.reconcile.plan.plan_repository` (pure). In apply mode the missing tag is created
with the same engine as the event path (`retag.tagging.tag_push`). It never moves or
deletes a tag. The sweep runs repositories on a bounded pool, backs off on throttling (AIMD window
+ shared pause) and requeues a repository whose attempt hit a transient error (it resumes at the
source tag that failed); no repository starts after the time box, and re-running is idempotent, so
the next run continues where this one stopped. `run_scheduled_reconcile` is what the
`reconcile_tags` timer function calls.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from retag.logline import LOGGER, describe_error, line
from retag.reconcile.plan import Decision, Mode, SourceStatus, plan_repository
from retag.reconcile.report import ReconcileReport, RepositoryResult, SourceTagResult
from retag.registry import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    TransientRegistryError,
)
from retag.settings import format_duration
from retag.sweep import Context, SweepPolicy, emit, level_of, raise_if_failed, sweep
from retag.timeutil import as_utc

if TYPE_CHECKING:
    from retag.registry import Registry, TagInfo
    from retag.settings import Settings

DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_DURATION = timedelta(minutes=8)
"""Below the 15-minute default schedule and the Functions timeout; the next run continues."""


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
    max_attempts: int = 2,
) -> ReconcileReport:
    """Reconcile every repository in scope; never raises for registry errors (see the report).

    In scope: `settings.retag.in_scope(repository)` and, when given, `repository_filter` (full
    match). `now` (default: the current time) is the reference for the grace period. The sweep
    runs repositories on `concurrency` threads; a repository whose attempt hits a
    `TransientRegistryError` (after the transport's own retries) is requeued behind the shared
    back-off (from `retry_delay`, at most `max_retry_delay`), failing after `max_attempts`
    attempts in a row without progress or when the time box would pass first. No repository
    starts after `max_duration`: the rest are reported `not-reached` (and the run is not ok).
    Ctrl-C returns the partial report, `interrupted=True`.
    """
    reference = as_utc(now) if now is not None else datetime.now(UTC)
    shared = _Run(registry, settings, mode, reference)

    def selected(repository: str) -> bool:
        if not settings.retag.in_scope(repository):
            return False
        return repository_filter is None or bool(repository_filter.fullmatch(repository))

    outcome = sweep(
        registry.list_repositories,
        lambda repository: _RepositoryJob(shared, repository),
        selected=selected,
        policy=SweepPolicy(concurrency, max_duration, max_attempts, retry_delay, max_retry_delay),
        clock=monotonic,
        sleep=sleep,
    )
    report = ReconcileReport(mode=mode, started_at=reference, max_duration=max_duration)
    late = f"time box of {format_duration(max_duration)} over; the next run continues"
    report.repositories = [
        *outcome.results,
        *(RepositoryResult(name, "not-reached", late) for name in outcome.not_reached),
    ]
    report.excluded = outcome.excluded
    report.catalog_error = outcome.catalog_error
    report.unlisted = outcome.unlisted
    report.interrupted = outcome.interrupted
    report.requests = outcome.requests
    report.throttled = outcome.throttled
    report.duration_s = outcome.duration_s
    return report


@dataclass(frozen=True)
class _Run:
    registry: Registry
    settings: Settings
    mode: Mode
    now: datetime


class _RepositoryJob:
    """One repository, source tag by source tag; resumes at the source tag that failed."""

    def __init__(self, shared: _Run, repository: str) -> None:
        self.shared = shared
        self.repository = repository
        self.pending = list(shared.settings.retag.source_tags)
        self.done: list[SourceTagResult] = []
        self.attempts = 0
        """Attempts of the first pending source tag."""
        self.duration = 0.0

    def run(self, ctx: Context) -> RepositoryResult:
        started = time.monotonic()
        try:
            while self.pending:
                self.attempts += 1
                result = self._source(ctx, self.pending[0])
                if self.attempts > 1:
                    result = replace(result, attempts=self.attempts)
                self.done.append(result)
                self.pending.pop(0)
                self.attempts = 0
                ctx.made_progress()
        finally:
            self.duration += time.monotonic() - started
        return self._result()

    def give_up(self, error: str) -> RepositoryResult:
        if error.startswith("unexpected error"):
            reason = error
        else:
            reason = f"registry busy or unavailable: {error}; the next run retries"
        for tag in self.pending:
            self.done.append(SourceTagResult(tag, "failed", reason=reason, attempts=self.attempts))
            reason, self.attempts = "not checked: an earlier source tag failed", 0
        self.pending = []
        return self._result()

    def stop(self, reason: str) -> RepositoryResult:
        checked = len(self.done)
        total = checked + len(self.pending)
        return RepositoryResult(
            self.repository,
            "not-reached",
            f"{reason} after {checked} of {total} source tag(s); the next run continues",
            tuple(self.done),
            round(self.duration * 1000, 1),
        )

    def _result(self) -> RepositoryResult:
        return RepositoryResult.from_sources(
            self.repository, self.done, round(self.duration * 1000, 1)
        )

    def _source(self, ctx: Context, source_tag: str) -> SourceTagResult:
        registry, settings, repository = self.shared.registry, self.shared.settings, self.repository
        try:
            source = ctx.call(lambda: registry.get_tag(repository, source_tag))
            tags_on_digest = ctx.call(
                lambda: list(registry.list_tags(repository, digest=source.digest))
            )
        except NotFoundError:
            return SourceTagResult(source_tag, "absent", reason="no such tag")
        except PermissionDeniedError as error:
            return SourceTagResult(
                source_tag, "failed", reason=f"permission denied reading tags: {error}"
            )
        except TransientRegistryError:
            raise  # the sweep requeues the repository; it resumes with this source tag
        except RegistryError as error:
            return SourceTagResult(source_tag, "failed", reason=describe_error(error))

        def plan(everything: list[TagInfo] | None = None) -> Decision:
            return plan_repository(
                repository,
                source,
                tags_on_digest,
                settings.retag.template,
                self.shared.now,
                settings.reconcile.grace,
                repository_tags=everything,
            )

        decision = plan()
        if decision.outcome == "look":
            # The digest carries an older generated tag: is it still the newest (in sync), or is
            # a newer one on another digest (a rollback whose event was lost)?
            try:
                decision = plan(ctx.call(lambda: list(registry.list_tags(repository))))
            except NotFoundError:
                return SourceTagResult(source_tag, "absent", reason="repository gone")
            except TransientRegistryError:
                raise
            except RegistryError as error:
                return SourceTagResult(source_tag, "failed", reason=describe_error(error))

        def result(
            status: SourceStatus, reason: str, tag: str | None = decision.tag
        ) -> SourceTagResult:
            return SourceTagResult(
                source_tag, status, decision.digest, decision.updated_on, tag, reason
            )

        if decision.outcome in ("in-sync", "skipped", "look"):
            return result(
                "in-sync" if decision.outcome == "in-sync" else "skipped", decision.reason
            )
        if self.shared.mode == "dry-run":
            return result("would-tag", decision.reason + "; dry-run: not written")
        from retag.tagging import Push, tag_push

        push = Push(repository, source_tag, decision.digest, decision.updated_on)
        try:
            # The event path's engine: it re-reads the tags on the digest (a push that raced this
            # run is not tagged twice) and reads the image labels when the template needs them.
            tagged = ctx.call(lambda: tag_push(registry, settings.retag.template, push))
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
        if tagged.written:
            from retag.announce import announce
            from retag.audit import TagAddedEvent

            # A failed nudge or audit event is logged (WARNING) and not retried: the tag stands.
            added = TagAddedEvent(
                registry.login_server, repository, source_tag, decision.digest, tagged.tag,
                decision.updated_on,
            )  # fmt: skip
            announce(settings.notify, added, ca_bundle=settings.registry.ca_bundle)
            return result("tagged", decision.reason, tagged.tag)
        if tagged.skipped or tagged.superseded:
            # A missing label is the image's, not the run's, failure: reported once per run,
            # never retried within it (the labels of a digest are cached: no re-read either).
            return result("skipped", tagged.reason, None)
        return result("in-sync", tagged.reason, tagged.tag)


# --------------------------------------------------------------------------------------------
# Timer (the `reconcile_tags` function)


def run_scheduled_reconcile(
    settings: Settings,
    registry_factory: Callable[[], Registry],
    *,
    log: logging.Logger | Callable[[str], None] = LOGGER,
    past_due: bool = False,
    now: datetime | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_duration: timedelta = DEFAULT_MAX_DURATION,
) -> ReconcileReport | None:
    """The `reconcile_tags` timer: one run honouring RECONCILE_MODE (`off` returns None without
    building the registry). Logs one line per repository that is not in sync (tagged, would-tag,
    skipped, failed, not-reached) and one summary line. `log` is a Logger (WARNING for skipped,
    ERROR for failed and for a summary that is not ok) or any callable taking a line. The caller
    raises (`raise_if_failed`) when the report is not ok, after this has logged it."""
    mode = settings.reconcile.mode
    if mode == "off":
        fields: dict[str, object] = {"mode": "off", "ok": True}
        if past_due:
            fields["past_due"] = True
        fields["reason"] = "RECONCILE_MODE=off"
        emit(log, logging.INFO, line("reconcile", fields))
        return None
    report = reconcile_registry(
        registry_factory(),
        settings,
        mode=mode,
        concurrency=concurrency,
        max_duration=max_duration,
        now=now,
    )
    report.past_due = past_due
    levels = {"failed": logging.ERROR, "skipped": logging.WARNING, "not-reached": logging.WARNING}
    for result in report.repositories:
        if result.status not in ("in-sync", "not-applicable"):
            emit(log, levels.get(result.status, logging.INFO), result.log_line())
    emit(log, level_of(report.ok), report.log_line())
    return report


run = reconcile_registry
"""`retag.reconcile.job.run`: the one entry (registry and settings in, report out)."""

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_DURATION",
    "raise_if_failed",
    "reconcile_registry",
    "run",
    "run_scheduled_reconcile",
]
