"""A clock the adapter's token cache reads instead of `time.time()` (tests move it on)."""

from __future__ import annotations

import time


class FakeClock:
    """Our side of time for token expiry (the emulator checks `exp` against real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
