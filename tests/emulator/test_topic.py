"""The emulator's Event Grid topic: `POST /api/events` (auth, CloudEvents batch checks) and its
admin view `/_emulator/topic/events`.

Event Grid publisher auth: an Entra token for `https://eventgrid.azure.net`
(https://learn.microsoft.com/azure/event-grid/authenticate-with-microsoft-entra-id) or the
topic's access key in the `aeg-sas-key` header or query parameter (MicrosoftDocs/azure-docs
articles/event-grid/authenticate-with-access-keys-shared-access-signatures.md). CloudEvents batch
mode is a JSON array (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/
json-format.md#4-json-batch-format); `specversion`, `id`, `source`, `type` are required
(cloudevents spec.md, "Required Attributes").
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from azure.core.credentials import AzureKeyCredential
from azure.core.messaging import CloudEvent

from emulator import Emulator
from tests.support.credentials import unsigned_jwt

BATCH = "application/cloudevents-batch+json; charset=utf-8"


def cloud_event(**overrides: Any) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": "1", "source": "https://test", "type": "Test.Event"}
    event.update(overrides)
    return event


def post(acr: Emulator, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        acr.topic_endpoint,
        data=data,
        headers={"Content-Type": BATCH, **(headers or {})},
        verify=acr.ca_bundle,
        timeout=10,
        **kw,
    )


def bearer(**claims: Any) -> dict[str, str]:
    claims.setdefault("aud", "https://eventgrid.azure.net")
    claims.setdefault("exp", int(time.time()) + 600)
    return {"Authorization": f"Bearer {unsigned_jwt(claims)}"}


@pytest.fixture(autouse=True)
def _clean(acr: Emulator) -> None:
    acr.clear_topic_events()


@pytest.mark.parametrize(
    "headers",
    [
        bearer(),
        bearer(aud="https://eventgrid.azure.net/"),
        "key-header",
        "key-query",
    ],
    ids=["token", "token-slash", "key-header", "key-query"],
)
def test_accepted(acr: Emulator, headers: Any) -> None:
    params = None
    if headers == "key-header":
        headers = {"aeg-sas-key": acr.topic_key}
    elif headers == "key-query":
        headers, params = {}, {"aeg-sas-key": acr.topic_key}
    answer = post(acr, [cloud_event(), cloud_event(id="2")], headers, params=params)
    assert answer.status_code == 200
    assert answer.content == b""
    assert [e["id"] for e in acr.topic_events()] == ["1", "2"]


def test_key_never_in_the_request_log(acr: Emulator) -> None:
    post(acr, [cloud_event()], params={"aeg-sas-key": acr.topic_key})
    entries = [r for r in acr.requests() if r["path"] == "/api/events"]
    assert entries
    assert acr.topic_key not in json.dumps(entries)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "aeg-sas-key"),
        ({"aeg-sas-key": "wrong"}, "key is not valid"),
        ({"Authorization": "Bearer not-a-jwt"}, "malformed"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed"),
        (bearer(aud="https://containerregistry.azure.net"), "audience"),
        (bearer(aud="https://management.azure.com"), "audience"),
        (bearer(exp=int(time.time()) - 10), "expired"),
        (bearer(exp="tomorrow"), "expired"),
    ],
    ids=["none", "wrong-key", "not-jwt", "basic", "acr-aud", "arm-aud", "expired", "bad-exp"],
)
def test_refused(acr: Emulator, headers: dict[str, str], words: str) -> None:
    answer = post(acr, [cloud_event()], headers)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "Unauthorized"
    assert words in error["message"]
    assert acr.topic_events() == []


def test_no_exp_claim_is_accepted_when_absent(acr: Emulator) -> None:
    claims = {"aud": "https://eventgrid.azure.net"}
    answer = post(acr, [cloud_event()], {"Authorization": f"Bearer {unsigned_jwt(claims)}"})
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not valid JSON"),
        (cloud_event(), "non-empty array"),
        ([], "non-empty array"),
        (["text"], "not a JSON object"),
        ([cloud_event(id="")], "'id'"),
        ([{k: v for k, v in cloud_event().items() if k != "source"}], "'source'"),
        ([cloud_event(type=3)], "'type'"),
        ([cloud_event(specversion="0.3")], "specversion"),
        ([cloud_event(), {"id": "2"}], "Event 1"),
    ],
    ids=["json", "object", "empty", "item", "id", "source", "type", "version", "second"],
)
def test_bad_batches(acr: Emulator, body: Any, words: str) -> None:
    answer = post(acr, body, {"aeg-sas-key": acr.topic_key})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert words in answer.json()["error"]["message"]
    assert acr.topic_events() == []  # nothing of a refused batch is kept


def test_auth_is_checked_before_the_body(acr: Emulator) -> None:
    assert post(acr, b"{not json").status_code == 401


def test_get_is_405(acr: Emulator) -> None:
    answer = requests.get(acr.topic_endpoint, verify=acr.ca_bundle, timeout=10)
    assert answer.status_code == 405


def test_admin_view(acr: Emulator) -> None:
    post(acr, [cloud_event(data={"a": 1})], {"aeg-sas-key": acr.topic_key})
    url = f"{acr.endpoint}/_emulator/topic/events"
    listed = requests.get(url, verify=acr.ca_bundle, timeout=10)
    assert listed.status_code == 200
    assert listed.json() == [cloud_event(data={"a": 1})] == acr.topic_events()
    assert requests.delete(url, verify=acr.ca_bundle, timeout=10).status_code == 204
    assert acr.topic_events() == []
    assert requests.get(url, verify=acr.ca_bundle, timeout=10).json() == []


def test_sdk_with_the_topic_key(acr: Emulator) -> None:
    """The SDK's key credential sends `aeg-sas-key` (azure-eventgrid `_legacy/_helpers.py`
    `_get_authentication_policy`, `_legacy/_constants.py` EVENTGRID_KEY_HEADER)."""
    from azure.eventgrid._legacy import EventGridPublisherClient

    with EventGridPublisherClient(
        acr.topic_endpoint,
        AzureKeyCredential(acr.topic_key),
        connection_verify=acr.ca_bundle,
        retry_total=0,
    ) as client:
        client.send([CloudEvent(source="https://test", type="Test.Event", data={"x": 1})])
    [event] = acr.topic_events()
    assert event["type"] == "Test.Event"
    assert event["data"] == {"x": 1}
    assert event["specversion"] == "1.0"
