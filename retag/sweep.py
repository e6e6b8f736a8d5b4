"""ONE catalog sweep: the engine prune and reconcile both run on.

`sweep()` streams the catalog and runs one job per repository in scope on a bounded thread pool:

- **Restartable listing.** A transient failure listing the catalog (after the transport's own
  retries) backs off and lists again from the start, skipping names already seen. A permanent
  one ends the listing (`catalog_error`); work already started still finishes.
- **Time box.** No repository starts after `max_duration`; repositories listed later are
  `not_reached`. Jobs ask `Context.expired()` before each unit of work (a deletion) and stop.
- **One back-off policy** (`Throttle`): an AIMD window on registry calls in flight (+1 per window
  of successes, halved on throttling; one reaction per burst) plus a shared, exponential pause.
  Chosen over a shared pause alone: after a pause alone every worker bursts again at full
  concurrency into the same token bucket and is refused again; halving what is in flight
  converges on the rate the registry grants (ACR throttles with a token bucket per registry and
  identity), so fewer requests are wasted on 429s. The pause is shared, so a refusal slows
  every worker, not only the one refused.
- **Retries.** The transport retries a request; here the only retry is of a *repository*: a job
  that raises `TransientRegistryError` is requeued (behind the shared pause) and resumes from its
  own state; it fails after `max_attempts` attempts in a row that made no progress (2: one
  requeue, since each request was already retried by the transport), or when the time box would
  pass first. Never a single call retried here.
- **Requests.** Each attempt runs inside `tally_requests()` in its worker thread; the catalog
  listing inside one in the coordinating thread. `SweepOutcome.requests` is their sum.
- **Failures are loud.** An unexpected exception in a job is logged WITH its traceback
  (`logline.LOGGER`) and the repository counts as failed (`Job.give_up`).
- **Ctrl-C.** KeyboardInterrupt in the coordinating thread: stop starting work, let what is in
  flight finish (bounded by `drain_seconds`), and return the partial outcome, `interrupted=True`.

Results come back in catalog order (`on_result` too), whatever order the workers finish in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar

from retag.logline import LOGGER, describe_error, level_for
from retag.registry import RegistryError, TransientRegistryError, tally_requests

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")


class RunFailed(RuntimeError):
    """Raised by a timer after logging a run that is not ok, so the host records a failure."""


class RunReport(Protocol):
    """What a prune or reconcile report tells about its run (the timers and the CLI read it)."""

    @property
    def ok(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def interrupted(self) -> bool: ...


def raise_if_failed(report: RunReport | None) -> None:
    """Raise `RunFailed(report.error)` when the run is not ok (the timers call it after logging
    the report, so the Functions host records a failed invocation and alerts can fire)."""
    if report is not None and not report.ok:
        raise RunFailed(report.error or "the run failed")


def level_of(ok: bool) -> int:
    """The level of a run or repository line: INFO when ok, ERROR when not."""
    return level_for("ok" if ok else "failed")


def emit(log: logging.Logger | Callable[[str], None], level: int, text: str) -> None:
    """Log `text` at `level` to a Logger, or hand it to a callable taking a line."""
    if isinstance(log, logging.Logger):
        log.log(level, text)
    else:
        log(text)


class Throttle:
    """AIMD window on registry calls in flight plus a shared pause after throttling.

    Thread-safe. `clock`/`sleep` drive the pause (tests pass a fake clock).
    """

    def __init__(
        self,
        max_in_flight: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        base_pause: float = 0.25,
        max_pause: float = 30.0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("concurrency must be >= 1")
        self.max_in_flight = max_in_flight
        self.window = float(max_in_flight)
        self.clock = clock
        self.sleep = sleep
        self.base_pause = base_pause
        self.max_pause = max_pause
        self.paused_until = 0.0
        self.consecutive_throttles = 0
        self.throttled = 0
        self.in_flight = 0
        self._last_decrease = -1e18
        self._cond = threading.Condition()

    def allowed(self, in_flight: int) -> bool:
        return in_flight < max(1, int(self.window)) and self.clock() >= self.paused_until

    def on_success(self) -> None:
        with self._cond:
            self.consecutive_throttles = 0
            self.window = min(float(self.max_in_flight), self.window + 1.0 / self.window)
            self._cond.notify_all()

    def on_throttled(self, started_at: float) -> float:
        """A call (or attempt) started at `started_at` was throttled or failed transiently.
        Returns the pause end (`paused_until`)."""
        with self._cond:
            self.throttled += 1
            if started_at < self._last_decrease:
                return self.paused_until  # already reacted to this burst
            now = self.clock()
            self._last_decrease = now
            self.consecutive_throttles += 1
            self.window = max(1.0, self.window / 2)
            pause = min(self.max_pause, self.base_pause * 2 ** (self.consecutive_throttles - 1))
            self.paused_until = max(self.paused_until, now + pause)
            return self.paused_until

    def wait_pause(self, deadline: float) -> None:
        """Sleep out the shared pause (never past `deadline`)."""
        while True:
            with self._cond:
                left = min(self.paused_until, deadline) - self.clock()
            if left <= 0:
                return
            self.sleep(left)

    def acquire(self, deadline: float) -> None:
        """Wait for the pause to end and for room in the window."""
        while True:
            self.wait_pause(deadline)
            with self._cond:
                if self.in_flight < max(1, int(self.window)):
                    self.in_flight += 1
                    return
                self._cond.wait(0.05)

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()


@dataclass(frozen=True)
class SweepPolicy:
    concurrency: int = 8
    max_duration: timedelta = timedelta(minutes=8)
    max_attempts: int = 2
    """Attempts of one repository in a row without progress before it is failed. Each attempt's
    requests already carry the transport's retries (4 attempts each), so one requeue after the
    shared pause is enough: a listing that fails outright costs 8 HTTP attempts, not 25."""
    base_pause: float = 0.5
    max_pause: float = 30.0
    drain_seconds: float = 30.0
    """After Ctrl-C: how long work in flight may take to finish."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")


