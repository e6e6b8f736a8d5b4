"""Issue 11, behaviour 6: Ctrl-C during `prune --mode delete` or `reconcile` prints the partial
report (what was already done) and exits 130. A real process (`python -m retag`) gets a real
SIGINT while it works against an emulator slowed down by injected latency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from emulator import Emulator
from tests.prune.emulated import Seeder

REPO_ROOT = Path(__file__).resolve().parents[2]
REPOSITORIES = [f"int/r{i}" for i in range(4)]
LATENCY_MS = 120


def start(acr: Emulator, cwd: Path, *argv: str) -> subprocess.Popen[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "ACR_LOGIN_SERVER": acr.login_server,
        "ACR_CREDENTIAL": "anonymous",
        "ACR_CA_BUNDLE": acr.ca_bundle,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "retag", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt_after(
    acr: Emulator, process: subprocess.Popen[str], method: str, count: int
) -> tuple[str, str]:
    """SIGINT once the registry has answered `count` `method` requests; then the output."""
    deadline = time.monotonic() + 60
    while sum(1 for r in acr.requests() if r["method"] == method and r["status"] < 300) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never got that far"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=60)


def interrupted_document(process: subprocess.Popen[str], out: str, err: str) -> dict[str, Any]:
    assert process.returncode == 130, (out, err)
    value = json.loads(out)
    assert (value["ok"], value["interrupted"]) == (False, True)
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.strip()]
    assert line.startswith("acr-retag: error: ")
    assert "interrupted" in line
    assert value["error"] in line
    return value


def test_ctrl_c_during_prune_delete_prints_what_was_deleted(acr: Emulator, tmp_path: Path) -> None:
    seed = Seeder(acr)
    try:
        for repository in REPOSITORIES:
            seed.generated_on_one_image(repository, 5)
        seed.now()
    finally:
        seed.close()
    acr.clear_requests()  # count only the run's requests
    acr.set_faults(latency_ms=LATENCY_MS)
    process = start(
        acr, tmp_path, "prune", "--mode", "delete", "--keep", "0", "--concurrency", "1", "--json"
    )
    out, err = interrupt_after(acr, process, "DELETE", 6)  # one repository done, one started
    acr.clear_faults()
    report = interrupted_document(process, out, err)
    assert report["command"] == "prune"
    reported = [
        (r["repository"], item["name"])
        for r in report["repositories"]
        for item in r["deleted_items"]
    ]
    assert reported, report  # the repositories finished before Ctrl-C are in the report
    for repository, tag in reported:
        assert acr.tag_digest(repository, tag) is None  # reported deleted: really deleted
    deleted_total = sum(1 for r in acr.requests() if r["method"] == "DELETE" and r["status"] < 300)
    assert deleted_total < 5 * len(REPOSITORIES), "Ctrl-C did not stop the run"


def test_ctrl_c_during_reconcile_prints_the_partial_report(acr: Emulator, tmp_path: Path) -> None:
    seed = Seeder(acr)
    try:
        for repository in REPOSITORIES:
            seed.push(repository, seed.image(), "latest", at=seed.ago(hours=1))
        seed.now()
    finally:
        seed.close()
    acr.clear_requests()  # count only the run's requests
    acr.set_faults(latency_ms=LATENCY_MS)
    process = start(acr, tmp_path, "reconcile", "--concurrency", "1", "--json")
    out, err = interrupt_after(acr, process, "PUT", 1)
    acr.clear_faults()
    report = interrupted_document(process, out, err)
    assert report["command"] == "reconcile"
    for result in report["repositories"]:  # what the report says was added, was added
        for source in result["sources"]:
            if source["status"] == "tagged":
                assert acr.tag_digest(result["repository"], source["tag"]) == source["digest"]
    put = sum(1 for r in acr.requests() if r["method"] == "PUT" and r["status"] < 300)
    assert put < len(REPOSITORIES), "Ctrl-C did not stop the run"
