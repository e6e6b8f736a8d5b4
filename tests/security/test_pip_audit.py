"""`pip-audit -r requirements.txt`: no known vulnerability in what the Function App deploys.

pip-audit resolves requirements.txt (with its dependencies) in a throw-away venv and asks its
vulnerability service (PyPI's JSON API) about every package. The network is not ours: when the
service cannot be reached, or answers without vulnerability data, the test skips and says why,
also in CI with RETAG_REQUIRE_SYSTEM_DEPS=1. A missing pip-audit (it is in requirements-dev.txt)
skips locally and fails under RETAG_REQUIRE_SYSTEM_DEPS=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PROBE = "https://pypi.org/pypi/requests/2.19.0/json"
"""A release with known advisories: a working service lists them under `vulnerabilities`."""


def _skip(reason: str) -> None:
    print(f"\npip-audit skipped: {reason}")
    pytest.skip(reason)


def pip_audit_command() -> str | None:
    for candidate in (
        Path(sys.executable).with_name("pip-audit"),
        ROOT / ".venv-audit" / "bin" / "pip-audit",
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("pip-audit")


def service_problem() -> str | None:
    """Why pip-audit's vulnerability service cannot be used from here, or None when it can."""
    try:
        answer = requests.get(SERVICE_PROBE, timeout=10)
    except requests.RequestException as error:
        return f"the vulnerability service (PyPI JSON API) is unreachable: {type(error).__name__}"
    if answer.status_code != 200:
        return (
            f"the vulnerability service (PyPI JSON API) answered HTTP {answer.status_code} to "
            f"{SERVICE_PROBE}: this network's package index does not serve advisories"
        )
    try:
        vulnerabilities = answer.json().get("vulnerabilities")
    except ValueError:
        vulnerabilities = None
    if not vulnerabilities:
        return "the PyPI JSON API answered without vulnerability data (a mirror?)"
    return None


def test_runtime_requirements_have_no_known_vulnerabilities(tmp_path: Path) -> None:
    command = pip_audit_command()
    if command is None:
        if os.environ.get("RETAG_REQUIRE_SYSTEM_DEPS") == "1":
            pytest.fail("pip-audit is not installed (pip install -r requirements-dev.txt)")
        _skip("pip-audit is not installed (pip install -r requirements-dev.txt)")
        return
    problem = service_problem()
    if problem is not None:
        _skip(problem)
        return
    result = subprocess.run(
        [
            command,
            "-r",
            str(ROOT / "requirements.txt"),
            "--format",
            "json",
            "--progress-spinner",
            "off",
            "--timeout",
            "30",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        if any(word in result.stderr for word in ("ConnectionError", "Max retries", "timed out")):
            _skip(f"the vulnerability service failed mid-run: {result.stderr.strip()[-300:]}")
        pytest.fail(f"pip-audit failed (exit {result.returncode}): {result.stderr[-2000:]}")
    dependencies = report["dependencies"]
    audited = [d for d in dependencies if "skip_reason" not in d]
    skipped = [f"{d['name']}: {d['skip_reason']}" for d in dependencies if "skip_reason" in d]
    if not audited:
        _skip(f"pip-audit could audit none of {len(dependencies)} dependencies: {skipped[:3]}")
    print(f"\npip-audit: {len(audited)} packages audited; skipped: {skipped}")
    vulnerable = {
        f"{d['name']}=={d['version']}": [v["id"] for v in d["vulns"]] for d in audited if d["vulns"]
    }
    assert vulnerable == {}, f"known vulnerabilities: {vulnerable}"