class Context:
    """What a job sees of the sweep: the gate for registry calls, the time box, the stop flag."""

    def __init__(self, sweep: _Sweep[Any], repository: str) -> None:
        self._sweep = sweep
        self.repository = repository
        self.progressed = False
        self.call_started: float | None = None
        """When the last registry call started: the throttle's reaction is keyed on it."""

    def made_progress(self) -> None:
        """A unit of work finished (a listing, a deletion): the attempt count starts again."""
        self.progressed = True

    def call(self, fn: Callable[[], T]) -> T:
        """Run one registry call (or one whole listing) through the throttle's window. A
        `TransientRegistryError` propagates: the job's attempt ends and the sweep requeues it."""
        throttle = self._sweep.throttle
        throttle.acquire(self._sweep.deadline)
        self.call_started = self._sweep.clock()
        try:
            value = fn()
        except TransientRegistryError:
            raise
        except RegistryError:
            throttle.on_success()  # an answer (404, 403, 409): the registry is not throttling
            raise
        finally:
            throttle.release()
        throttle.on_success()
        return value

    def expired(self) -> bool:
        """True once the time box is over or the run is interrupted: start nothing new."""
        return self._sweep.stopping.is_set() or self._sweep.clock() >= self._sweep.deadline

    def elapsed(self) -> float:
        return self._sweep.clock() - self._sweep.started


class Job(Protocol[R_co]):
    """One repository's work. Stateful: after a requeue `run` is called again and resumes."""

    def run(self, ctx: Context) -> R_co:
        """Do (the rest of) the work. Raise `TransientRegistryError` to be requeued; call
        `ctx.made_progress()` after each unit of work that finished."""
        ...

    def give_up(self, error: str) -> R_co:
        """The result when the repository failed (out of attempts, or an unexpected error)."""
        ...

    def stop(self, reason: str) -> R_co:
        """The partial result when the time box or an interrupt stopped a requeued job."""
        ...


@dataclass(frozen=True)
class SweepProgress:
    repository: str
    repositories_done: int
    elapsed_s: float


