"""Regression (found while fuzzing): `data.request.host` must be the login server itself, not a
Unicode lookalike that `str.lower()` folds onto it (Kelvin sign U+212A -> `k`)."""

from __future__ import annotations

import logging

import pytest

from retag.on_push import handle_event
from retag.settings import load_settings
from tests.unit.test_on_push import RecordingFactory, event


@pytest.mark.parametrize(
    "host",
    [
        "\u212aitchen.azurecr.io",  # KELVIN SIGN: "\u212a".lower() == "k"
        "kitchen.azurecr.\u0130o",  # LATIN CAPITAL I WITH DOT ABOVE
        "kitchen\uff0eazurecr.io",  # FULLWIDTH FULL STOP
    ],
)
def test_unicode_lookalike_hosts_are_rejected_without_a_write(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acr-retag")
    settings = load_settings({"ACR_LOGIN_SERVER": "kitchen.azurecr.io"})
    factory = RecordingFactory()

    outcome = handle_event(event(request={"host": host, "method": "PUT"}), settings, factory)

    assert outcome.status == "rejected"
    assert "not ACR_LOGIN_SERVER=kitchen.azurecr.io" in outcome.reason
    assert factory.calls == 0
    assert len([r for r in caplog.records if r.name == "acr-retag"]) == 1


@pytest.mark.parametrize(
    "host", ["kitchen.azurecr.io", "KITCHEN.azurecr.io", "kitchen.azurecr.io:443"]
)
def test_the_login_server_itself_still_matches(host: str) -> None:
    settings = load_settings({"ACR_LOGIN_SERVER": "kitchen.azurecr.io"})
    factory = RecordingFactory()
    with pytest.raises(Exception, match="registry factory called"):
        handle_event(event(request={"host": host, "method": "PUT"}), settings, factory)
    assert factory.calls == 1
