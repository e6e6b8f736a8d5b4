"""benchmarks/bench_push.py runs and prints its two tables (tiny sizes; numbers are not checked
here: performance lives in docs/benchmarks.md, never in tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_push_runs_at_a_tiny_size() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_push"],
        cwd=ROOT,
        env={**os.environ, "BENCH_PUSHES": "4", "BENCH_PROCESSES": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| new tag (warm) |" in done.stdout
    assert "| duplicate / redelivery |" in done.stdout
    assert "| acr-retag tag (python -m retag) |" in done.stdout