@dataclass
class SweepOutcome(Generic[R]):
    results: list[R] = field(default_factory=list)
    """One per repository started, in catalog order."""
    not_reached: list[str] = field(default_factory=list)
    """In scope, listed, never started: the time box was over (or the run interrupted)."""
    excluded: int = 0
    catalog_error: str | None = None
    """The catalog could not be listed to the end before the time box was over."""
    unlisted: str | None = None
    """The catalog listing failed after the time box was over (names after it unknown)."""
    timed_out: bool = False
    interrupted: bool = False
    requests: int = 0
    throttled: int = 0
    duration_s: float = 0.0


@dataclass
class _Entry(Generic[R]):
    index: int
    repository: str
    job: Job[R]
    attempts: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class _Attempt(Generic[R]):
    status: str
    """`done` (value set) or `transient` (error set: requeue or give up)."""
    value: R | None
    error: str
    progressed: bool
    call_started: float


class _Sweep(Generic[R]):
    def __init__(
        self,
        policy: SweepPolicy,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.deadline = self.started + policy.max_duration.total_seconds()
        self.throttle = Throttle(
            policy.concurrency,
            clock,
            sleep,
            base_pause=policy.base_pause,
            max_pause=policy.max_pause,
        )
        self.stopping = threading.Event()
        self._requests = 0
        self._lock = threading.Lock()

    def expired(self) -> bool:
        return self.clock() >= self.deadline

    def attempt(self, entry: _Entry[R]) -> _Attempt[R]:
        """Runs on a worker: one attempt of one job, inside this thread's request tally."""
        ctx = Context(self, entry.repository)
        started = self.clock()
        with tally_requests() as tally:
            try:
                result = entry.job.run(ctx)
                status, value, error = "done", result, ""
            except TransientRegistryError as exc:
                status, value, error = "transient", None, describe_error(exc)
            except Exception as exc:  # one repository never aborts the run; never silent
                LOGGER.exception("acr-retag sweep: %s failed unexpectedly", entry.repository)
                status, value = (
                    "done",
                    entry.job.give_up(f"unexpected error: {describe_error(exc)}"),
                )
                error = ""
        with self._lock:
            self._requests += tally.count
        call_started = started if ctx.call_started is None else ctx.call_started
        return _Attempt(status, value, error, ctx.progressed, call_started)


def sweep(
    list_repositories: Callable[[], Iterable[str]],
    job_for: Callable[[str], Job[R]],
    *,
    selected: Callable[[str], bool] = lambda _name: True,
    policy: SweepPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_result: Callable[[R], None] | None = None,
    progress: Callable[[SweepProgress], None] | None = None,
) -> SweepOutcome[R]:
    """Run `job_for(repository)` for every repository `selected` picks (see the module doc)."""
    policy = policy or SweepPolicy()
    run: _Sweep[R] = _Sweep(policy, clock, sleep)
    outcome: SweepOutcome[R] = SweepOutcome()
    done: dict[int, R] = {}
    emitted = 0
    queue: deque[_Entry[R]] = deque()
    in_flight: dict[Future[_Attempt[R]], _Entry[R]] = {}
    names = _Catalog(list_repositories, run, outcome)
    count = 0

    def finish(entry: _Entry[R], result: R) -> None:
        nonlocal emitted
        done[entry.index] = result
        while emitted in done:
            if on_result is not None:
                on_result(done[emitted])
            emitted += 1
        if progress is not None:
            progress(SweepProgress(entry.repository, len(done), clock() - run.started))

    def collect(timeout: float | None) -> None:
        finished, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in finished:
            entry = in_flight.pop(future)
            attempt = future.result()
            if attempt.status == "done":
                finish(entry, attempt.value)  # type: ignore[arg-type]
                continue
            entry.attempts = 1 if attempt.progressed else entry.attempts + 1
            error = entry.last_error = attempt.error
            # Keyed on when the refused call started: one reaction per burst of calls.
            resume_at = run.throttle.on_throttled(attempt.call_started)
            if entry.attempts >= policy.max_attempts or resume_at >= run.deadline:
                tries = f"{entry.attempts} attempt(s) in a row"
                finish(entry, entry.job.give_up(f"{error} (gave up after {tries})"))
            else:
                queue.append(entry)

    pool = ThreadPoolExecutor(policy.concurrency, thread_name_prefix="sweep")
    try:
        while True:
            if run.stopping.is_set():
                break
            free = len(in_flight) < policy.concurrency
            if free and queue and not run.expired():
                if run.clock() < run.throttle.paused_until:
                    if in_flight:
                        collect(max(0.001, run.throttle.paused_until - run.clock()))
                    else:
                        run.throttle.wait_pause(run.deadline)
                    continue
                entry = queue.popleft()
                in_flight[pool.submit(run.attempt, entry)] = entry
                continue
            if free and not names.exhausted and not run.expired():
                repository = names.next()
                if repository is None:
                    continue
                if not selected(repository):
                    outcome.excluded += 1
                    continue
                entry = _Entry(count, repository, job_for(repository))
                count += 1
                in_flight[pool.submit(run.attempt, entry)] = entry
                continue
            if in_flight:
                collect(None)
                continue
            if queue:  # the time box is over: requeued jobs report what is left
                while queue:
                    entry = queue.popleft()
                    finish(entry, entry.job.stop("time box over"))
                continue
            break
        # Repositories listed after the time box: not reached (the next run covers them).
        while not names.exhausted:
            repository = names.next()
            if repository is None:
                continue
            if selected(repository):
                outcome.not_reached.append(repository)
            else:
                outcome.excluded += 1
    except KeyboardInterrupt:
        outcome.interrupted = True
        run.stopping.set()
        drain_until = time.monotonic() + policy.drain_seconds
        try:
            while in_flight and time.monotonic() < drain_until:
                collect(max(0.001, drain_until - time.monotonic()))
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting
        while queue:
            entry = queue.popleft()
            finish(entry, entry.job.stop("interrupted"))
        for entry in in_flight.values():
            outcome.not_reached.append(entry.repository)
    finally:
        pool.shutdown(wait=not outcome.interrupted, cancel_futures=True)
    outcome.results = [done[i] for i in sorted(done)]
    outcome.timed_out = run.expired() and (bool(outcome.not_reached) or names.cut_by_deadline)
    outcome.requests = run._requests + names.requests
    outcome.throttled = run.throttle.throttled
    outcome.duration_s = clock() - run.started
    return outcome


class _Catalog:
    """The catalog listing, restartable: after a transient failure, back off and list again,
    skipping the names already seen. Runs in the coordinating thread, inside its own tally."""

    def __init__(
        self,
        list_repositories: Callable[[], Iterable[str]],
        run: _Sweep[R],
        outcome: SweepOutcome[R],
    ) -> None:
        self.list_repositories = list_repositories
        self.run = run
        self.outcome = outcome
        self.seen: set[str] = set()
        self.exhausted = False
        self.cut_by_deadline = False
        self.requests = 0
        self.attempts = 0
        self._pages: Iterator[str] | None = None

    def next(self) -> str | None:
        """The next new name; None when there is none (then `exhausted` may be set)."""
        started = self.run.clock()
        with tally_requests() as tally:
            try:
                if self._pages is None:
                    self._pages = iter(self.list_repositories())
                for name in self._pages:
                    if name not in self.seen:
                        self.seen.add(name)
                        self.attempts = 0  # progress: a later failure starts counting again
                        return name
                self.exhausted = True
                return None
            except TransientRegistryError as exc:
                self._failed(started, exc)
                return None
            except Exception as exc:
                if not isinstance(exc, RegistryError):
                    LOGGER.exception("acr-retag sweep: listing repositories failed unexpectedly")
                self._stop(exc)
                return None
            finally:
                self.requests += tally.count

    def _failed(self, started: float, exc: TransientRegistryError) -> None:
        self._pages = None
        self.attempts += 1
        resume_at = self.run.throttle.on_throttled(started)
        if self.attempts >= self.run.policy.max_attempts or resume_at >= self.run.deadline:
            self._stop(exc)
            return
        self.run.throttle.wait_pause(self.run.deadline)

    def _stop(self, exc: BaseException) -> None:
        self.exhausted = True
        text = f"listing repositories failed: {describe_error(exc)}"
        if self.run.expired():
            self.cut_by_deadline = True
            self.outcome.unlisted = text
        else:
            self.outcome.catalog_error = text
