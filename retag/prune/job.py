"""The prune job: per repository, list, plan and delete, on the one catalog sweep (`retag.sweep`).

- The sweep streams the catalog and runs one `_RepositoryJob` per repository in scope on its
  bounded pool; only the repositories in flight have their listings and plan in memory.
- Throttling is normal: the transport retries a request (429/5xx, honouring `Retry-After`) and
  raises `TransientRegistryError` when it gives up. That ends the repository's attempt; the sweep
  backs off (AIMD window + shared pause) and requeues it, and the job resumes where it stopped
  (listings already read are not read again, deletions done are not redone).
- Time box: no deletion starts after `max_duration`; what is left is reported as `remaining`
  (and repositories not reached as `unvisited`); the run is then not ok, and the next run
  continues, since pruning is idempotent.
- Order inside a repository: tag deletions (oldest first), then untagged manifests wave by wave
  (an index before its children). Right before deleting a manifest, its properties are read again
  and it is kept if it gained a tag or a lock; a manifest whose tag or parent deletion did not
  succeed is kept too.
- Dry-run sends no DELETE (and no re-read): it reports exactly the plan delete mode would execute.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypeGuard, cast

from retag.logline import LOGGER, describe_error, line
from retag.oci import INDEX_MEDIA_TYPES, MAY_HAVE_SUBJECT
from retag.prune.plan import (
    Deletion,
    KeepReason,
    Kept,
    PrunePolicy,
    RepositoryPlan,
    inspect_manifest,
    plan_repository,
)
from retag.prune.report import Failure, PruneReport, RepositoryResult
from retag.registry import (
    ConflictError,
    ManifestInfo,
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RegistryError,
    TagInfo,
    TransientRegistryError,
    tally_requests,
)
from retag.sweep import Context, SweepPolicy, emit, level_of, raise_if_failed, sweep

if TYPE_CHECKING:
    from retag.settings import Settings

Mode = Literal["dry-run", "delete"]
PAST_DUE = "the timer is past due; running now"
_ENABLE = " (set PRUNE_MODE=dry-run or delete to enable)"
DENIED_IN_A_ROW = 5
"""After this many permission refusals in a row, the rest of the repository is not asked."""


@dataclass(frozen=True)
class Progress:
    """Reported to the progress callback after each deletion (calls are serialised)."""

    repository: str
    repositories_done: int
    planned: int
    """Deletions planned in this repository."""
    done: int
    """Deletions finished in this repository (deleted, failed or skipped)."""
    deleted_total: int
    failed_total: int
    elapsed_seconds: float


@dataclass
class _Run:
    """What every repository job of one run shares (guarded by `lock`)."""

    registry: Registry
    policy: PrunePolicy
    mode: Mode
    now: Callable[[], datetime]
    progress: Callable[[Progress], None] | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    deleted_total: int = 0
    failed_total: int = 0
    repositories_done: int = 0


class _RepositoryJob:
    """One repository: list, plan (reading what the listing cannot tell), delete phase by phase.
    Resumable: every step's result is kept, so a requeued attempt continues where it stopped."""

    def __init__(self, run: _Run, repository: str) -> None:
        self.shared = run
        self.repository = repository
        self.tags: list[TagInfo] | None = None
        self.manifests: list[ManifestInfo] | None = None
        self.inspected: set[str] = set()
        self.plan: RepositoryPlan | None = None
        self.queue: list[Deletion] = []
        self.next = 0
        self.deleted: list[Deletion] = []
        self.kept: list[Kept] = []
        self.failed: list[Failure] = []
        self.succeeded: set[tuple[str, str]] = set()
        self.denied_in_a_row = 0
        self.requests = 0
        self.duration = 0.0
        self.stage = "listing"

    # -- the sweep's Job protocol ----------------------------------------------------------------

    def run(self, ctx: Context) -> RepositoryResult:
        started = time.monotonic()
        try:
            with tally_requests() as tally:
                try:
                    return self._run(ctx)
                finally:
                    self.requests += tally.count
        finally:
            self.duration += time.monotonic() - started

    def give_up(self, error: str) -> RepositoryResult:
        return self._result(error=f"{self.stage} failed: {error}")

    def stop(self, reason: str) -> RepositoryResult:
        return self._result()  # what was not deleted yet is `remaining`

    # -- steps -----------------------------------------------------------------------------------

    def _run(self, ctx: Context) -> RepositoryResult:
        registry = self.shared.registry
        repository = self.repository
        try:
            if self.tags is None:
                self.tags = ctx.call(lambda: list(registry.list_tags(repository)))
                ctx.made_progress()
            if self.manifests is None:
                self.manifests = ctx.call(lambda: list(registry.list_manifests(repository)))
                ctx.made_progress()
        except NotFoundError:
            return self._result()  # deleted meanwhile: nothing to prune
        except TransientRegistryError:
            raise
        except RegistryError as exc:
            return self._result(error=f"listing failed: {describe_error(exc)}")
        if self.plan is None:
            self.stage = "inspecting manifests"
            try:
                self.plan = self._plan(ctx, self.tags, self.manifests)
            except TransientRegistryError:
                raise  # the sweep requeues this repository; manifests read are not read again
            except RegistryError as exc:
                return self._result(error=f"inspecting manifests failed: {describe_error(exc)}")
            self.tags, self.manifests = [], []  # the plan holds what is needed
            self.kept = list(self.plan.kept)
            self.queue = list(self.plan.deletions)  # tags oldest first, then manifests by wave
            self.stage = "deleting"
        if self.shared.mode == "dry-run":
            self.deleted = list(self.queue)
            self.next = len(self.queue)
            return self._result()
        while self.next < len(self.queue):
            if ctx.expired():
                break  # the rest is `remaining`
            deletion = self.queue[self.next]
            self._delete(ctx, deletion)  # raises TransientRegistryError: requeued, resumes here
            self.next += 1
            ctx.made_progress()
            self._progress(ctx)
        return self._result()

    def _plan(
        self, ctx: Context, tags: list[TagInfo], manifests: list[ManifestInfo]
    ) -> RepositoryPlan:
        """Plan; with untagged deletion on, first read what the listing cannot tell.

        An index listed without `references` is read for its children (they must stay while
        it does). Every OCI manifest or index the plan would delete is read for a `subject`
        (referrers are kept); then the plan is made again with what was learnt. Both modes do
        this, so dry-run shows exactly what delete mode would delete.
        """
        now = self.shared.now()
        policy = self.shared.policy
        if not policy.untagged:
            return plan_repository(self.repository, tags, manifests, policy, now)
        position = {m.digest: i for i, m in enumerate(manifests)}
        registry = self.shared.registry

        def inspect(digest: str) -> None:
            index = position[digest]
            try:
                manifest = ctx.call(lambda: registry.get_manifest(self.repository, digest))
            except NotFoundError:
                manifests[index] = replace(manifests[index], media_type=None)  # gone: keep out
            else:
                manifests[index] = inspect_manifest(manifests[index], manifest.raw)
            self.inspected.add(digest)  # kept across a requeue: never read twice
            ctx.made_progress()

        for m in list(manifests):
            indexed = m.media_type in INDEX_MEDIA_TYPES and not m.references
            if indexed and m.digest not in self.inspected:
                inspect(m.digest)
        while True:
            plan = plan_repository(self.repository, tags, manifests, policy, now)
            unread = [
                d.digest
                for d in plan.manifest_deletions
                if d.digest not in self.inspected
                and manifests[position[d.digest]].media_type in MAY_HAVE_SUBJECT
            ]
            if not unread:
                return plan
            for digest in unread:
                inspect(digest)

    def _delete(self, ctx: Context, deletion: Deletion) -> None:
        """Delete one item (a precondition may keep it); transient errors propagate."""
        skip = self._precondition(deletion)
        if skip is not None:
            self.kept.append(_kept(deletion, skip))
            return
        try:
            reason = self._send(ctx, deletion)
        except ConflictError:
            reason = KeepReason.LOCKED  # locked after planning
        except PermissionDeniedError as exc:
            self._fail(f"permission denied: {describe_error(exc)}")
            return
        except NotFoundError:
            reason = None  # the tag is already gone: what we wanted (idempotent)
        except TransientRegistryError:
            raise  # the sweep requeues this repository; it resumes with this deletion
        except RegistryError as exc:
            self._fail(describe_error(exc))
            return
        self.denied_in_a_row = 0
        if reason is not None:
            self.kept.append(_kept(deletion, reason))
            return
        self.deleted.append(deletion)
        self.succeeded.add((deletion.kind, deletion.name))
        with self.shared.lock:
            self.shared.deleted_total += 1

    def _send(self, ctx: Context, deletion: Deletion) -> KeepReason | None:
        registry = self.shared.registry
        repository = self.repository
        if deletion.kind == "tag":
            ctx.call(lambda: registry.delete_tag(repository, deletion.name))
            return None
        try:
            info = ctx.call(lambda: registry.get_manifest_info(repository, deletion.digest))
        except NotFoundError:
            return KeepReason.GONE
        if info.tags:
            return KeepReason.GAINED_TAG
        if info.locked:
            return KeepReason.MANIFEST_LOCKED
        try:
            ctx.call(lambda: registry.delete_manifest(repository, deletion.digest))
        except NotFoundError:
            return KeepReason.GONE
        return None

    def _precondition(self, deletion: Deletion) -> KeepReason | None:
        """A manifest goes only once its tags and the indexes above it are gone."""
        if deletion.kind != "manifest":
            return None
        if any(("manifest", parent) not in self.succeeded for parent in deletion.parents):
            return KeepReason.REFERENCED_BY_INDEX
        if any(("tag", tag) not in self.succeeded for tag in deletion.tags):
            return KeepReason.TAGGED
        return None

    def _fail(self, error: str) -> None:
        deletion = self.queue[self.next]
        self.failed.append(Failure(deletion, error))
        with self.shared.lock:
            self.shared.failed_total += 1
        if not error.startswith("permission denied"):
            self.denied_in_a_row = 0
            return
        self.denied_in_a_row += 1
        if self.denied_in_a_row >= DENIED_IN_A_ROW:  # this identity cannot delete here
            rest = self.queue[self.next + 1 :]
            self.failed.extend(Failure(d, error + " (not attempted)") for d in rest)
            with self.shared.lock:
                self.shared.failed_total += len(rest)
            self.next = len(self.queue) - 1  # the loop steps past the end

    def _progress(self, ctx: Context) -> None:
        if self.shared.progress is None:
            return
        with self.shared.lock:
            self.shared.progress(
                Progress(
                    self.repository,
                    self.shared.repositories_done,
                    len(self.queue),
                    self.next,
                    self.shared.deleted_total,
                    self.shared.failed_total,
                    ctx.elapsed(),
                )
            )

    def _result(self, *, error: str | None = None) -> RepositoryResult:
        remaining = self.queue[self.next :]
        order = {(d.kind, d.name): i for i, d in enumerate(self.queue)}
        with self.shared.lock:
            self.shared.repositories_done += 1
        return RepositoryResult(
            self.repository,
            deleted=tuple(sorted(self.deleted, key=lambda d: order.get((d.kind, d.name), 0))),
            kept=tuple(self.kept),
            failed=tuple(sorted(self.failed, key=lambda f: order[f.item.kind, f.item.name])),
            remaining=tuple(remaining),
            error=error,
            requests=self.requests,
            mode=self.shared.mode,
            duration_ms=round(self.duration * 1000, 1),
        )


