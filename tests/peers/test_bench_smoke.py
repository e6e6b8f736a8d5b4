"""The peers benchmark script runs end to end at a tiny size (timings are not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_peers_runs_at_a_tiny_size(crane_binary: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_peers"],
        cwd=ROOT,
        env={**os.environ, "BENCH_PEER_TAGS": "2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ")]
    by_client = {row[0].strip(): [cell.strip() for cell in row[1:]] for row in rows[1:]}
    assert len(by_client) == 3
    for cells in by_client.values():
        assert cells[3:5] == ["2.00", "0.00"]  # one manifest GET + one PUT, no blob request
