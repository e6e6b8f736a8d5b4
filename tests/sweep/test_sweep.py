"""The one catalog sweep (retag/sweep.py) against the emulator, through the real adapter and SDK.

Faults are the emulator's: `error_rate`/`error_status` answer 503 like ACR's "service unavailable";
`throttle_rate` answers 429 with a `Retry-After` like ACR's throttling (Learn,
container-registry-skus "throttling": 429 Too Many Requests with a counting-down Retry-After).
The jobs here are minimal: each reads its repository's tags through `Context.call`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.registry import TransientRegistryError
from retag.sweep import Context, SweepOutcome, SweepPolicy, SweepProgress, sweep
from tests.sweep.conftest import seed

NAMES = [f"svc-{i}" for i in range(6)]


class ReadTags:
    """A job: read the repository's tags; counts its attempts."""

    def __init__(self, registry: AcrRegistry, repository: str, log: list[str]) -> None:
        self.registry = registry
        self.repository = repository
        self.attempts = 0
        self.log = log

    def run(self, ctx: Context) -> tuple[str, str, int]:
        self.attempts += 1
        tags = ctx.call(lambda: list(self.registry.list_tags(self.repository)))
        ctx.made_progress()
        self.log.append(self.repository)
        return (self.repository, ",".join(t.name for t in tags), self.attempts)

    def give_up(self, error: str) -> tuple[str, str, int]:
        return (self.repository, f"failed: {error}", self.attempts)

    def stop(self, reason: str) -> tuple[str, str, int]:
        return (self.repository, f"stopped: {reason}", self.attempts)


def run(
    registry: AcrRegistry, log: list[str] | None = None, **options: Any
) -> SweepOutcome[tuple[str, str, int]]:
    done: list[str] = [] if log is None else log
    policy = options.pop("policy", SweepPolicy(concurrency=3, base_pause=0.05, max_pause=0.5))
    return sweep(
        options.pop("catalog", registry.list_repositories),
        lambda name: ReadTags(registry, name, done),
        policy=policy,
        **options,
    )


def test_every_repository_once_in_catalog_order_and_requests_tallied_across_threads(
    acr: Emulator, registry: AcrRegistry
) -> None:
    seed(acr, NAMES)
    list(registry.list_repositories())  # warm the catalog token: the count below is exact
    acr.clear_requests()
    log: list[str] = []
    seen: list[SweepProgress] = []

    outcome = run(registry, log, selected=lambda name: name != "svc-5", progress=seen.append)

    assert [r[0] for r in outcome.results] == NAMES[:5]  # catalog order, whoever finished first
    assert all(r[1] == "latest" for r in outcome.results)
    assert sorted(log) == NAMES[:5]
    assert outcome.excluded == 1
    # Each worker thread tallies its own requests; the sum is what the emulator saw.
    assert outcome.requests == len(acr.requests())
    assert outcome.requests >= 1 + 5
    # The progress callback: once per repository, from the coordinating thread.
    assert sorted(p.repository for p in seen) == NAMES[:5]
    assert [p.repositories_done for p in seen] == [1, 2, 3, 4, 5]


def test_requeue_with_back_off_under_503(acr: Emulator, registry: AcrRegistry) -> None:
    seed(acr, NAMES)
    list(registry.list_repositories())
    acr.set_faults(error_rate=0.4, error_status=503, seed=11)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    outcome = run(
        registry,
        sleep=sleep,
        policy=SweepPolicy(concurrency=3, max_attempts=40, base_pause=0.02, max_pause=0.2),
    )
    acr.clear_faults()

    assert sum(1 for e in acr.requests() if e["status"] == 503) > 0
    assert [r[1] for r in outcome.results] == ["latest"] * len(NAMES), outcome.results
    assert any(r[2] > 1 for r in outcome.results)  # some repository took more than one attempt
    assert outcome.throttled > 0


def test_requeue_honours_429_and_gives_up_after_max_attempts(
    acr: Emulator, registry: AcrRegistry
) -> None:
    seed(acr, NAMES[:2])
    list(registry.list_repositories())
    real = registry.list_repositories
    names = list(real())
    acr.set_faults(throttle_rate=1.0, throttle_retry_after=0)  # every request 429

    outcome = run(
        registry,
        catalog=lambda: iter(names),  # the catalog itself is not what this test throttles
        policy=SweepPolicy(concurrency=2, max_attempts=3, base_pause=0.01, max_pause=0.05),
    )
    acr.clear_faults()

    assert [r[0] for r in outcome.results] == NAMES[:2]
    for _name, text, attempts in outcome.results:
        assert attempts == 3
        assert text.startswith("failed: TransientRegistryError")
        assert text.endswith("(gave up after 3 attempt(s) in a row)")


