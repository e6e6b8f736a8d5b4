"""The `prune_tags` timer in function_app.py, invoked as the worker does, per PRUNE_MODE."""

from __future__ import annotations

import json
import logging
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