def _kept(deletion: Deletion, reason: KeepReason) -> Kept:
    return Kept(deletion.kind, deletion.name, deletion.digest, reason)


RepositoryFilter = Callable[[str], bool] | re.Pattern[str] | str | None


def _repository_filter(repositories: RepositoryFilter) -> Callable[[str], bool]:
    if repositories is None:
        return lambda _name: True
    if isinstance(repositories, str):
        repositories = re.compile(repositories)
    if isinstance(repositories, re.Pattern):
        pattern = repositories
        return lambda name: pattern.fullmatch(name) is not None
    return repositories


def prune_registry(
    registry: Registry,
    policy: PrunePolicy,
    *,
    mode: Mode,
    repositories: RepositoryFilter = None,
    concurrency: int = 8,
    max_duration: timedelta = timedelta(minutes=8),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: datetime | Callable[[], datetime] | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_repository: Callable[[RepositoryResult], None] | None = None,
    max_attempts: int = 2,
    keep_items: bool = True,
) -> PruneReport:
    """Prune every repository `repositories` selects (a full-match regex or a predicate).

    `now` is the wall clock ages are measured against (a datetime, or a callable read once per
    repository; default: the system clock, UTC). `clock`/`sleep` drive the time box and back-off.
    `on_repository` is called with each repository's full result, in catalog order, as soon as
    it and those before it are done. `max_attempts`: attempts of one repository in a row without
    progress before it fails. `keep_items=False` keeps, per repository, only counts and the
    deleted, locked, failed and remaining items in the report: memory stays bounded by the
    repositories in flight (the timer, the CLI table, and the CLI's `--json`, which streams each
    repository through `on_repository`). Ctrl-C returns the partial report, `interrupted=True`.
    """
    if mode not in ("dry-run", "delete"):
        raise ValueError(f"mode must be 'dry-run' or 'delete', got {mode!r}")
    if isinstance(now, datetime):
        fixed = now
        read_now: Callable[[], datetime] = lambda: fixed  # noqa: E731
    else:
        read_now = now or (lambda: datetime.now(UTC))
    run = _Run(registry, policy, mode, read_now, progress)
    report = PruneReport(mode=mode, started_at=read_now(), max_duration=max_duration)

    def collect(result: RepositoryResult) -> None:
        # In the report first: a Ctrl-C while `on_repository` writes cannot lose the result.
        report.repositories.append(result if keep_items else result.summarised())
        if on_repository is not None:
            on_repository(result)  # every item; the report keeps only summaries

    outcome = sweep(
        registry.list_repositories,
        lambda repository: _RepositoryJob(run, repository),
        selected=_repository_filter(repositories),
        policy=SweepPolicy(concurrency, max_duration, max_attempts),
        clock=clock,
        sleep=sleep,
        on_result=collect,
    )
    report.unvisited = list(outcome.not_reached)
    # Cut by the time box or not, a catalog not listed to the end is a run that did not do what
    # it was asked (the repositories after the cut were never even seen).
    report.catalog_error = outcome.catalog_error or outcome.unlisted
    report.interrupted = outcome.interrupted
    report.timed_out = outcome.timed_out or any(r.remaining for r in report.repositories)
    report.duration_s = outcome.duration_s
    report.requests = outcome.requests
    report.throttled = outcome.throttled
    return report


