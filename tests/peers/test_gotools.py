"""tests/support/gotools: builds are cached, and a missing `go` is reported, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import gotools


def test_a_built_tool_is_reused_without_go(
    crane_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = crane_binary.stat().st_mtime_ns
    monkeypatch.setenv("PATH", "/nonexistent")  # no `go`: only the cache can answer
    assert gotools.build(gotools.CRANE) == crane_binary
    assert crane_binary.stat().st_mtime_ns == before
    assert crane_binary.parent.name == f"crane@{gotools.CRANE.version}"


def test_missing_go_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(gotools.GoToolError, match="'go' not found"):
        gotools.build(gotools.CRANE, cache_root=tmp_path)
    assert not list(tmp_path.iterdir())


def test_main_leaves_no_stamp_without_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(gotools, "CACHE_ROOT", tmp_path / "cache")
    stamp = tmp_path / "stamp"
    assert gotools.main(["--stamp", str(stamp)]) == 0  # make goes on; the tests skip or fail
    assert not stamp.exists()
    assert capsys.readouterr().err.count("'go' not found") == len(gotools.TOOLS)
