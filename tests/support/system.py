"""System packages the tests need (Debian's docker-registry, skopeo).

When a command is missing and we are root with apt-get, install it. Otherwise skip with a printed
reason, or fail when RETAG_REQUIRE_SYSTEM_DEPS=1 (CI sets it, so CI can never silently skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from typing import NoReturn

import pytest

_lock = threading.Lock()
_apt_updated = False


def require_command(command: str, apt_package: str | None = None) -> str:
    """Return the absolute path of `command`, installing its Debian package if we can."""
    path = shutil.which(command)
    if path:
        return path
    package = apt_package or command
    reason = ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        reason = _apt_install(package)
        path = shutil.which(command)
        if path:
            return path
    else:
        reason = "not root or no apt-get"
    return unavailable(
        f"{command!r} not found (Debian package {package!r}; {reason or 'install failed'})"
    )


def unavailable(message: str) -> NoReturn:
    """Skip with `message`, or fail when RETAG_REQUIRE_SYSTEM_DEPS=1 (CI must never skip)."""
    if os.environ.get("RETAG_REQUIRE_SYSTEM_DEPS") == "1":
        pytest.fail(message + " and RETAG_REQUIRE_SYSTEM_DEPS=1", pytrace=False)
    pytest.skip(message)


def _apt_install(package: str) -> str:
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with _lock:
        if not _apt_updated:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
            _apt_updated = True
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
    if done.returncode == 0:
        return ""
    last_line = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return f"apt-get install failed: {last_line}"
