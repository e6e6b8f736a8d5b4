"""Fault injection: latency, error answers, connection resets and ACR-style throttling."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    reset_rate: float = 0.0
    rate_limit_per_second: float | None = None
    throttle_rate: float = 0.0
    """Share of requests answered 429 TOOMANYREQUESTS with `Retry-After: throttle_retry_after`,
    at random (next to `error_rate`), besides the token bucket of `rate_limit_per_second`."""
    throttle_retry_after: int = 1
    seed: int | None = None
    include_auth: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.latency_ms) and 0 <= self.latency_ms <= 60_000):
            raise ValueError("latency_ms must be between 0 and 60000")
        for name in ("error_rate", "reset_rate", "throttle_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be between 0 and 1")
        if not 0 <= self.throttle_retry_after <= 3600:
            raise ValueError("throttle_retry_after must be between 0 and 3600 seconds")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status (400-599)")
        if self.rate_limit_per_second is not None and not (
            math.isfinite(self.rate_limit_per_second) and self.rate_limit_per_second > 0
        ):
            raise ValueError("rate_limit_per_second must be a positive number (or null)")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "include_auth":
                if not isinstance(value, bool):
                    raise ValueError("include_auth must be true or false")
                kwargs[key] = value
            elif key in ("seed", "rate_limit_per_second") and value is None:
                kwargs[key] = None
            elif key in ("error_status", "seed", "throttle_retry_after"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"{key} must be an integer")
                kwargs[key] = value
            else:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"{key} must be a number")
                kwargs[key] = float(value)
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What to do with one request: sleep, then maybe throttle / reset / fail it."""

    delay_s: float = 0.0
    throttle_after_s: int | None = None  # Retry-After seconds when throttled
    reset: bool = False
    error_status: int | None = None


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._random = random.Random()
        self._tokens = 0.0
        self._stamp = time.monotonic()

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)
            self._tokens = max(1.0, settings.rate_limit_per_second or 0.0)  # a full bucket
            self._stamp = time.monotonic()

    def decide(self, *, is_auth: bool) -> Decision:
        with self._lock:
            s = self._settings
            if is_auth and not s.include_auth:
                return Decision()
            delay = s.latency_ms / 1000.0
            if s.rate_limit_per_second is not None:
                rate = s.rate_limit_per_second
                now = time.monotonic()
                capacity = max(1.0, rate)
                self._tokens = min(capacity, self._tokens + (now - self._stamp) * rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                else:
                    wait = (1.0 - self._tokens) / rate
                    return Decision(delay_s=delay, throttle_after_s=max(1, math.ceil(wait)))
            if s.reset_rate and self._random.random() < s.reset_rate:
                return Decision(delay_s=delay, reset=True)
            if s.throttle_rate and self._random.random() < s.throttle_rate:
                return Decision(delay_s=delay, throttle_after_s=s.throttle_retry_after)
            if s.error_rate and self._random.random() < s.error_rate:
                return Decision(delay_s=delay, error_status=s.error_status)
            return Decision(delay_s=delay)
