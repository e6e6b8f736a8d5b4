"""Event parsing over a corpus of both delivery schemas and a table of hostile inputs."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from retag.events import (
    IMAGE_PUSHED,
    ImagePushed,
    MalformedEvent,
    OtherEvent,
    parse_event,
    parse_payload,
)

DIGEST = "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.ContainerRegistry/registries/myregistry"
)

# Shaped like the example in "Azure Container Registry as an Event Grid source" (Azure docs),
# delivered in the Event Grid schema: 9-digit fraction in data.timestamp, 7-digit in eventTime,
# the docker user agent with its escaped parentheses, dataVersion/metadataVersion.
ACR_DOCS_SHAPED = """
[{
  "id": "831e1650-001e-001b-66ab-eeb76e069631",
  "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry",
  "subject": "aci-helloworld:v1",
  "eventType": "Microsoft.ContainerRegistry.ImagePushed",
  "eventTime": "2018-04-25T21:39:47.6549614Z",
  "data": {
    "id": "31c51664-e5bd-416a-a5df-e5206bc47ed0",
    "timestamp": "2018-04-25T21:39:47.276585742Z",
    "action": "push",
    "target": {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 3023,
      "digest": "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5",
      "length": 3023,
      "repository": "aci-helloworld",
      "tag": "v1"
    },
    "request": {
      "id": "7c66f28b-de19-40a4-821c-6f5f6c0003a4",
      "host": "myregistry.azurecr.io",
      "method": "PUT",
      "useragent": "docker/18.03.0-ce go/go1.9.4 git-commit/0520e24 os/windows arch/amd64 UpstreamClient(Docker-Client/18.03.0-ce \\\\(windows\\\\))"
    }
  },
  "dataVersion": "1.0",
  "metadataVersion": "1"
}]
"""  # noqa: E501


def event_grid(**data_overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "31c51664-e5bd-416a-a5df-e5206bc47ed0",
        "timestamp": "2026-11-29T23:07:00.1234567Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 1061,
            "digest": DIGEST,
            "length": 1061,
            "repository": "team-a/app",
            "tag": "latest",
        },
        "request": {
            "id": "7c66f28b-de19-40a4-821c-6f5f6c0003a4",
            "host": "myregistry.azurecr.io",
            "method": "PUT",
            "useragent": "oras/1.2.0",
        },
        "actor": {"name": "00000000-0000-0000-0000-000000000000"},
        "source": {"addr": "10.0.0.4", "instanceID": "f0e1d2c3"},
    }
    data.update(data_overrides)
    return {
        "id": "5c2d7e62-9a66-4b8a-bd3f-2a6e7a9e0001",
        "topic": TOPIC,
        "subject": "team-a/app:latest",
        "eventType": IMAGE_PUSHED,
        "eventTime": "2026-11-29T23:07:01.7654321Z",
        "data": data,
        "dataVersion": "1.0",
        "metadataVersion": "1",
    }


def cloud_event(**data_overrides: Any) -> dict[str, Any]:
    eg = event_grid(**data_overrides)
    return {
        "id": eg["id"],
        "source": TOPIC,
        "subject": eg["subject"],
        "type": IMAGE_PUSHED,
        "time": eg["eventTime"],
        "data": eg["data"],
        "specversion": "1.0",
    }


def test_docs_shaped_event_grid_event() -> None:
    (envelope,) = parse_payload(ACR_DOCS_SHAPED)
    event = parse_event(envelope)
    assert event == ImagePushed(
        event_id="831e1650-001e-001b-66ab-eeb76e069631",
        repository="aci-helloworld",
        tag="v1",
        digest=DIGEST,
        media_type="application/vnd.docker.distribution.manifest.v2+json",
        pushed_at=datetime(2018, 4, 25, 21, 39, 47, 276585, tzinfo=UTC),
        request_host="myregistry.azurecr.io",
    )
    assert event.actor is None  # the docs' sample has an empty actor


@pytest.mark.parametrize("make", [event_grid, cloud_event], ids=["eventgrid", "cloudevents"])
def test_both_schemas_give_the_same_event(make: Callable[..., dict[str, Any]]) -> None:
    event = parse_event(make())
    assert event == ImagePushed(
        event_id="5c2d7e62-9a66-4b8a-bd3f-2a6e7a9e0001",
        repository="team-a/app",
        tag="latest",
        digest=DIGEST,
        media_type="application/vnd.oci.image.manifest.v1+json",
        pushed_at=datetime(2026, 11, 29, 23, 7, 0, 123456, tzinfo=UTC),
        request_host="myregistry.azurecr.io",
        actor="00000000-0000-0000-0000-000000000000",
    )


@pytest.mark.parametrize("make", [event_grid, cloud_event], ids=["eventgrid", "cloudevents"])
def test_push_time_falls_back_to_the_event_time(make: Callable[..., dict[str, Any]]) -> None:
    envelope = make()
    del envelope["data"]["timestamp"]
    event = parse_event(envelope)
    assert isinstance(event, ImagePushed)
    assert event.pushed_at == datetime(2026, 11, 29, 23, 7, 1, 765432, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T23:07:00Z", datetime(2026, 11, 29, 23, 7, tzinfo=UTC)),
        ("2026-11-29T23:07:00.5Z", datetime(2026, 11, 29, 23, 7, 0, 500000, tzinfo=UTC)),
        ("2026-11-29T23:07:00.1234567Z", datetime(2026, 11, 29, 23, 7, 0, 123456, tzinfo=UTC)),
        ("2026-11-29T23:07:00.999999999z", datetime(2026, 11, 29, 23, 7, 0, 999999, tzinfo=UTC)),
        ("2026-11-30T01:07:00+02:00", datetime(2026, 11, 29, 23, 7, tzinfo=UTC)),
        ("2026-11-29T18:37:00.25-04:30", datetime(2026, 11, 29, 23, 7, 0, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    event = parse_event(event_grid(timestamp=text))
    assert isinstance(event, ImagePushed)
    assert event.pushed_at == expected
    assert event.pushed_at.tzinfo is UTC


def test_host_decoded_datetime_is_accepted_for_the_event_time() -> None:
    envelope = event_grid()
    del envelope["data"]["timestamp"]
    envelope["eventTime"] = datetime(2026, 11, 30, 0, 7, tzinfo=timezone(timedelta(hours=1)))
    event = parse_event(envelope)
    assert isinstance(event, ImagePushed)
    assert event.pushed_at == datetime(2026, 11, 29, 23, 7, tzinfo=UTC)


def test_push_by_digest_has_no_tag() -> None:
    envelope = event_grid()
    del envelope["data"]["target"]["tag"]
    event = parse_event(envelope)
    assert isinstance(event, ImagePushed)
    assert event.tag is None
    envelope["data"]["target"]["tag"] = None
    assert parse_event(envelope) == event


def test_minimal_image_pushed() -> None:
    envelope = {
        "id": "1",
        "eventType": IMAGE_PUSHED,
        "data": {
            "timestamp": "2026-11-29T23:07:00Z",
            "target": {"digest": DIGEST, "repository": "app", "tag": "latest"},
        },
    }
    event = parse_event(envelope)
    assert isinstance(event, ImagePushed)
    assert event.media_type is None
    assert event.request_host is None


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.ContainerRegistry.ImageDeleted",
        "Microsoft.ContainerRegistry.ChartPushed",
        "Microsoft.ContainerRegistry.ChartDeleted",
        "Microsoft.EventGrid.SubscriptionValidationEvent",
        "ImagePushed",
        "microsoft.containerregistry.imagepushed",
    ],
)
@pytest.mark.parametrize("make", [event_grid, cloud_event], ids=["eventgrid", "cloudevents"])
def test_other_event_types(event_type: str, make: Callable[..., dict[str, Any]]) -> None:
    envelope = make()
    envelope["eventType" if "eventType" in envelope else "type"] = event_type
    envelope["data"] = {"anything": ["goes", 1, None]}  # not ours: data is not inspected
    assert parse_event(envelope) == OtherEvent(envelope["id"], event_type)


def test_dead_lettered_blob_is_accepted() -> None:
    envelope = event_grid()
    envelope["deadLetterReason"] = "MaxDeliveryAttemptsExceeded"
    envelope["deliveryAttempts"] = 30
    envelope["lastDeliveryOutcome"] = "Probation"
    envelope["lastDeliveryAttemptTime"] = "2026-11-30T23:07:01.0000000Z"
    events = parse_payload(json.dumps([envelope, envelope]).encode())
    assert len(events) == 2
    assert all(isinstance(parse_event(e), ImagePushed) for e in events)


def test_parse_payload_forms() -> None:
    body = json.dumps(event_grid())
    assert parse_payload(body) == [event_grid()]
    assert parse_payload(body.encode()) == [event_grid()]
    assert parse_payload(b"\xef\xbb\xbf" + f"[{body}]".encode()) == [event_grid()]
    assert parse_payload("[]") == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "unparsable JSON"),
        ("{", "unparsable JSON"),
        ("not json", "unparsable JSON"),
        ('{"id": NaN}', "unparsable JSON: NaN is not valid JSON"),
        ("42", "top level is number"),
        ('"event"', "top level is string"),
        ("null", "top level is null"),
        ("[[{}]]", "element 0 is array"),
        ('[{"id": "1"}, 3]', "element 1 is number"),
        (b"\xff\xfe\x00", "not UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "unparsable JSON"),
    ],
)
def test_parse_payload_rejects(body: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedEvent) as info:
        parse_payload(body)
    assert reason in info.value.reason
    assert info.value.event_id is None


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def mutate(envelope: dict[str, Any]) -> None:
        node = envelope
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    keys = path.split(".")

    def mutate(envelope: dict[str, Any]) -> None:
        node = envelope
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    # envelope
    ("missing id", _delete("id"), "missing id"),
    ("null id", _set("id", None), "missing id"),
    ("numeric id", _set("id", 42), "id is number, expected a string"),
    ("empty id", _set("id", "  "), "id is empty"),
    ("huge id", _set("id", "x" * 10_000), "id is 10000 characters long"),
    ("id with newline", _set("id", "abc\nacr-retag outcome=retagged"), "control characters"),
    ("no schema", _delete("eventType"), "neither an Event Grid event"),
    ("event type number", _set("eventType", 7), "eventType is number, expected a string"),
    ("event type list", _set("eventType", [IMAGE_PUSHED]), "eventType is array"),
    ("event type empty", _set("eventType", ""), "eventType is empty"),
    ("topic object", _set("topic", {}), "topic is object, expected a string"),
    ("subject number", _set("subject", 1), "subject is number"),
    ("event time garbage", _set("eventTime", "yesterday"), 'eventTime "yesterday" is not'),
    ("event time number", _set("eventTime", 1764457620), "eventTime is number"),
    # data
    ("missing data", _delete("data"), "missing data"),
    ("null data", _set("data", None), "missing data"),
    ("string data", _set("data", "{}"), "data is string, expected an object"),
    ("array data", _set("data", [[{"target": {}}]]), "data is array, expected an object"),
    ("missing target", _delete("data.target"), "missing data.target"),
    ("target array", _set("data.target", []), "data.target is array"),
    # digest
    ("missing digest", _delete("data.target.digest"), "missing data.target.digest"),
    ("digest number", _set("data.target.digest", 1), "data.target.digest is number"),
    ("digest no algo", _set("data.target.digest", DIGEST[7:]), "does not start with 'sha256:'"),
    ("digest sha512", _set("data.target.digest", "sha512:" + "a" * 128), "'sha256:'"),
    ("digest short", _set("data.target.digest", DIGEST[:-1]), "64 lowercase hex"),
    ("digest long", _set("data.target.digest", DIGEST + "0"), "64 lowercase hex"),
    ("digest uppercase", _set("data.target.digest", DIGEST.upper()), "'sha256:'"),
    ("digest upper hex", _set("data.target.digest", "sha256:" + "A" * 64), "64 lowercase hex"),
    ("digest newline", _set("data.target.digest", DIGEST + "\n"), "64 lowercase hex"),
    # repository
    ("missing repository", _delete("data.target.repository"), "missing data.target.repository"),
    ("repository bool", _set("data.target.repository", True), "repository is boolean"),
    ("repository empty", _set("data.target.repository", ""), 'repository "" is empty'),
    ("repository traversal", _set("data.target.repository", "../etc/passwd"), "OCI name"),
    ("repository dotdot", _set("data.target.repository", "a/../b"), "OCI name"),
    ("repository double dot", _set("data.target.repository", "a..b"), "OCI name"),
    ("repository leading slash", _set("data.target.repository", "/app"), "empty path component"),
    ("repository trailing slash", _set("data.target.repository", "app/"), "empty path"),
    ("repository uppercase", _set("data.target.repository", "Team/App"), "uppercase"),
    ("repository unicode", _set("data.target.repository", "appé"), "OCI name"),
    ("repository fullwidth", _set("data.target.repository", "\uff41pp"), "OCI name"),
    ("repository url", _set("data.target.repository", "https://x/app"), "empty path"),
    ("repository query", _set("data.target.repository", "app?x=1"), "OCI name"),
    ("repository nul", _set("data.target.repository", "app\x00"), "OCI name"),
    ("repository 256", _set("data.target.repository", "a" * 256), "256 characters long"),
    ("repository huge", _set("data.target.repository", "a" * 1_000_000), "characters long"),
    # tag
    ("tag number", _set("data.target.tag", 1), "data.target.tag is number"),
    ("tag empty", _set("data.target.tag", ""), 'data.target.tag "" is empty'),
    ("tag leading dash", _set("data.target.tag", "-latest"), "starts with '-'"),
    ("tag leading dot", _set("data.target.tag", ".latest"), "starts with '.'"),
    ("tag slash", _set("data.target.tag", "latest/../x"), "not allowed in a tag"),
    ("tag colon", _set("data.target.tag", "a:b"), "not allowed in a tag"),
    ("tag space", _set("data.target.tag", "lat est"), "not allowed in a tag"),
    ("tag unicode", _set("data.target.tag", "latést"), "not allowed in a tag"),
    ("tag 129", _set("data.target.tag", "a" * 129), "129 characters long"),
    ("tag object", _set("data.target.tag", {"name": "latest"}), "tag is object"),
    # other fields
    ("media type number", _set("data.target.mediaType", 5), "mediaType is number"),
    ("media type empty", _set("data.target.mediaType", ""), "is not a media type"),
    ("size string", _set("data.target.size", "1061"), "size is string"),
    ("size negative", _set("data.target.size", -1), "size is negative"),
    ("size bool", _set("data.target.size", True), "size is boolean"),
    ("length float", _set("data.target.length", 1.5), "length is number"),
    ("action list", _set("data.action", ["push"]), "data.action is array"),
    ("request array", _set("data.request", ["host"]), "data.request is array"),
    ("request host number", _set("data.request.host", 443), "data.request.host is number"),
    ("request host empty", _set("data.request.host", ""), "is not a host"),
    ("request host space", _set("data.request.host", "a b"), "is not a host"),
    ("request host url", _set("data.request.host", "https://x.io/"), "is not a host"),
    ("actor string", _set("data.actor", "me"), "data.actor is string"),
    ("actor name list", _set("data.actor", {"name": []}), "data.actor.name is array"),
    ("timestamp number", _set("data.timestamp", 0), "data.timestamp is number"),
    ("timestamp no zone", _set("data.timestamp", "2026-11-29T23:07:00"), "UTC offset"),
    ("timestamp date only", _set("data.timestamp", "2026-11-29"), "not an ISO-8601"),
    ("timestamp basic form", _set("data.timestamp", "20261129T230700Z"), "not an ISO-8601"),
    ("timestamp month 13", _set("data.timestamp", "2026-13-01T00:00:00Z"), "not a valid date"),
    ("timestamp feb 30", _set("data.timestamp", "2026-02-30T00:00:00Z"), "not a valid date"),
    ("timestamp hour 24", _set("data.timestamp", "2026-11-29T24:00:00Z"), "not a valid date"),
    ("timestamp bad offset", _set("data.timestamp", "2026-11-29T23:07:00+25:00"), "offset"),
    ("timestamp 10 digits", _set("data.timestamp", "2026-11-29T23:07:00.1234567890Z"), "ISO"),
    ("timestamp year 0", _set("data.timestamp", "0000-01-01T00:00:00Z"), "not a valid date"),
    ("timestamp huge", _set("data.timestamp", "2" * 5000), "5000 characters long"),
]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [pytest.param(m, r, id=name) for name, m, r in MALFORMED],
)
def test_malformed_event_grid_events(mutate: Callable[[dict[str, Any]], None], reason: str) -> None:
    envelope = event_grid()
    mutate(envelope)
    with pytest.raises(MalformedEvent) as info:
        parse_event(envelope)
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason
    if info.value.reason.startswith(("id ", "missing id")):
        assert info.value.event_id is None  # an untrusted id is never echoed
    else:
        assert info.value.event_id == envelope["id"]


def test_malformed_survives_a_json_round_trip() -> None:
    """The same table, through raw JSON as Event Grid delivers it (where JSON can carry it)."""
    count = 0
    for _, mutate, reason in MALFORMED:
        envelope = event_grid()
        mutate(envelope)
        (decoded,) = parse_payload(json.dumps(envelope))
        with pytest.raises(MalformedEvent) as info:
            parse_event(decoded)
        assert reason in info.value.reason
        count += 1
    assert count >= 30


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (_delete("source"), "missing source"),
        (_set("source", 1), "source is number"),
        (_set("specversion", "0.3"), 'specversion "0.3" is not supported'),
        (_set("specversion", 1.0), "specversion is number"),
        (_delete("type"), "missing type"),
        (_set("type", None), "missing type"),
        (_set("time", "29/11/2026 23:07"), 'time "29/11/2026 23:07" is not'),
        (_set("data", "base64"), "data is string"),
        (_delete("data"), "missing data"),
    ],
)
def test_malformed_cloud_events(mutate: Callable[[dict[str, Any]], None], reason: str) -> None:
    envelope = cloud_event()
    mutate(envelope)
    with pytest.raises(MalformedEvent) as info:
        parse_event(envelope)
    assert reason in info.value.reason


def test_no_push_time_at_all() -> None:
    envelope = event_grid()
    del envelope["data"]["timestamp"]
    del envelope["eventTime"]
    with pytest.raises(MalformedEvent, match="no push time"):
        parse_event(envelope)


@pytest.mark.parametrize(
    "envelope",
    [None, 42, "event", [event_grid()], {1: "x", "id": "1"}],
    ids=["null", "number", "string", "array", "non-string key"],
)
def test_envelope_that_is_not_an_object(envelope: Any) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(envelope)


def test_naive_host_datetime_is_rejected() -> None:
    envelope = event_grid()
    del envelope["data"]["timestamp"]
    envelope["eventTime"] = datetime(2026, 11, 29, 23, 7)
    with pytest.raises(MalformedEvent, match="eventTime has no UTC offset"):
        parse_event(envelope)


def test_parse_event_does_not_mutate_its_input() -> None:
    envelope = event_grid()
    before = copy.deepcopy(envelope)
    parse_event(envelope)
    assert envelope == before


def test_error_messages_quote_untrusted_text_safely() -> None:
    envelope = event_grid()
    envelope["data"]["target"]["repository"] = 'evil"\nacr-retag outcome=retagged ' + "x" * 500
    with pytest.raises(MalformedEvent) as info:
        parse_event(envelope)
    assert "\n" not in info.value.reason
    assert len(info.value.reason) < 300
