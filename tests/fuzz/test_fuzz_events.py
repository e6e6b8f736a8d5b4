"""Fuzzing the event path with hypothesis: hostile input never writes, never crashes, logs once.

Inputs: arbitrary JSON values, arbitrary JSON objects that use the event schemas' own keys, and
near-valid ImagePushed events (a real event the emulator emitted, in both schemas) with exactly
one field mutated: deleted, retyped (null, numbers, booleans, containers), empty, unicode (lone
surrogates, control and bidi characters), huge.

The base event points at a digest the registry does not hold, so even a mutation that leaves the
event valid must end as `ignored` (404) after one GET: any PUT, PATCH or DELETE is a bug.

Properties, through `retag.on_push.handle_event` with a real `AcrRegistry` (no faults):
returns (never raises) `ignored` or `rejected`, logs exactly one outcome line matching it, and
the emulator's request log shows no write. Under faults (503s and resets, a registry with short
retries) the only exception allowed is `TransientRegistryError`, logged as `failed ... retry=true`.
Through the Functions host (`FunctionsHost.deliver_event_grid`, the worker's decoder): an event
the worker can decode gets 200 and exactly one outcome line; one it cannot decode (e.g. an
`eventTime` that is not a date) fails in the worker before our code runs (500, no line, nothing
sent to the registry); a body that is not an array of objects gets 400.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.on_push import handle_event
from retag.registry import TransientRegistryError
from retag.settings import Settings, load_settings
from tests.support.function_app import LoadedApp, emulator_settings, loaded_function_app
from tests.support.images import oci_image, push_image

REPO = "fuzz/app"
ABSENT_DIGEST = "sha256:" + hashlib.sha256(b"never pushed").hexdigest()
WRITE_METHODS = {"PUT", "PATCH", "DELETE", "POST"}
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------------------------
# Strategies

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
"""Every code point, lone surrogates and control characters included (JSON can carry them)."""
tricky_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "latest\n",
        "latest\x00",
        "LATEST",
        "latest ",
        "\u202elatest",
        "lat\u200best",
        "\ud800",
        "latest\udfff",
        "\u2113atest",
        "../../etc/passwd",
        "sha256:" + "g" * 64,
        "sha256:" + "A" * 64,
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "access_token=secret-value",
        "2026-11-29T23:07:00Z",
        "2026-13-45T99:99:99Z",
        "9999-12-31T23:59:59.9999999+23:59",
        "0001-01-01T00:00:00-23:59",
        "1e309",
        "NaN",
    ]
)
huge_text = st.builds(
    lambda piece, count: piece * count,
    st.sampled_from(["a", "latest", "é", "\u202e", "eyJ", "token ", "/", "%2F", "\x7f"]),
    st.integers(min_value=4000, max_value=70_000),
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
    | tricky_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=8,
)
small_json = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=2) | st.dictionaries(any_text, children, max_size=2)
    ),
    max_leaves=3,
)


def _shaped(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the schema's keys, each mostly a plausible value, sometimes arbitrary JSON,
    sometimes missing, plus now and then an unknown key: random enough to break things, shaped
    enough to get deep into the parser."""
    missing = object()

    def field(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.integers(0, 9).flatmap(
            lambda n: value if n < 7 else small_json if n < 9 else st.just(missing)
        )

    shaped = st.fixed_dictionaries(
        {key: field(value) for key, value in fields.items()},
        optional={"": small_json, "x-extra": small_json},
    ).map(lambda obj: {k: v for k, v in obj.items() if v is not missing})
    return shaped | st.dictionaries(any_text, small_json, max_size=2)


PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
STAMP = "2026-11-29T23:07:00.1234567Z"
schema_shaped = _shaped(
    {
        "id": st.just("evt-1"),
        "topic": st.just("/subscriptions/x/registries/fuzz"),
        "subject": st.just("fuzz/app:latest"),
        "eventType": st.sampled_from([PUSHED, "Microsoft.ContainerRegistry.ImageDeleted"]),
        "eventTime": st.just(STAMP),
        "dataVersion": st.just("1.0"),
        "specversion": st.sampled_from(["1.0", "0.3"]),
        "source": st.just("/subscriptions/x/registries/fuzz"),
        "type": st.just(PUSHED),
        "time": st.just(STAMP),
        "data": _shaped(
            {
                "id": st.just("evt-1"),
                "timestamp": st.just(STAMP),
                "action": st.just("push"),
                "target": _shaped(
                    {
                        "mediaType": st.just("application/vnd.oci.image.manifest.v1+json"),
                        "size": st.integers(min_value=0, max_value=10**6),
                        "digest": st.just(ABSENT_DIGEST),
                        "repository": st.sampled_from([REPO, "other/app"]),
                        "tag": st.sampled_from(["latest", "v1", "latest_20261129230700_aaaa"]),
                    }
                ),
                "request": _shaped(
                    {
                        "host": st.sampled_from(["127.0.0.1", "myregistry.azurecr.io"]),
                        "method": st.just("PUT"),
                    }
                ),
            }
        ),
    }
)
"""Event-like objects with the schemas' own keys (`data.request.host` never matches the
emulator's port, so the deepest a valid one gets is the registry-host check)."""

replacement_values = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | any_text
    | tricky_text
    | huge_text
    | st.lists(json_values, max_size=3)
    | st.dictionaries(any_text, json_values, max_size=3)
)
DELETE = object()


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def mutated(base: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(base)
    node = event
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return event


@st.composite
def near_valid(draw: st.DrawFn, bases: list[dict[str, Any]]) -> dict[str, Any]:
    """One base event (Event Grid schema or CloudEvents) with exactly one field mutated."""
    base = draw(st.sampled_from(bases))
    path = draw(st.sampled_from(sorted(_paths(base))))
    original = _lookup(base, path)
    value = draw(
        st.just(DELETE)
        | replacement_values
        | (
            st.sampled_from(["upper", "suffix", "prefix", "nul", "space"]).map(
                lambda how: _variant(original, how)
            )
            if isinstance(original, str)
            else replacement_values
        )
    )
    return mutated(base, path, value)


def _lookup(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def _variant(text: str, how: str) -> str:
    return {
        "upper": text.upper(),
        "suffix": text + "x",
        "prefix": "x" + text,
        "nul": text + "\x00",
        "space": f" {text} ",
    }[how]


# --------------------------------------------------------------------------------------------
# Fixtures: one emulator, one registry and one function_app per module


class OutcomeLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("acr-retag "):
            with self._guard:
                self.lines.append((record.levelno, message))

    def since(self, count: int) -> list[str]:
        with self._guard:
            return [line for _, line in self.lines[count:]]


class Fuzz:
    def __init__(self, acr: Emulator, app: LoadedApp, lines: OutcomeLines) -> None:
        self.acr = acr
        self.app = app
        self.lines = lines
        self.settings: Settings = load_settings(emulator_settings(acr))
        self.registry = AcrRegistry(
            acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle
        )
        self.fragile_registry = AcrRegistry(
            acr.login_server,
            credential="anonymous",
            ca_bundle=acr.ca_bundle,
            retry_total=1,
            retry_backoff_factor=0.001,
            deadline_seconds=5,
        )
        image = oci_image()
        before = len(acr.events())
        push_image(acr.endpoint, REPO, image, tag="latest", verify=acr.ca_bundle)
        real = acr.events()[before:][-1]
        real["data"]["target"]["digest"] = ABSENT_DIGEST  # valid, but not in the registry
        real["data"]["target"]["length"] = real["data"]["target"]["size"] = 1234
        cloud = {
            "specversion": "1.0",
            "id": real["id"],
            "source": real["topic"],
            "subject": real["subject"],
            "type": real["eventType"],
            "time": real["eventTime"],
            "data": copy.deepcopy(real["data"]),
        }
        self.bases = [real, cloud]
        self.log_position = len(acr.requests())  # the setup push is not under test

    def new_writes(self) -> list[dict[str, Any]]:
        log = self.acr.requests()
        new, self.log_position = log[self.log_position :], len(log)
        return [
            e for e in new if e["method"] in WRITE_METHODS and not e["path"].startswith("/oauth2/")
        ]


@pytest.fixture(scope="module")
def fuzz() -> Iterator[Fuzz]:
    lines = OutcomeLines()
    logger = logging.getLogger("acr-retag")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    try:
        with Emulator() as acr, loaded_function_app(acr) as app:
            state = Fuzz(acr, app, lines)
            yield state
            state.registry.close()
            state.fragile_registry.close()
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def bases(fuzz: Fuzz) -> list[dict[str, Any]]:
    return fuzz.bases


# --------------------------------------------------------------------------------------------
# Properties


def check_direct(fuzz: Fuzz, envelope: Any) -> None:
    """handle_event with the real adapter, no faults: never raises, one line, no write."""
    count = len(fuzz.lines.lines)
    outcome = handle_event(envelope, fuzz.settings, lambda: fuzz.registry)
    lines = fuzz.lines.since(count)
    assert len(lines) == 1, lines
    assert lines[0] == outcome.log_line()
    assert outcome.status in ("ignored", "rejected"), lines[0]
    assert "\n" not in lines[0]
    assert "\r" not in lines[0]
    # Statistics label: the reason quotes untrusted event text (lone surrogates included), which
    # hypothesis's pytest plugin cannot encode; keep the label to ASCII.
    label = " ".join(outcome.reason.split()[:3]).encode("ascii", "backslashreplace").decode()
    event(f"{outcome.status}: {label}")
    assert fuzz.new_writes() == []


def check_under_faults(fuzz: Fuzz, envelope: Any) -> None:
    count = len(fuzz.lines.lines)
    try:
        outcome = handle_event(envelope, fuzz.settings, lambda: fuzz.fragile_registry)
    except TransientRegistryError:
        (line,) = fuzz.lines.since(count)
        assert "outcome=failed" in line, line
        assert "retry=true" in line, line
    else:
        (line,) = fuzz.lines.since(count)
        assert line == outcome.log_line()
        assert outcome.status in ("ignored", "rejected"), line
    assert fuzz.new_writes() == []


def worker_can_decode(event: dict[str, Any]) -> bool:
    """Whether the Functions worker's own decoder accepts the event (the oracle)."""
    try:
        EventGridEventInConverter.decode(
            meta.Datum(type="json", value=json.dumps(event)), trigger_metadata={}
        )
    except Exception:
        return False
    return True


def check_host(fuzz: Fuzz, document: Any) -> None:
    count = len(fuzz.lines.lines)
    result = fuzz.app.deliver(json.dumps(document).encode())
    lines = fuzz.lines.since(count)
    events = document if isinstance(document, list) else [document]
    if not all(isinstance(event, dict) for event in events):
        assert result.status == 400
        assert lines == []
    else:
        decodable = [worker_can_decode(event) for event in events]
        assert len(result.invocations) == len(events)
        assert [i.ok for i in result.invocations] == decodable, (result, lines)
        assert result.status == (200 if all(decodable) else 500)
        assert len(lines) == sum(decodable), lines
        assert all(("outcome=ignored" in x or "outcome=rejected" in x) for x in lines), lines
    assert fuzz.new_writes() == []


@FUZZ
@given(envelope=json_values)
def test_arbitrary_json_direct(fuzz: Fuzz, envelope: Any) -> None:
    check_direct(fuzz, envelope)


@FUZZ
@given(envelope=schema_shaped)
def test_schema_shaped_objects_direct(fuzz: Fuzz, envelope: dict[str, Any]) -> None:
    check_direct(fuzz, envelope)


@FUZZ
@given(data=st.data())
def test_near_valid_events_direct(fuzz: Fuzz, bases: list[dict[str, Any]], data: Any) -> None:
    check_direct(fuzz, data.draw(near_valid(bases)))


@FUZZ
@given(document=json_values | schema_shaped | st.lists(schema_shaped, min_size=1, max_size=3))
def test_arbitrary_json_through_the_host(fuzz: Fuzz, document: Any) -> None:
    check_host(fuzz, document)


@FUZZ
@given(data=st.data())
def test_near_valid_events_through_the_host(
    fuzz: Fuzz, bases: list[dict[str, Any]], data: Any
) -> None:
    check_host(fuzz, [data.draw(near_valid(bases))])


@FUZZ
@given(data=st.data())
def test_near_valid_events_under_faults(fuzz: Fuzz, bases: list[dict[str, Any]], data: Any) -> None:
    fuzz.acr.set_faults(error_rate=0.5, error_status=503, reset_rate=0.1, include_auth=True)
    try:
        check_under_faults(fuzz, data.draw(near_valid(bases)))
    finally:
        fuzz.acr.clear_faults()


def test_the_base_events_are_valid_and_reach_the_registry(fuzz: Fuzz) -> None:
    """The fuzzing is only meaningful if the unmutated events get as far as the reads (the tags
    on the digest and the manifest, read at once)."""
    start = len(fuzz.acr.requests())
    for base in fuzz.bases:
        count = len(fuzz.lines.lines)
        outcome = handle_event(base, fuzz.settings, lambda: fuzz.registry)
        assert outcome.status == "ignored"
        assert "manifest deleted before re-tag" in outcome.reason
        assert outcome.requests >= 1
        assert len(fuzz.lines.since(count)) == 1
    sent = [(e["method"], e["path"], e["status"]) for e in fuzz.acr.requests()[start:]]
    assert sent
    allowed = {("GET", f"/v2/{REPO}/manifests/{ABSENT_DIGEST}", s) for s in (401, 404)}
    allowed |= {("GET", f"/acr/v1/{REPO}/_tags", s) for s in (200, 401, 404)}
    allowed |= {("POST", "/oauth2/token", 200)}
    assert set(sent) <= allowed
    assert fuzz.new_writes() == []
