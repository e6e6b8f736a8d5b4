"""A small Event Grid delivery simulator: at-least-once, unordered, with compressed retries.

What it does like Event Grid (https://learn.microsoft.com/azure/event-grid/delivery-and-retry):

- POSTs each batch (a JSON array of events) to the subscriber (here a callable taking the body,
  e.g. `FunctionsHost.deliver_event_grid`); a 2xx answer within the response timeout (30 s)
  completes the delivery;
- 400 and 413 are never retried (dead-lettered at once); any other answer, an exception or an
  answer later than the response timeout is retried on Event Grid's schedule (10 s, 30 s, 1 min,
  5 min, 10 min, 30 min, 1 h, then hourly ...) up to `max_attempts` (30), then dead-lettered;
- deliveries run concurrently (`concurrency` workers), so events arrive unordered and the
  duplicates of one event can overlap.

The schedule is compressed: every delay is multiplied by `time_scale` and capped at `max_delay`
seconds (waiting real minutes proves nothing more). Every attempt is recorded for the report.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

EVENT_GRID_RETRY_SCHEDULE: tuple[float, ...] = (
    10,
    30,
    60,
    5 * 60,
    10 * 60,
    30 * 60,
    60 * 60,
    3 * 60 * 60,
    6 * 60 * 60,
    12 * 60 * 60,
)
"""Seconds before each retry (the last value repeats), as Event Grid documents it."""
NOT_RETRIED = frozenset({400, 413})
RESPONSE_TIMEOUT_SECONDS = 30.0


class Answer(Protocol):
    """What a subscriber returns: an HTTP status (`DeliveryResult` from the Functions host)."""

    @property
    def status(self) -> int: ...


Subscriber = Callable[[bytes], Answer]


@dataclass(frozen=True)
class Attempt:
    number: int
    status: int | None
    """HTTP status, None when the subscriber raised (a connection failure)."""
    seconds: float
    answer: Any = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return (
            self.status is not None
            and 200 <= self.status < 300
            and self.seconds < RESPONSE_TIMEOUT_SECONDS
        )


@dataclass
class Delivery:
    """One batch of events and every attempt to deliver it."""

    events: list[Mapping[str, Any]]
    attempts: list[Attempt] = field(default_factory=list)
    dead_lettered: bool = False

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].succeeded

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)


@dataclass
class EventGridSimulator:
    subscriber: Subscriber
    max_attempts: int = 30
    schedule: Sequence[float] = EVENT_GRID_RETRY_SCHEDULE
    time_scale: float = 0.001
    max_delay: float = 0.05
    concurrency: int = 8
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def retry_delay(self, retry: int) -> float:
        """Compressed wait before retry number `retry` (1-based)."""
        real = self.schedule[min(retry, len(self.schedule)) - 1]
        return min(real * self.time_scale, self.max_delay)

    def deliver_all(self, batches: Iterable[Sequence[Mapping[str, Any]]]) -> list[Delivery]:
        """Deliver every batch (concurrently, retrying failures); returns them in input order."""
        work = [Delivery(events=list(batch)) for batch in batches]
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="eventgrid") as ex:
            list(ex.map(self._deliver, work))
        with self._lock:
            self.deliveries.extend(work)
        return work

    def _deliver(self, delivery: Delivery) -> None:
        body = json.dumps(delivery.events).encode()
        for number in range(1, self.max_attempts + 1):
            if number > 1:
                time.sleep(self.retry_delay(number - 1))
            attempt = self._attempt(number, body)
            delivery.attempts.append(attempt)
            if attempt.succeeded:
                return
            if attempt.status in NOT_RETRIED:
                break
        delivery.dead_lettered = True

    def _attempt(self, number: int, body: bytes) -> Attempt:
        started = time.monotonic()
        try:
            answer = self.subscriber(body)
        except Exception as error:  # the endpoint could not be reached: retried
            return Attempt(number, None, time.monotonic() - started, error=repr(error))
        return Attempt(number, answer.status, time.monotonic() - started, answer=answer)

    # -- figures for reports ---------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        with self._lock:
            deliveries = list(self.deliveries)
        return {
            "batches": len(deliveries),
            "attempts": sum(len(d.attempts) for d in deliveries),
            "retries": sum(d.retries for d in deliveries),
            "redelivered_batches": sum(1 for d in deliveries if d.retries),
            "max_attempts_used": max((len(d.attempts) for d in deliveries), default=0),
            "dead_lettered": sum(1 for d in deliveries if d.dead_lettered),
        }