# ------------------------------------------------------------------------------------------
# The timer
# ------------------------------------------------------------------------------------------


def run_scheduled_prune(
    settings: Settings,
    registry: Registry | Callable[[], Registry],
    *,
    past_due: bool,
    log: logging.Logger | Callable[[str], None] = LOGGER,
    now: datetime | Callable[[], datetime] | None = None,
) -> PruneReport:
    """The `prune_tags` timer: honours PRUNE_MODE, logs one line per repository and one per run
    (a Logger gets them at the level of their outcome: ERROR when not ok).

    `registry` may be a factory: with PRUNE_MODE=off it is never called. The caller raises
    (`raise_if_failed`) when the report is not ok, after this has logged it.
    """
    prune = settings.prune
    if past_due:
        emit(log, logging.INFO, line("prune-timer", {"past_due": True, "message": PAST_DUE}))
    if prune.mode == "off":
        off = {"mode": "off", "ok": True, "reason": "PRUNE_MODE=off: skipped" + _ENABLE}
        emit(log, logging.INFO, line("prune", off))
        return PruneReport(mode="off", started_at=datetime.now(UTC))
    client = registry if _is_registry(registry) else cast("Callable[[], Registry]", registry)()
    mode: Mode = prune.mode
    report = prune_with_settings(
        client,
        settings,
        mode=mode,
        now=now,
        on_repository=lambda r: emit(log, level_of(r.ok), r.log_line()),
    )
    emit(log, level_of(report.ok), report.log_line())
    return report


