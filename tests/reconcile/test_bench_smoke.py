"""The reconciliation benchmark script runs end to end at a tiny size (numbers are not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_reconcile_runs_at_small_size() -> None:
    env = {
        **os.environ,
        "BENCH_RECONCILE_REPOSITORIES": "4",
        "BENCH_RECONCILE_LATENCY_MS": "0",
        "BENCH_RECONCILE_CONCURRENCY": "2",
        "BENCH_RECONCILE_RUNS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_reconcile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "## Reconciliation: requests per repository and wall time"
    rows = [line for line in lines if line.startswith("| drift") or line.startswith("| in sync")]
    assert len(rows) == 2
    drift, in_sync = (row.split("|")[1:-1] for row in rows)
    assert drift[-1].strip() == "tagged 4, in-sync 0, failed 0"
    assert in_sync[-1].strip() == "tagged 0, in-sync 4, failed 0"
    assert in_sync[3].strip() == "2.00"  # tag reads per repository when in sync
