"""Pinned Go tools (the OCI conformance suite, crane), built once into `.cache/go-tools/`.

Each tool is `go install <package>@<version>` with `GOBIN=.cache/go-tools/<name>@<version>/`;
a binary already there is reused, so only a fresh machine pays for the build (crane ~45 s, the
conformance suite ~7 s on 2 cores; the module download goes through the Go module proxy, the only
non-loopback traffic, and happens at build time, never while a test runs).

The conformance suite at this pin is a `main` package (`go build` is what its README prescribes;
`go test` still works but is deprecated and prints a warning), so `go install` builds it too.

`python -m tests.support.gotools` builds every pinned tool (the Makefile's `go-tools` target).
In tests, `require_go_tool(TOOL)` returns the binary or skips with the reason printed; under
`RETAG_REQUIRE_SYSTEM_DEPS=1` (CI) a missing `go` or a failed build fails instead.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO_ROOT / ".cache" / "go-tools"
BUILD_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class GoTool:
    name: str
    package: str  # the main package to `go install`
    version: str  # a module version (tag or pseudo-version), never "latest"
    # GOTOOLCHAIN for the build: "local" (the installed Go, 1.26.8 here) unless a module needs a
    # newer Go; then "go1.27.3", the one approved toolchain (see README).
    toolchain: str = "local"

    @property
    def binary_name(self) -> str:
        return self.package.rstrip("/").rsplit("/", 1)[-1]

    def directory(self, cache_root: Path = CACHE_ROOT) -> Path:
        return cache_root / f"{self.name}@{self.version}"

    def binary(self, cache_root: Path = CACHE_ROOT) -> Path:
        return self.directory(cache_root) / self.binary_name


CONFORMANCE = GoTool(
    name="distribution-spec-conformance",
    package="github.com/opencontainers/distribution-spec/conformance",
    version="v0.0.0-20260831232431-97274622c111",
)
CRANE = GoTool(
    name="crane",
    package="github.com/google/go-containerregistry/cmd/crane",
    version="v0.22.1",
)
TOOLS = (CONFORMANCE, CRANE)


class GoToolError(RuntimeError):
    """`go` is missing or a build failed; the message says which and why."""


def go_command() -> str:
    path = shutil.which("go")
    if path is None:
        raise GoToolError("'go' not found on PATH (the Go toolchain builds the Go peers)")
    return path


def build(tool: GoTool, cache_root: Path | None = None) -> Path:
    """Return the tool's binary, building it first unless the cache already holds it."""
    cache_root = cache_root or CACHE_ROOT
    target = tool.binary(cache_root)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = go_command()
    cache_root.mkdir(parents=True, exist_ok=True)
    # One build at a time per cache (make and pytest may race on a fresh machine).
    with open(cache_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(dir=cache_root, prefix=f".{tool.name}-") as tmp:
            env = {
                **os.environ,
                "GOBIN": tmp,
                "GOTOOLCHAIN": tool.toolchain,
                "GOFLAGS": "-buildvcs=false",
                "CGO_ENABLED": "0",
            }
            command = [go, "install", f"{tool.package}@{tool.version}"]
            try:
                done = subprocess.run(
                    command,
                    env=env,
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                    timeout=BUILD_TIMEOUT_SECONDS,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise GoToolError(f"{' '.join(command)} timed out") from exc
            built = Path(tmp) / tool.binary_name
            if done.returncode != 0 or not built.is_file():
                tail = "\n".join(done.stderr.strip().splitlines()[-5:]) or "no output"
                raise GoToolError(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
            tool.directory(cache_root).mkdir(parents=True, exist_ok=True)
            os.replace(built, target)  # atomic: a half-written binary is never reused
    return target


def require_go_tool(tool: GoTool) -> Path:
    """For tests: the built binary, or skip (fail under RETAG_REQUIRE_SYSTEM_DEPS=1)."""
    import pytest

    try:
        return build(tool)
    except GoToolError as exc:
        message = f"{tool.name} {tool.version}: {exc}"
        if os.environ.get("RETAG_REQUIRE_SYSTEM_DEPS") == "1":
            pytest.fail(message + " and RETAG_REQUIRE_SYSTEM_DEPS=1", pytrace=False)
        pytest.skip(message)


def main(argv: list[str]) -> int:
    """Build every pinned tool. Without `go`: say so and exit 0 (the tests skip or, in CI, fail).

    `--stamp PATH` touches PATH once every tool is built (the Makefile's stamp).
    """
    status = 0
    built = 0
    for tool in TOOLS:
        try:
            path = build(tool)
        except GoToolError as exc:
            print(f"go-tools: {tool.name}@{tool.version}: {exc}", file=sys.stderr)
            if "not found" not in str(exc):
                status = 1
            continue
        built += 1
        print(f"go-tools: {tool.name}@{tool.version} -> {path.relative_to(REPO_ROOT)}")
    if len(argv) == 2 and argv[0] == "--stamp" and built == len(TOOLS):
        Path(argv[1]).touch()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