def prune_with_settings(
    registry: Registry,
    settings: Settings,
    *,
    mode: Mode,
    now: datetime | Callable[[], datetime] | None = None,
    progress: Callable[[Progress], None] | None = None,
    on_repository: Callable[[RepositoryResult], None] | None = None,
) -> PruneReport:
    """One run with the policy, scope, concurrency and time box the PRUNE_* and RETAG_* settings
    describe: what the timer and `acr-retag prune` both run. The report keeps summaries
    only (`keep_items=False`); every item reaches `on_repository`."""
    prune = settings.prune
    return prune_registry(
        registry,
        PrunePolicy.from_settings(settings),
        mode=mode,
        repositories=lambda name: prune.in_scope(name, settings.retag),
        concurrency=prune.concurrency,
        max_duration=prune.max_duration,
        now=now,
        progress=progress,
        on_repository=on_repository,
        keep_items=False,
    )


run = prune_with_settings
"""`retag.prune.job.run`: the one entry (settings in, report out)."""


def _is_registry(candidate: object) -> TypeGuard[Registry]:
    return hasattr(candidate, "list_repositories") and hasattr(candidate, "delete_tag")


__all__ = [
    "Progress",
    "prune_registry",
    "prune_with_settings",
    "raise_if_failed",
    "run",
    "run_scheduled_prune",
]
