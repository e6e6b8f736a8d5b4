"""Fixtures for the CLI tests: run `retag.cli.main` in-process and capture what it prints."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.credentials import TokenCredential

from emulator import Emulator
from retag.cli.main import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


RunCli = Callable[..., Run]


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every CLI test in an empty directory, so a developer's ./.env is never read."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def emulator_env(acr: Emulator, credential: str = "anonymous") -> dict[str, str]:
    """The settings that point the CLI at the emulator."""
    return {
        "ACR_LOGIN_SERVER": acr.login_server,
        "ACR_CREDENTIAL": credential,
        "ACR_CA_BUNDLE": acr.ca_bundle,
    }


@pytest.fixture(scope="module")
def acr(module_acr: Emulator) -> Emulator:
    """One emulator per test module (the shared `module_acr`)."""
    return module_acr


@pytest.fixture
def env(acr: Emulator) -> dict[str, str]:
    return emulator_env(acr)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """`cli(["list", "myapp"], env={...})` -> Run(code, out, err)."""

    def run(
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        credential: TokenCredential | None = None,
    ) -> Run:
        capsys.readouterr()
        code = main(list(argv), env={} if env is None else dict(env), credential=credential)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def assert_one_line_error(run: Run, *fragments: str) -> str:
    """The run failed with exactly one `acr-retag: error:` line and no traceback."""
    assert "Traceback" not in run.err
    assert len(run.error_lines) == 1, run.err
    (line,) = run.error_lines
    assert line.startswith("acr-retag: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def wait_logged(acr: Emulator, method: str, path_prefix: str) -> None:
    """The emulator logs a request just after answering it: wait until a 2xx one shows up."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(
            r["method"] == method and r["path"].startswith(path_prefix) and r["status"] < 300
            for r in acr.requests()
        ):
            return
        time.sleep(0.01)
