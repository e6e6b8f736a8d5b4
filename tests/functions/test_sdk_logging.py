"""Quiet SDK logging (issue 11): the Azure SDK loggers stay at WARNING unless asked, so a re-tag
writes our one outcome line to Application Insights, not multi-line request/response dumps."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from retag.logline import SDK_LOGGERS
from tests.functions.conftest import App
from tests.support.images import oci_image


def test_importing_function_app_sets_the_sdk_loggers_to_warning(
    make_app: Callable[..., App],
) -> None:
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    make_app()
    assert "azure.core.pipeline.policies.http_logging_policy" in SDK_LOGGERS
    assert "azure.identity" in SDK_LOGGERS
    for name in SDK_LOGGERS:
        assert logging.getLogger(name).level == logging.WARNING, name


def test_an_app_setting_raises_it_for_debugging(make_app: Callable[..., App]) -> None:
    make_app(RETAG_SDK_LOG_LEVEL="debug")
    assert logging.getLogger("azure").level == logging.DEBUG
    make_app(RETAG_SDK_LOG_LEVEL="")  # unset again: back to the default
    assert logging.getLogger("azure").level == logging.WARNING


def test_a_retag_logs_one_line_and_no_sdk_record(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root at DEBUG: only the SDK loggers' own level holds
    event = app.push("team/app", oci_image())
    caplog.clear()
    assert app.deliver(event).status == 200
    ours = [r for r in caplog.records if r.getMessage().startswith("acr-retag ")]
    sdk = [r for r in caplog.records if r.name.startswith("azure") and r.levelno < logging.WARNING]
    assert len(ours) == 1, [r.getMessage() for r in ours]
    assert sdk == []
