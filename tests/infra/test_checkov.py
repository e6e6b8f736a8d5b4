"""checkov's Bicep policies pass on infra/ with every exception written next to its resource.

checkov pins its own pycep-parser (0.5.x, clashing with ours), so it lives in `.venv-checkov`,
which `make test` bootstraps from requirements-checkov.txt. It runs offline: no policy download
(`--skip-download`, BC_SKIP_MAPPING), no version check (CKV_SKIP_PACKAGE_UPDATE_CHECK). Its lark
cache goes to .cache/checkov-tmp (TMPDIR) instead of /tmp. checkov exits 0 on files it cannot
parse, so the parse-error list is asserted separately.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from tests.support.bicep import CACHE_DIR, INFRA, REPO_ROOT

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
SKIP_COMMENT = re.compile(r"^\s*// checkov:skip=(CKV2?_[A-Z]+_\d+): (\S.{15,})$")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if not CHECKOV.exists():
        message = f"{CHECKOV.relative_to(REPO_ROOT)} not found: `make checkov-venv` installs it"
        if os.environ.get("RETAG_REQUIRE_SYSTEM_DEPS") == "1":
            pytest.fail(message + " (RETAG_REQUIRE_SYSTEM_DEPS=1)", pytrace=False)
        pytest.skip(message)
    temp = CACHE_DIR / "checkov-tmp"
    temp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
        "CKV_PARSE_ERROR_FAIL": "true",
    }
    done = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "-d", "infra", "--skip-download", "-o", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,  # below pytest-timeout (300 s)
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    parsed = json.loads(done.stdout)
    reports = parsed if isinstance(parsed, list) else [parsed]
    (bicep,) = [r for r in reports if r.get("check_type") == "bicep"]
    return dict(bicep)


def test_checkov_parses_every_template(report: dict[str, Any]) -> None:
    assert report["results"]["parsing_errors"] == []
    assert report["summary"]["parsing_errors"] == 0
    scanned = {check["file_path"].lstrip("/") for check in report["results"]["passed_checks"]}
    assert {"app/function.bicep", "core/storage.bicep", "core/registry.bicep"} <= scanned


def test_checkov_finds_no_failed_check(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["passed"] >= 20


def test_every_skip_is_a_reasoned_comment_inside_its_resource(report: dict[str, Any]) -> None:
    written: dict[tuple[str, str], set[str]] = {}
    for path in INFRA.rglob("*.bicep"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                match = SKIP_COMMENT.match(line)
                assert match, f"{path.name}:{number}: want `// checkov:skip=ID: reason`"
                key = (path.relative_to(INFRA).as_posix(), match.group(1))
                written.setdefault(key, set()).add(match.group(2))
    skipped = report["results"]["skipped_checks"]
    used = {(c["file_path"].lstrip("/"), c["check_id"]) for c in skipped}
    assert set(written) <= used, f"skips that no longer match a finding: {set(written) - used}"
    for check in skipped:
        reason = check["check_result"]["suppress_comment"].strip()
        assert reason in written[(check["file_path"].lstrip("/"), check["check_id"])]
