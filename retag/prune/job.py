"""The prune executor: list, plan and execute repository by repository, time-boxed.

- Streams repositories from `registry.list_repositories()`; only one repository's listings and
  plan are in memory at a time.
- Deletions run on a thread pool of at most `concurrency` workers. The coordinating (main) thread
  owns all state; workers only make the registry call.
- Throttling is normal: the adapter retries 429/5xx itself (honouring `Retry-After`) and raises
  `TransientRegistryError` when it gives up. Here that halves the number of deletions in flight
  (AIMD: +1 per window of successes, halved on throttling), pauses every worker with an exponential
  back-off, and puts the deletion back in the queue. A deletion is failed only after
  `max_attempts` transient errors in a row, or on a permanent error; a failure never aborts the run.
- Time box: no deletion starts after `max_duration`; what is left is reported as `remaining` (and
  repositories not reached as `unvisited`); the next run continues, since pruning is idempotent.
- Order inside a repository: tag deletions (oldest first), then untagged manifests wave by wave
  (an index before its children). Right before deleting a manifest, its properties are read again
  and it is kept if it gained a tag or a lock; a manifest whose tag or parent deletion did not
  succeed is kept too.
- Dry-run sends no DELETE (and no re-read): it reports exactly the plan delete mode would execute.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypeGuard, TypeVar, cast

from retag.logline import describe_error
from retag.oci import INDEX_MEDIA_TYPES, MAY_HAVE_SUBJECT
from retag.prune.plan import (
    Deletion,
    Failure,
    KeepReason,
    Kept,
    PrunePolicy,
    PruneReport,
    RepositoryPlan,
    RepositoryResult,
    inspect_manifest,
    plan_repository,
)
from retag.registry import (
    ConflictError,
    ManifestInfo,
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RegistryError,
    TagInfo,
    TransientRegistryError,
)

if TYPE_CHECKING:
    from retag.settings import Settings

Mode = Literal["dry-run", "delete"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Progress:
    """Reported to the progress callback (from the coordinating thread)."""

    repository: str
    repositories_done: int
    planned: int
    """Deletions planned in this repository."""
    done: int
    """Deletions finished in this repository (deleted, failed or skipped)."""
    deleted_total: int
    failed_total: int
    elapsed_seconds: float


# ------------------------------------------------------------------------------------------
# Adaptive back-off
# ------------------------------------------------------------------------------------------


class AdaptiveLimiter:
    """AIMD window on deletions in flight plus a shared pause after throttling.

    Not thread-safe: only the coordinating thread uses it.
    """

    def __init__(
        self,
        max_in_flight: int,
        clock: Callable[[], float],
        *,
        base_pause: float = 0.25,
        max_pause: float = 30.0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("concurrency must be >= 1")
        self.max_in_flight = max_in_flight
        self.window = float(max_in_flight)
        self.clock = clock
        self.base_pause = base_pause
        self.max_pause = max_pause
        self.paused_until = 0.0
        self.consecutive_throttles = 0
        self.throttled = 0
        self._last_decrease = -1e18

    def allowed(self, in_flight: int) -> bool:
        return in_flight < max(1, int(self.window)) and self.clock() >= self.paused_until

    def on_success(self) -> None:
        self.consecutive_throttles = 0
        self.window = min(float(self.max_in_flight), self.window + 1.0 / self.window)

    def on_throttled(self, started_at: float) -> None:
        """A deletion started at `started_at` was throttled (or hit a transient error)."""
        self.throttled += 1
        if started_at < self._last_decrease:
            return  # already reacted to this burst: its requests were all in flight together
        now = self.clock()
        self._last_decrease = now
        self.consecutive_throttles += 1
        self.window = max(1.0, self.window / 2)
        pause = min(self.max_pause, self.base_pause * 2 ** (self.consecutive_throttles - 1))
        self.paused_until = max(self.paused_until, now + pause)


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


@dataclass
class _Task:
    deletion: Deletion
    attempts: int = 0


@dataclass
class _Outcome:
    status: Literal["deleted", "kept", "transient", "failed"]
    error: str = ""
    reason: KeepReason | None = None


@dataclass
class _RepoRun:
    repository: str
    deleted: list[Deletion] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    remaining: list[Deletion] = field(default_factory=list)
    succeeded: set[tuple[str, str]] = field(default_factory=set)
    """(kind, name) of deletions that succeeded."""
    consecutive_denied: int = 0


class _Runner:
    def __init__(
        self,
        registry: Registry,
        policy: PrunePolicy,
        *,
        mode: Mode,
        concurrency: int,
        deadline: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        now: Callable[[], datetime],
        progress: Callable[[Progress], None] | None,
        max_attempts: int,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.mode = mode
        self.concurrency = concurrency
        self.deadline = deadline
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.progress = progress
        self.max_attempts = max_attempts
        self.limiter = AdaptiveLimiter(concurrency, clock)
        self.started = clock()
        self.deleted_total = 0
        self.failed_total = 0
        self.repositories_done = 0
        self.timed_out = False

    def expired(self) -> bool:
        if self.clock() >= self.deadline:
            self.timed_out = True
        return self.timed_out

    # -- listing -----------------------------------------------------------------------------

    def _retrying(self, call: Callable[[], _T]) -> _T:
        """A read (a whole listing, or one GET), retried with back-off while time remains."""
        attempt = 0
        while True:
            try:
                return call()
            except TransientRegistryError:
                attempt += 1
                pause = min(30.0, 0.5 * 2 ** (attempt - 1))
                if attempt >= self.max_attempts or self.clock() + pause >= self.deadline:
                    raise
                self.sleep(pause)

    def _plan(
        self, repository: str, tags: list[TagInfo], manifests: list[ManifestInfo]
    ) -> RepositoryPlan:
        """Plan; with untagged deletion on, first read what the listing cannot tell.

        An index listed without `references` is read for its children (they must stay while
        it does). Every OCI manifest or index the plan would delete is read for a `subject`
        (referrers are kept); then the plan is made again with what was learnt. Both modes do
        this, so dry-run shows exactly what delete mode would delete.
        """
        now = self.now()
        if not self.policy.untagged:
            return plan_repository(repository, tags, manifests, self.policy, now)
        position = {m.digest: i for i, m in enumerate(manifests)}
        inspected: set[str] = set()

        def inspect(digest: str) -> None:
            inspected.add(digest)
            index = position[digest]
            try:
                manifest = self._retrying(lambda: self.registry.get_manifest(repository, digest))
            except NotFoundError:
                manifests[index] = replace(manifests[index], media_type=None)  # gone: keep out
                return
            manifests[index] = inspect_manifest(manifests[index], manifest.raw)

        for m in list(manifests):
            if m.media_type in INDEX_MEDIA_TYPES and not m.references:
                inspect(m.digest)
        while True:
            plan = plan_repository(repository, tags, manifests, self.policy, now)
            unread = [
                d.digest
                for d in plan.manifest_deletions
                if d.digest not in inspected
                and manifests[position[d.digest]].media_type in MAY_HAVE_SUBJECT
            ]
            if not unread:
                return plan
            for digest in unread:
                inspect(digest)

    def prune_repository(self, pool: ThreadPoolExecutor, repository: str) -> RepositoryResult:
        before = self.registry.requests_made
        try:
            tags = self._retrying(lambda: list(self.registry.list_tags(repository)))
            manifests = self._retrying(lambda: list(self.registry.list_manifests(repository)))
        except NotFoundError:
            return RepositoryResult(repository, requests=self.registry.requests_made - before)
        except RegistryError as exc:
            return RepositoryResult(
                repository,
                error=f"listing failed: {describe_error(exc)}",
                requests=self.registry.requests_made - before,
            )
        try:
            plan = self._plan(repository, tags, manifests)
        except RegistryError as exc:
            return RepositoryResult(
                repository,
                error=f"inspecting manifests failed: {describe_error(exc)}",
                requests=self.registry.requests_made - before,
            )
        del tags, manifests
        run = _RepoRun(repository, kept=list(plan.kept))
        if self.mode == "dry-run":
            run.deleted = list(plan.deletions)
        elif plan.deletions and self.expired():
            run.remaining = list(plan.deletions)
        else:
            phases: list[list[Deletion]] = [list(plan.tag_deletions)]
            for deletion in plan.manifest_deletions:
                while len(phases) <= deletion.wave + 1:
                    phases.append([])
                phases[deletion.wave + 1].append(deletion)
            for phase in phases:
                if phase:
                    self._run_phase(pool, run, phase, len(plan.deletions))
        order = {(d.kind, d.name): i for i, d in enumerate(plan.deletions)}
        run.deleted.sort(key=lambda d: order[d.kind, d.name])
        run.failed.sort(key=lambda f: order[f.item.kind, f.item.name])
        return RepositoryResult(
            repository,
            deleted=tuple(run.deleted),
            kept=tuple(run.kept),
            failed=tuple(run.failed),
            remaining=tuple(run.remaining),
            requests=self.registry.requests_made - before,
        )

    # -- deleting ----------------------------------------------------------------------------

    def _run_phase(
        self, pool: ThreadPoolExecutor, run: _RepoRun, phase: list[Deletion], planned: int
    ) -> None:
        queue: deque[_Task] = deque(_Task(d) for d in phase)
        in_flight: dict[Future[_Outcome], tuple[_Task, float]] = {}
        while queue or in_flight:
            while queue and not self.expired() and self.limiter.allowed(len(in_flight)):
                task = queue.popleft()
                skip = self._precondition(run, task.deletion)
                if skip is not None:
                    run.kept.append(_kept(task.deletion, skip))
                    continue
                task.attempts += 1
                future = pool.submit(self._delete, run.repository, task.deletion)
                in_flight[future] = (task, self.clock())
            if not in_flight:
                if queue and self.expired():
                    run.remaining.extend(t.deletion for t in queue)
                    queue.clear()
                elif queue:  # paused after throttling
                    wake = min(self.limiter.paused_until, self.deadline) - self.clock()
                    self.sleep(max(0.001, wake))
                continue
            timeout = None
            pause_left = self.limiter.paused_until - self.clock()
            if queue and pause_left > 0:  # wake up when the pause ends to start more
                timeout = pause_left
            done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                task, started = in_flight.pop(future)
                self._record(run, task, started, future.result(), queue)
                if self.progress is not None:
                    self.progress(
                        Progress(
                            run.repository,
                            self.repositories_done,
                            planned,
                            len(run.deleted) + len(run.failed) + len(run.kept),
                            self.deleted_total,
                            self.failed_total,
                            self.clock() - self.started,
                        )
                    )

    def _precondition(self, run: _RepoRun, deletion: Deletion) -> KeepReason | None:
        """A manifest goes only once its tags and the indexes above it are gone."""
        if deletion.kind != "manifest":
            return None
        if any(("manifest", parent) not in run.succeeded for parent in deletion.parents):
            return KeepReason.REFERENCED_BY_INDEX
        if any(("tag", tag) not in run.succeeded for tag in deletion.tags):
            return KeepReason.TAGGED
        return None

    def _record(
        self, run: _RepoRun, task: _Task, started: float, outcome: _Outcome, queue: deque[_Task]
    ) -> None:
        deletion = task.deletion
        if outcome.status == "deleted":
            self.limiter.on_success()
            run.consecutive_denied = 0
            run.deleted.append(deletion)
            run.succeeded.add((deletion.kind, deletion.name))
            self.deleted_total += 1
        elif outcome.status == "kept":
            self.limiter.on_success()
            assert outcome.reason is not None
            run.kept.append(_kept(deletion, outcome.reason))
        elif outcome.status == "transient":
            self.limiter.on_throttled(started)
            if task.attempts < self.max_attempts:
                queue.append(task)
            else:
                self._fail(
                    run, deletion, f"{outcome.error} (gave up after {task.attempts} attempts)"
                )
        else:
            self._fail(run, deletion, outcome.error)
            if outcome.error.startswith("permission denied"):
                run.consecutive_denied += 1
                if run.consecutive_denied >= 5:  # this identity cannot delete here: stop asking
                    while queue:
                        self._fail(
                            run, queue.popleft().deletion, outcome.error + " (not attempted)"
                        )

    def _fail(self, run: _RepoRun, deletion: Deletion, error: str) -> None:
        run.failed.append(Failure(deletion, error))
        self.failed_total += 1

    def _delete(self, repository: str, deletion: Deletion) -> _Outcome:
        """Runs on a worker thread: registry calls only, no shared state."""
        try:
            if deletion.kind == "tag":
                self.registry.delete_tag(repository, deletion.name)
                return _Outcome("deleted")
            try:
                info = self.registry.get_manifest_info(repository, deletion.digest)
            except NotFoundError:
                return _Outcome("kept", reason=KeepReason.GONE)
            if info.tags:
                return _Outcome("kept", reason=KeepReason.GAINED_TAG)
            if info.locked:
                return _Outcome("kept", reason=KeepReason.MANIFEST_LOCKED)
            try:
                self.registry.delete_manifest(repository, deletion.digest)
            except NotFoundError:
                return _Outcome("kept", reason=KeepReason.GONE)
            return _Outcome("deleted")
        except NotFoundError:
            return _Outcome("deleted")  # the tag is already gone: what we wanted (idempotent)
        except ConflictError:
            return _Outcome("kept", reason=KeepReason.LOCKED)  # locked after planning
        except TransientRegistryError as exc:
            return _Outcome("transient", describe_error(exc))
        except PermissionDeniedError as exc:
            return _Outcome("failed", f"permission denied: {describe_error(exc)}")
        except Exception as exc:  # one failed deletion never aborts the run
            return _Outcome("failed", describe_error(exc))


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
    max_attempts: int = 6,
    keep_items: bool = True,
) -> PruneReport:
    """Prune every repository `repositories` selects (a full-match regex or a predicate).

    `now` is the wall clock ages are measured against (a datetime, or a callable read once per
    repository; default: the system clock, UTC). `clock`/`sleep` drive the time box and back-off.
    `on_repository` is called with each repository's full result as soon as it is done.
    `keep_items=False` keeps, per repository, only counts and the deleted, locked, failed and
    remaining items in the report: memory stays bounded by the largest repository (the timer,
    the CLI table, and the CLI's `--json`, which streams each repository through `on_repository`).
    """
    if mode not in ("dry-run", "delete"):
        raise ValueError(f"mode must be 'dry-run' or 'delete', got {mode!r}")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    if isinstance(now, datetime):
        fixed = now
        read_now: Callable[[], datetime] = lambda: fixed  # noqa: E731
    else:
        read_now = now or (lambda: datetime.now(UTC))
    selected = _repository_filter(repositories)
    start = clock()
    report = PruneReport(mode=mode, started_at=read_now())
    requests_before = registry.requests_made
    runner = _Runner(
        registry,
        policy,
        mode=mode,
        concurrency=concurrency,
        deadline=start + max_duration.total_seconds(),
        clock=clock,
        sleep=sleep,
        now=read_now,
        progress=progress,
        max_attempts=max_attempts,
    )
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="prune") as pool:
        try:
            for repository in registry.list_repositories():
                if not selected(repository):
                    continue
                if runner.expired():
                    report.unvisited.append(repository)
                    continue
                result = runner.prune_repository(pool, repository)
                runner.repositories_done += 1
                if on_repository is not None:
                    on_repository(result)  # every item, before the report keeps only summaries
                report.repositories.append(result if keep_items else result.summarised())
        except RegistryError as exc:
            report.catalog_error = f"listing repositories failed: {describe_error(exc)}"
    report.timed_out = runner.timed_out
    report.duration_seconds = clock() - start
    report.requests = registry.requests_made - requests_before
    report.throttled = runner.limiter.throttled
    return report


# ------------------------------------------------------------------------------------------
# The timer
# ------------------------------------------------------------------------------------------


def run_scheduled_prune(
    settings: Settings,
    registry: Registry | Callable[[], Registry],
    *,
    past_due: bool,
    log: Callable[[str], None],
    now: datetime | Callable[[], datetime] | None = None,
) -> PruneReport:
    """The `prune_tags` timer: honours PRUNE_MODE, logs one line per repository and one per run.

    `registry` may be a factory: with PRUNE_MODE=off it is never called.
    """
    prune = settings.prune
    if past_due:
        log("prune timer is past due; running now")
    if prune.mode == "off":
        log("prune run mode=off: skipped (set PRUNE_MODE=dry-run or delete to enable)")
        return PruneReport(mode="off", started_at=datetime.now(UTC))
    client = registry if _is_registry(registry) else cast("Callable[[], Registry]", registry)()
    mode: Mode = prune.mode
    report = prune_with_settings(
        client,
        settings,
        mode=mode,
        now=now,
        on_repository=lambda result: log(result.log_line(mode)),
    )
    log(report.log_line())
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
    describe: what the timer and `python -m retag prune` both run. The report keeps summaries
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


def _is_registry(candidate: object) -> TypeGuard[Registry]:
    return hasattr(candidate, "list_repositories") and hasattr(candidate, "delete_tag")


__all__ = [
    "AdaptiveLimiter",
    "Progress",
    "prune_registry",
    "prune_with_settings",
    "run_scheduled_prune",
]
