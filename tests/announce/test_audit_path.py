"""The audit event on the event path (issue 14 item 3): a new generated tag publishes one
`AcrRetag.TagAdded` CloudEvent to the topic (the emulator's Event Grid topic, over HTTPS, through
azure-eventgrid), with the push's fields; a redelivery publishes none; a refusing topic never
fails the re-tag.

The app's credential is the process's one `DefaultAzureCredential` (`retag.acr.topic`); here it is
replaced by a real TokenCredential whose tokens carry Event Grid's audience, as a managed
identity's would (the SDK asks for `https://eventgrid.azure.net/.default`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from emulator import Emulator
from retag.acr import topic
from retag.on_push import handle_event
from retag.settings import load_settings
from retag.tagging import _RECENT
from tests.announce.test_nudge import pushed_event
from tests.support.credentials import StaticTokenCredential

EVENTGRID = "https://eventgrid.azure.net"


@pytest.fixture(autouse=True)
def identity(monkeypatch: pytest.MonkeyPatch) -> Iterator[StaticTokenCredential]:
    credential = StaticTokenCredential(audience=EVENTGRID)
    monkeypatch.setattr(topic, "_CREDENTIAL", credential)
    _RECENT.clear()
    return credential


def settings_for(acr: Emulator, endpoint: str) -> Any:
    return load_settings(
        {
            "ACR_LOGIN_SERVER": acr.login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": acr.ca_bundle,
            "RETAG_EVENTS_TOPIC": endpoint,
        }
    )


def test_a_new_tag_publishes_one_audit_event_and_a_redelivery_none(
    acr: Emulator, registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(acr, acr.topic_endpoint)
    digest, event = pushed_event(acr, seed=61, event_id="evt-audit")
    with caplog.at_level(logging.INFO, logger="acr-retag"):
        outcome = handle_event(event, settings, lambda: registry)
        assert outcome.status == "retagged"
        _RECENT.clear()
        assert handle_event(event, settings, lambda: registry).status == "ignored"
    [published] = acr.topic_events()
    assert published["type"] == "AcrRetag.TagAdded"
    assert published["source"] == f"https://{acr.login_server}"
    assert published["subject"] == f"team/nudged:{outcome.new_tag}"
    data = published["data"]
    assert data["repository"] == "team/nudged"
    assert data["sourceTag"] == "latest"
    assert data["digest"] == digest
    assert data["tag"] == outcome.new_tag
    assert data["eventId"] == "evt-audit"
    assert data["actor"] == "ci-pipeline"
    assert data["pushedAt"].startswith("2026-12-01T09:30:00.123")
    assert "audit=sent" in caplog.records[0].getMessage()


def test_a_refusing_topic_never_fails_the_re_tag(
    acr: Emulator, registry: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A token for the wrong audience (the registry's): the topic answers 401.
    monkeypatch.setattr(
        topic, "_CREDENTIAL", StaticTokenCredential(audience="https://containerregistry.azure.net")
    )
    settings = settings_for(acr, acr.topic_endpoint)
    digest, event = pushed_event(acr, seed=62)
    with caplog.at_level(logging.INFO, logger="acr-retag"):
        outcome = handle_event(event, settings, lambda: registry)
    assert outcome.status == "retagged"
    assert registry.get_tag("team/nudged", outcome.new_tag).digest == digest
    assert acr.topic_events() == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("acr-retag audit ok=false")
    assert "401" in warnings[0]
    assert "audit=failed" in caplog.records[-1].getMessage()
