"""Node.js and the npm packages of `tests/js` (the JavaScript SDK suite).

`make test` installs `tests/js/node_modules` from the committed `package-lock.json` (`npm ci`).
When `node` or the packages are missing the tests skip with the reason printed, or fail under
RETAG_REQUIRE_SYSTEM_DEPS=1 (CI), like the Debian packages of `tests/support/system.py`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.support.system import unavailable

JS_DIR = Path(__file__).resolve().parents[1] / "js"
MIN_NODE_MAJOR = 20


def require_node_package(package: str) -> tuple[str, str]:
    """Return (path of `node`, installed version of `package`) or skip/fail with the reason."""
    node = shutil.which("node")
    if node is None:
        unavailable(f"'node' not found (Node {MIN_NODE_MAJOR}+ runs tests/js)")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE_MAJOR:
        unavailable(
            f"node {version or '(unknown version)'} found, tests/js needs {MIN_NODE_MAJOR}+"
        )
    manifest = JS_DIR / "node_modules" / package / "package.json"
    if not manifest.is_file():
        unavailable(
            f"{package} is not installed in tests/js/node_modules "
            "(`make test` runs `npm ci` there; or run it by hand)"
        )
    installed = str(json.loads(manifest.read_text())["version"])
    locked = _locked_version(package)
    if locked != installed:
        unavailable(
            f"tests/js/node_modules has {package} {installed}, package-lock.json pins {locked} "
            "(run `npm ci` in tests/js)"
        )
    return node, installed


def _locked_version(package: str) -> str | None:
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    entry = lock.get("packages", {}).get(f"node_modules/{package}")
    return None if entry is None else str(entry.get("version"))
