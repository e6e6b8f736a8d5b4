"""Shared helpers for the benchmark scripts: machine header, percentiles, markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any


def machine() -> str:
    """One line naming the machine, the Python version and the date, printed above each table."""
    cpu = platform.processor() or platform.machine()
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    return (
        f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; measured {date}."
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report(title: str, body: str, notes: str = "") -> None:
    """Print one benchmark section: heading, machine line, table, notes."""
    print(f"## {title}\n\n{machine()}\n\n{body}\n")
    if notes:
        print(notes.strip() + "\n")


def timed_calls(
    acr: Any, call: Callable[[str], None], count: int, warmup: int = 1
) -> tuple[list[dict[str, Any]], list[float]]:
    """`call(tag)` `warmup` times, then `count` times timed: (the emulator's request log of the
    timed calls, their latencies in ms). Each call gets a fresh tag name."""
    for i in range(warmup):
        call(f"warmup-{i}-{time.monotonic_ns()}")
    acr.clear_requests()
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        call(f"bench-{i}-{time.monotonic_ns()}")
        latencies.append((time.perf_counter() - started) * 1000)
    return acr.requests(), latencies


def counted(acr: Any, call: Callable[[], object]) -> tuple[int, float]:
    """(requests the emulator logged, ms) of one `call()`: token calls excluded."""
    acr.clear_requests()
    started = time.perf_counter()
    call()
    elapsed = (time.perf_counter() - started) * 1000
    return sum(1 for r in acr.requests() if not r["path"].startswith("/oauth2/")), elapsed
