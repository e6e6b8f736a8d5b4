"""Shared helpers for the benchmark scripts: machine header, percentiles, markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime


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