def test_catalog_listing_restarts_after_a_transient_failure(
    acr: Emulator, registry: AcrRegistry
) -> None:
    """The first listing fails part-way; the second lists from the start and the names already
    seen are skipped: every repository runs exactly once."""
    seed(acr, NAMES)
    calls = []

    def catalog() -> Iterator[str]:
        calls.append(1)
        for i, name in enumerate(registry.list_repositories()):
            if len(calls) == 1 and i == 3:
                raise TransientRegistryError("503 listing the catalog (page 2)")
            yield name

    log: list[str] = []
    outcome = run(registry, log, catalog=catalog)

    assert len(calls) == 2
    assert [r[0] for r in outcome.results] == NAMES
    assert sorted(log) == NAMES  # none twice
    assert outcome.catalog_error is None
    assert outcome.throttled == 1


def test_catalog_listing_restarts_against_real_503s(acr: Emulator, registry: AcrRegistry) -> None:
    seed(acr, NAMES[:2])
    acr.set_faults(error_rate=1.0, error_status=503)
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the registry recovers during the first back-off
        slept.append(seconds)
        acr.clear_faults()

    outcome = run(registry, sleep=sleep)
    assert slept
    assert outcome.catalog_error is None
    assert [r[1] for r in outcome.results] == ["latest", "latest"]


def test_catalog_that_never_recovers_is_an_error_within_the_time_box(
    acr: Emulator, registry: AcrRegistry
) -> None:
    acr.set_faults(error_rate=1.0, error_status=503)
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    outcome = run(
        registry,
        clock=lambda: clock[0],
        sleep=sleep,
        policy=SweepPolicy(max_duration=timedelta(seconds=10), base_pause=1.0, max_attempts=10),
    )
    acr.clear_faults()
    assert outcome.results == []
    assert outcome.catalog_error is not None
    assert outcome.catalog_error.startswith("listing repositories failed: TransientRegistry")
    assert slept == [1.0, 2.0, 4.0]  # exponential; the next (8 s) would pass the 10 s box


def test_time_box_no_repository_starts_after_it(acr: Emulator, registry: AcrRegistry) -> None:
    seed(acr, NAMES)
    clock = [0.0]

    class Slow(ReadTags):
        def run(self, ctx: Context) -> tuple[str, str, int]:
            clock[0] += 60.0  # each repository "takes" a minute
            return super().run(ctx)

    outcome = sweep(
        registry.list_repositories,
        lambda name: Slow(registry, name, []),
        policy=SweepPolicy(concurrency=1, max_duration=timedelta(seconds=150)),
        clock=lambda: clock[0],
    )
    assert [r[0] for r in outcome.results] == NAMES[:3]  # started at t=0, 60, 120
    assert outcome.not_reached == NAMES[3:]
    assert outcome.timed_out


def test_unexpected_exception_is_logged_with_its_traceback_and_fails_the_repository(
    acr: Emulator, registry: AcrRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    seed(acr, NAMES[:3])

    class Buggy(ReadTags):
        def run(self, ctx: Context) -> tuple[str, str, int]:
            if self.repository == "svc-1":
                raise KeyError("a bug")
            return super().run(ctx)

    caplog.set_level(logging.ERROR, logger="acr-retag")
    outcome = sweep(registry.list_repositories, lambda name: Buggy(registry, name, []))

    assert [r[1] for r in outcome.results] == [
        "latest",
        "failed: unexpected error: KeyError: 'a bug'",
        "latest",
    ]
    [record] = [r for r in caplog.records if "svc-1" in r.getMessage()]
    assert record.name == "acr-retag"
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError
    assert "Traceback" in caplog.text


def test_ctrl_c_returns_the_partial_outcome(acr: Emulator, registry: AcrRegistry) -> None:
    """A real SIGINT to the main (coordinating) thread while workers are in flight."""
    seed(acr, NAMES)
    acr.set_faults(latency_ms=150)
    started = threading.Event()

    class Signalling(ReadTags):
        def run(self, ctx: Context) -> tuple[str, str, int]:
            started.set()
            return super().run(ctx)

    def interrupt() -> None:
        started.wait(10)
        time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)

    main = threading.main_thread().ident
    assert main is not None
    threading.Thread(target=interrupt, daemon=True).start()
    outcome = sweep(
        registry.list_repositories,
        lambda name: Signalling(registry, name, []),
        policy=SweepPolicy(concurrency=2),
    )
    acr.clear_faults()

    assert outcome.interrupted
    finished = [r[0] for r in outcome.results]
    assert 1 <= len(finished) < len(NAMES)  # in-flight work finished; nothing new started
    assert all(r[1] == "latest" for r in outcome.results)
    assert set(finished).isdisjoint(outcome.not_reached)
