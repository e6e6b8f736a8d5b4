"""Smoke test: the prune benchmark script runs end to end at a tiny size (numbers not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_prune_runs_at_a_tiny_size() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_prune",
            "--repos",
            "1",
            "--tags",
            "30",
            "--memory-repos",
            "1",
            "--memory-tags",
            "40",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("## Prune")
    assert "| failed deletions | 0 | 0 |" in out
    assert "| protected tags deleted | 0 | 0 |" in out
    assert "deletes/s" in out
    assert "peak RSS" in out
