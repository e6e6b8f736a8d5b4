"""The `reconcile_tags` timer in function_app.py, invoked as the worker does (host stand-in)."""

from __future__ import annotations

import logging

import pytest

from emulator import Emulator
from emulator.functions_host import FunctionsHost
from tests.reconcile.conftest import Pusher, make_registry, tags_of, writes
from tests.support.function_app import load_function_app

NAME = "reconcile_tags"


def load(acr: Emulator, monkeypatch: pytest.MonkeyPatch, **env: str) -> FunctionsHost:
    """Import function_app with these settings, as a fresh worker process would (the shared
    loader; the shared `acr` emulator runs on real time, which the timer compares push times
    with)."""
    host = load_function_app(acr, monkeypatch, **{"RECONCILE_GRACE": "0s", **env}).host
    assert NAME in host.functions, f"function_app.py has no {NAME} timer"
    return host


def reconcile_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("acr-retag reconcile")
    ]


def test_binding_schedule_monitor_and_no_run_on_startup(
    acr: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = load(acr, monkeypatch).function(NAME, "timerTrigger")
    assert function.bindings["schedule"] == "%RECONCILE_SCHEDULE%"
    assert function.bindings.get("useMonitor") is True
    assert function.bindings.get("runOnStartup", False) is False


def test_timer_catches_up_a_missed_push(
    acr: Emulator,
    pusher: Pusher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    digest = pusher.push("app")
    host = load(acr, monkeypatch)
    invocation = host.run_timer(NAME, past_due=True)
    assert invocation.ok, invocation.error
    with make_registry(acr) as registry:
        tags = tags_of(acr, registry, "app")
    assert len(tags) == 2
    assert set(tags.values()) == {digest}
    lines = reconcile_lines(caplog)
    assert any("status=tagged repository=app" in line for line in lines)
    assert lines[-1].startswith("acr-retag reconcile mode=apply ok=true ")


@pytest.mark.parametrize("mode", ["off", "dry-run"])
def test_timer_honours_reconcile_mode(
    mode: str,
    acr: Emulator,
    pusher: Pusher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    digest = pusher.push("app")
    host = load(acr, monkeypatch, RECONCILE_MODE=mode)
    acr.clear_requests()
    assert host.run_timer(NAME).ok
    assert writes(acr) == []
    if mode == "off":
        assert acr.requests() == []
    with make_registry(acr) as registry:
        assert tags_of(acr, registry, "app") == {"latest": digest}
    assert reconcile_lines(caplog)[-1].startswith(f"acr-retag reconcile mode={mode} ok=true")


# -- issue 11: a run that did not do what it was asked fails the invocation ---------------------


def _summary(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    (record,) = [r for r in caplog.records if r.getMessage().startswith("acr-retag reconcile ")]
    return record


def test_refused_catalog_fails_the_invocation_after_an_error_line(
    acr: Emulator,
    pusher: Pusher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every request answers 403 (the identity lost its role): the catalog cannot be listed, the
    summary says so at ERROR, and the timer raises so the host records a failed invocation.
    (Unreachable registries are covered by the prune timer's test: the same sweep, the same
    raise; here it would spend the 8-minute default box's back-off, ~50 s.)"""
    pusher.push("app")
    host = load(acr, monkeypatch)
    caplog.set_level(logging.INFO)
    acr.set_faults(error_rate=1.0, error_status=403)

    invocation = host.run_timer(NAME)
    acr.clear_faults()

    assert not invocation.ok
    assert invocation.error == "RunFailed"
    summary = _summary(caplog)
    assert summary.levelno == logging.ERROR
    assert summary.getMessage().startswith("acr-retag reconcile mode=apply ok=false ")
    assert 'error="listing repositories failed: ' in summary.getMessage()


def test_dry_run_that_only_plans_is_ok(
    acr: Emulator,
    pusher: Pusher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pusher.push("app")
    host = load(acr, monkeypatch, RECONCILE_MODE="dry-run")
    caplog.set_level(logging.INFO)
    assert host.run_timer(NAME).ok
    summary = _summary(caplog)
    assert summary.levelno == logging.INFO
    assert "would_tag=1" in summary.getMessage()
