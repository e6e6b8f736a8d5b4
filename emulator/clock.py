"""The emulator's clock: real time plus an adjustable offset.

Every timestamp the registry produces (createdTime, lastUpdateTime, event times) comes from here,
so tests can move time forward (e.g. to make tags "old" for pruning) without sleeping. Time keeps
flowing after `set`/`advance`, so successive operations still get increasing timestamps.
Token lifetimes (`exp`) deliberately use real time: clients compare them with their own clock.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def set(self, when: datetime) -> datetime:
        """Make `now()` return `when` (timezone-aware) from this moment on."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("clock time must be timezone-aware (e.g. 2026-01-01T00:00:00Z)")
        with self._lock:
            self._offset = when.astimezone(UTC) - datetime.now(UTC)
        return self.now()

    def advance(self, seconds: float) -> datetime:
        if not math.isfinite(seconds):
            raise ValueError("advance must be a finite number of seconds")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()


def format_time(when: datetime) -> str:
    """ACR style: UTC, seven fractional digits, `Z` (e.g. 2026-11-29T23:07:00.1234560Z)."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}0Z"


def format_wire_time(when: datetime) -> str:
    """/acr/v1 style: like `format_time` with trailing fractional zeros trimmed, as ACR answers
    (`2021-07-12T19:20:00.913255Z`, `...:38.3530937Z`; a whole second has no fraction)."""
    utc = when.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}0".rstrip("0")
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def format_event_time(when: datetime, digits: int = 7, nanoseconds: int = 0) -> str:
    """Event Grid style: `eventTime` has 7 fractional digits, `data.timestamp` 9
    (`2018-04-25T21:39:47.276585742Z`); `nanoseconds` (0-999) fills the digits past micros."""
    utc = when.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}{nanoseconds % 1000:03d}"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + fraction[:digits] + "Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; naive values are refused."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone (add Z or +00:00)")
    return value.astimezone(UTC)
