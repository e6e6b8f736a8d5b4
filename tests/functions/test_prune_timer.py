"""The `prune_tags` timer in function_app.py, invoked as the worker does, per PRUNE_MODE."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable

import pytest

from tests.functions.conftest import App
from tests.support.images import oci_image

REPO = "team/app"


def _three_pushes_retagged(app: App) -> list[str]:
    """Three pushes to latest, each re-tagged; returns the generated tags, oldest first."""
    app.acr.advance_clock(-3 * 24 * 3600)
    for _ in range(3):
        assert app.deliver(app.push(REPO, oci_image())).status == 200
        app.acr.advance_clock(3600)
    app.acr.advance_clock(3 * 24 * 3600)
    tags = sorted(app.registry().list_tags(REPO), key=lambda t: t.last_updated_on)
    return [t.name for t in tags if t.name != "latest"]


def test_binding_schedule_monitor_and_no_run_on_startup(app: App) -> None:
    function = app.host.function("prune_tags", "timerTrigger")
    assert function.bindings["schedule"] == "%PRUNE_SCHEDULE%"
    assert function.bindings["useMonitor"] is True
    assert function.bindings["runOnStartup"] is False


@pytest.mark.parametrize("past_due", [False, True])
def test_delete_mode_deletes_exactly_what_the_policy_allows(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture, past_due: bool
) -> None:
    app = make_app(PRUNE_MODE="delete", PRUNE_KEEP="1", PRUNE_MIN_AGE="1d")
    oldest, middle, newest = _three_pushes_retagged(app)
    caplog.set_level(logging.INFO, logger="acr-retag")
    app.acr.clear_requests()

    invocation = app.host.run_timer("prune_tags", past_due=past_due)

    assert invocation.ok, invocation.error
    remaining = {t.name for t in app.registry().list_tags(REPO)}
    # newest is on latest's digest (protected); middle is the newest candidate kept (KEEP=1).
    assert remaining == {"latest", middle, newest}
    deletes = [r for r in app.acr.requests() if r["method"] == "DELETE" and r["status"] == 202]
    assert [r["path"] for r in deletes] == [f"/acr/v1/{REPO}/_tags/{oldest}"]
    assert any("prune" in r.getMessage() for r in caplog.records)


def test_dry_run_mode_plans_but_sends_no_delete(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PRUNE_MODE="dry-run", PRUNE_KEEP="1", PRUNE_MIN_AGE="1d")
    tags = _three_pushes_retagged(app)
    caplog.set_level(logging.INFO, logger="acr-retag")
    app.acr.clear_requests()

    assert app.host.run_timer("prune_tags").ok

    assert not [r for r in app.acr.requests() if r["method"] == "DELETE"]
    assert {t.name for t in app.registry().list_tags(REPO)} == {"latest", *tags}
    summary = " ".join(r.getMessage() for r in caplog.records)
    assert "dry-run" in summary


def test_off_mode_touches_nothing(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PRUNE_MODE="off")
    _three_pushes_retagged(app)
    caplog.set_level(logging.INFO, logger="acr-retag")
    app.acr.clear_requests()

    assert app.host.run_timer("prune_tags").ok

    assert app.acr.requests() == []
    assert any("PRUNE_MODE" in r.getMessage() for r in caplog.records)


def test_settings_error_fails_the_run_with_a_clear_line(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PRUNE_MIN_AGE="a week")
    app.acr.clear_requests()

    invocation = app.host.run_timer("prune_tags")

    assert not invocation.ok
    assert any("PRUNE_MIN_AGE" in r.getMessage() for r in caplog.records)
    assert app.acr.requests() == []
    assert json.dumps(invocation.error)


# -- issue 11: a failed run is never invisible ------------------------------------------------


def _summary(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    (record,) = [r for r in caplog.records if r.getMessage().startswith("acr-retag prune ")]
    return record


@pytest.mark.parametrize("mode", ["dry-run", "delete"])
def test_unreachable_registry_fails_the_invocation_after_an_error_line(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """Before issue 11 this run logged `errors=0 complete=true` at INFO and the invocation
    succeeded: an unattended job that deletes reported a failed run as success."""
    with socket.socket() as probe:  # a loopback port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    app = make_app(PRUNE_MODE=mode, PRUNE_MAX_DURATION="2s", ACR_LOGIN_SERVER=closed)
    caplog.set_level(logging.INFO, logger="acr-retag")

    invocation = app.host.run_timer("prune_tags")

    assert not invocation.ok
    assert invocation.error == "RunFailed"
    summary = _summary(caplog)
    assert summary.levelno == logging.ERROR
    text = summary.getMessage()
    assert text.startswith(f"acr-retag prune mode={mode} ok=false ")
    assert 'error="listing repositories failed: ' in text
    assert " complete=false " in text


def test_catalog_listing_failing_fails_the_invocation(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    """The emulator answers every request 503 (ACR's `Retry-After`-less server busy): the
    transport gives up, the sweep backs off and lists again, then gives up within the box."""
    app = make_app(PRUNE_MODE="delete", PRUNE_MAX_DURATION="3s")
    _three_pushes_retagged(app)
    caplog.set_level(logging.INFO, logger="acr-retag")
    app.acr.set_faults(error_rate=1.0, error_status=503, include_auth=True)

    invocation = app.host.run_timer("prune_tags")
    app.acr.clear_faults()

    assert not invocation.ok
    summary = _summary(caplog)
    assert summary.levelno == logging.ERROR
    assert 'error="listing repositories failed: TransientRegistryError' in summary.getMessage()
    assert len(list(app.registry().list_tags(REPO))) == 4  # nothing deleted


def test_refused_registry_fails_the_invocation(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PRUNE_MODE="delete", PRUNE_KEEP="0", PRUNE_MIN_AGE="1d")
    _three_pushes_retagged(app)
    caplog.set_level(logging.INFO, logger="acr-retag")
    app.acr.set_faults(error_rate=1.0, error_status=403)  # every request refused, listings too

    invocation = app.host.run_timer("prune_tags")
    app.acr.clear_faults()

    assert not invocation.ok
    summary = _summary(caplog)
    assert summary.levelno == logging.ERROR
    assert " ok=false " in summary.getMessage()
