"""`retag.acr.topic.publish_tag_added`: the real `EventGridPublisherClient` publishing to the
emulator's Event Grid topic over HTTPS with a real TokenCredential.

What the SDK sends (azure-eventgrid 4.22.1, `azure/eventgrid/_legacy/_publisher_client.py` `send`
and `_legacy/_helpers.py` `_build_request` / `_get_authentication_policy`): a JSON array POSTed
with `?api-version=2018-01-01`, a bearer token for the scope `https://eventgrid.azure.net/.default`;
only 200 is success (401 -> `ClientAuthenticationError`).
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator import Emulator
from retag.acr.topic import PublishError, publish_tag_added
from retag.audit import TagAddedEvent, cloud_event_fields
from tests.support.credentials import FailingCredential, StaticTokenCredential

EVENTGRID = "https://eventgrid.azure.net"


def tag_event(acr: Emulator, tag: str = "latest_20261201093000_abababababab") -> TagAddedEvent:
    return TagAddedEvent(
        registry=acr.login_server,
        repository="team/app",
        source_tag="latest",
        digest="sha256:" + "ab" * 32,
        tag=tag,
        pushed_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        event_id="push-1",
        actor="pipeline",
    )


def test_publishes_the_cloud_event_with_a_token(acr: Emulator) -> None:
    credential = StaticTokenCredential(audience=EVENTGRID)
    event = tag_event(acr)
    publish_tag_added(acr.topic_endpoint, event, credential=credential, ca_bundle=acr.ca_bundle)
    [received] = acr.topic_events()
    fields = cloud_event_fields(event)
    assert received["specversion"] == "1.0"
    for name in ("type", "source", "subject", "id", "data"):
        assert received[name] == fields[name], name
    assert received["type"] == "AcrRetag.TagAdded"
    assert received["source"] == f"https://{acr.login_server}"
    assert received["subject"] == "team/app:latest_20261201093000_abababababab"
    assert credential.calls == [(f"{EVENTGRID}/.default",)]
    [request] = [r for r in acr.requests() if r["path"] == "/api/events"]
    assert request["method"] == "POST"
    assert request["status"] == 200
    assert request["query"] == {"api-version": "2018-01-01"}
    assert request["content_type"] == "application/cloudevents-batch+json; charset=utf-8"
    assert request["events"] == 1


def test_same_tag_same_id(acr: Emulator) -> None:
    credential = StaticTokenCredential(audience=EVENTGRID)
    for _ in range(2):
        publish_tag_added(
            acr.topic_endpoint, tag_event(acr), credential=credential, ca_bundle=acr.ca_bundle
        )
    publish_tag_added(
        acr.topic_endpoint, tag_event(acr, "other"), credential=credential, ca_bundle=acr.ca_bundle
    )
    ids = [e["id"] for e in acr.topic_events()]
    assert len(ids) == 3
    assert ids[0] == ids[1] != ids[2]


def test_wrong_audience_is_a_one_line_publish_error_without_the_token(acr: Emulator) -> None:
    """A registry token (audience containerregistry) is not an Event Grid token: 401."""
    credential = StaticTokenCredential(audience="https://containerregistry.azure.net")
    with pytest.raises(PublishError) as caught:
        publish_tag_added(
            acr.topic_endpoint, tag_event(acr), credential=credential, ca_bundle=acr.ca_bundle
        )
    message = str(caught.value)
    assert "\n" not in message
    assert len(message) <= 300
    assert "HTTP 401" in message
    assert "Unauthorized" in message
    assert "audience" in message
    assert f"topic {acr.login_server.split(':')[0]}" in message
    assert credential.issued
    assert all(token not in message for token in credential.issued)
    assert all(part not in message for token in credential.issued for part in token.split("."))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert acr.topic_events() == []


def test_expired_token_is_refused(acr: Emulator) -> None:
    credential = StaticTokenCredential(lifetime_seconds=-60, audience=EVENTGRID)
    with pytest.raises(PublishError, match=r"HTTP 401.*expired"):
        publish_tag_added(
            acr.topic_endpoint, tag_event(acr), credential=credential, ca_bundle=acr.ca_bundle
        )


def test_no_identity(acr: Emulator) -> None:
    with pytest.raises(PublishError, match="ClientAuthenticationError"):
        publish_tag_added(
            acr.topic_endpoint,
            tag_event(acr),
            credential=FailingCredential(),
            ca_bundle=acr.ca_bundle,
        )


def test_dead_endpoint_fails_within_the_timeout(acr: Emulator) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(PublishError, match="ServiceRequestError") as caught:
        publish_tag_added(
            f"https://127.0.0.1:{port}/api/events",
            tag_event(acr),
            credential=StaticTokenCredential(audience=EVENTGRID),
            ca_bundle=acr.ca_bundle,
            timeout=1.0,
        )
    assert time.monotonic() - started < 3.0
    assert "\n" not in str(caught.value)


def test_silent_endpoint_times_out(acr: Emulator) -> None:
    """A listener that accepts and never answers: the read timeout bounds the one attempt."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(PublishError):
            publish_tag_added(
                f"https://127.0.0.1:{port}/api/events",
                tag_event(acr),
                credential=StaticTokenCredential(audience=EVENTGRID),
                ca_bundle=acr.ca_bundle,
                timeout=0.5,
            )
        assert time.monotonic() - started < 3.0


def test_tls_is_verified(acr: Emulator) -> None:
    """Without the emulator's CA the certificate is not trusted: no event is sent."""
    with pytest.raises(PublishError):
        publish_tag_added(
            acr.topic_endpoint, tag_event(acr), credential=StaticTokenCredential(audience=EVENTGRID)
        )
    assert acr.topic_events() == []


def test_bad_endpoint_and_timeout(acr: Emulator) -> None:
    with pytest.raises(PublishError, match="bad topic endpoint"):
        publish_tag_added("not a url", tag_event(acr), credential=StaticTokenCredential())
    with pytest.raises(ValueError, match="timeout"):
        publish_tag_added(acr.topic_endpoint, tag_event(acr), timeout=0)


def test_why_the_topic_client_is_used_directly(acr: Emulator) -> None:
    """azure-eventgrid 4.22.1: the public `EventGridPublisherClient` builds its basic-topic client
    without forwarding keywords (`azure/eventgrid/_patch.py` `__init__`), so its
    `connection_verify` is ignored and the emulator's certificate is refused; the topic client
    `retag.acr.topic` uses is the very class it delegates to. If a new SDK forwards them, this
    test fails and the public class can be used again."""
    from azure.core.exceptions import ServiceRequestError
    from azure.core.messaging import CloudEvent
    from azure.eventgrid import EventGridPublisherClient as Public

    from retag.acr.topic import EventGridPublisherClient as Topic

    credential = StaticTokenCredential(audience=EVENTGRID)
    public = Public(acr.topic_endpoint, credential, connection_verify=acr.ca_bundle, retry_total=0)
    assert type(public._client) is Topic
    with public, pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        public.send([CloudEvent(source="https://test", type="Test.Event", data={})])
    assert acr.topic_events() == []


def test_missing_ca_bundle(acr: Emulator, tmp_path: Path) -> None:
    with pytest.raises(PublishError, match=r"ca_bundle: .* is not an existing file"):
        publish_tag_added(
            acr.topic_endpoint,
            tag_event(acr),
            credential=StaticTokenCredential(audience=EVENTGRID),
            ca_bundle=str(tmp_path / "missing.pem"),
        )
