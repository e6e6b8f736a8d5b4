"""Admin API (/_emulator/), fault injection, throttling, the clock and Event Grid delivery."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from emulator import Emulator
from tests.emulator.conftest import ClientFactory
from tests.emulator.helpers import admin, anonymous_token, push, raw, unique_repo
from tests.support import images


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    """A private emulator: fault and clock settings never leak into other tests."""
    with Emulator() as emulator:
        yield emulator


# -- request log ----------------------------------------------------------------------------------
def test_request_log_over_http(fresh: Emulator) -> None:
    repo = unique_repo("log")
    push(fresh, repo, images.oci_image(seed=1), "v1")
    log = admin(fresh, "GET", "requests").json()
    assert log == fresh.requests()
    assert {"method", "path", "query", "status", "ms"} <= set(log[0])
    put = [r for r in log if r["method"] == "PUT" and "/manifests/" in r["path"]]
    assert put[-1]["status"] == 201
    assert put[-1]["tag"] == "v1"
    assert all(not r["path"].startswith("/_emulator") for r in log)
    assert admin(fresh, "DELETE", "requests").status_code == 204
    assert fresh.requests() == []


# -- clock ----------------------------------------------------------------------------------------
def test_clock_drives_every_timestamp(fresh: Emulator, make_client: ClientFactory) -> None:
    client = make_client(None, emulator=fresh)
    repo = unique_repo("clock")
    image = images.oci_image(seed=2)
    fresh.set_clock(datetime(2030, 1, 1, tzinfo=UTC))
    push(fresh, repo, image, "old")
    fresh.advance_clock(86400 * 8)
    client.set_manifest(repo, io.BytesIO(image.raw), tag="new", media_type=image.media_type)
    old = client.get_tag_properties(repo, "old")
    new = client.get_tag_properties(repo, "new")
    assert old.created_on.date() == datetime(2030, 1, 1).date()
    assert new.created_on - old.created_on >= timedelta(days=8)
    assert new.created_on - old.created_on < timedelta(days=8, minutes=5)
    events = fresh.events()
    assert events[-1]["eventTime"].startswith("2030-01-09")
    # data.timestamp (9 digits) is the push; eventTime (7 digits) is a little later, like ACR
    stamp, published = events[-1]["data"]["timestamp"], events[-1]["eventTime"]
    assert len(stamp.split(".")[1]) == 10
    assert len(published.split(".")[1]) == 8
    assert stamp[:26] < published[:26]

    now = admin(fresh, "GET", "clock").json()["now"]
    assert now.startswith("2030-01-09")
    moved = admin(fresh, "PUT", "clock", {"now": "2031-06-01T12:00:00Z"}).json()["now"]
    assert moved.startswith("2031-06-01T12:00")
    advanced = admin(fresh, "PUT", "clock", {"advance": 3600}).json()["now"]
    assert advanced.startswith("2031-06-01T13:00")
    for bad in ({"now": "yesterday"}, {"now": "2031-01-01T00:00:00"}, {"advance": "x"}, {}):
        answer = admin(fresh, "PUT", "clock", bad)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["code"] == "INVALID_REQUEST"


# -- faults ---------------------------------------------------------------------------------------
def test_error_injection_spares_auth_unless_asked(
    fresh: Emulator, make_client: ClientFactory
) -> None:
    repo = unique_repo("faults")
    push(fresh, repo, images.oci_image(seed=3), "v1")
    token = anonymous_token(fresh, f"repository:{repo}:pull")
    fresh.set_faults(error_rate=1.0, error_status=503)
    failed = raw(fresh, "GET", f"/v2/{repo}/manifests/v1", token=token)
    assert failed.status_code == 503
    assert failed.json()["errors"][0]["code"] == "UNKNOWN"
    assert anonymous_token(fresh, f"repository:{repo}:pull")  # auth is spared by default
    client = make_client(None, emulator=fresh, retry_total=0)
    with pytest.raises(HttpResponseError) as refused:
        client.get_tag_properties(repo, "v1")
    assert refused.value.status_code == 503
    fresh.set_faults(error_rate=1.0, error_status=500, include_auth=True)
    assert (
        requests.post(
            fresh.endpoint + "/oauth2/token",
            data={
                "grant_type": "password",
                "service": fresh.login_server,
                "scope": "repository:a:pull",
            },
            verify=fresh.ca_bundle,
            timeout=10,
        ).status_code
        == 500
    )
    assert [r.get("fault") for r in fresh.requests()[-2:]] == ["error", "error"]
    fresh.clear_faults()
    assert client.get_tag_properties(repo, "v1").name == "v1"


def test_sdk_retries_through_transient_errors(fresh: Emulator, make_client: ClientFactory) -> None:
    repo = unique_repo("retry")
    push(fresh, repo, images.oci_image(seed=4), "v1")
    fresh.set_faults(error_rate=0.25, error_status=503, seed=7)
    client = make_client(None, emulator=fresh, retry_backoff_factor=0.01)
    for _ in range(5):
        assert client.get_tag_properties(repo, "v1").name == "v1"
    statuses = [r["status"] for r in fresh.requests() if r.get("fault") == "error"]
    assert statuses
    assert set(statuses) == {503}


def test_seeded_faults_are_reproducible(fresh: Emulator) -> None:
    def run() -> list[int]:
        fresh.set_faults(error_rate=0.5, seed=42)
        return [raw(fresh, "GET", "/v2/").status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert set(first) == {401, 503}


def test_latency_and_resets(fresh: Emulator) -> None:
    fresh.set_faults(latency_ms=150)
    started = time.perf_counter()
    assert raw(fresh, "GET", "/v2/").status_code == 401
    assert time.perf_counter() - started >= 0.15
    assert fresh.requests()[-1]["ms"] >= 150
    fresh.set_faults(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        raw(fresh, "GET", "/v2/")
    assert fresh.requests()[-1]["fault"] == "reset"
    fresh.clear_faults()
    assert raw(fresh, "GET", "/v2/").status_code == 401  # still serving


def test_throttling_answers_429_with_counting_down_retry_after(fresh: Emulator) -> None:
    fresh.set_faults(rate_limit_per_second=0.25)
    assert raw(fresh, "GET", "/v2/").status_code == 401  # the one token in the bucket
    throttled = raw(fresh, "GET", "/v2/")
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    first_wait = int(throttled.headers["Retry-After"])
    assert 3 <= first_wait <= 4
    time.sleep(1.1)
    later = raw(fresh, "GET", "/v2/")
    assert later.status_code == 429
    assert int(later.headers["Retry-After"]) < first_wait


def test_random_throttling_next_to_errors(fresh: Emulator) -> None:
    fresh.set_faults(throttle_rate=0.3, throttle_retry_after=2, error_rate=0.3, seed=7)
    answers = [raw(fresh, "GET", "/v2/") for _ in range(60)]
    throttled = [a for a in answers if a.status_code == 429]
    assert {a.status_code for a in answers} == {401, 429, 503}
    assert {a.headers["Retry-After"] for a in throttled} == {"2"}
    assert {a.json()["errors"][0]["code"] for a in throttled} == {"TOOMANYREQUESTS"}
    assert sum(1 for r in fresh.requests() if r.get("fault") == "throttled") == len(throttled)
    with pytest.raises(ValueError, match="throttle_rate"):
        fresh.set_faults(throttle_rate=1.5)


def test_sdk_honours_retry_after(fresh: Emulator, make_client: ClientFactory) -> None:
    repo = unique_repo("throttle")
    push(fresh, repo, images.oci_image(seed=5), "v1")
    client = make_client(None, emulator=fresh)
    fresh.set_faults(rate_limit_per_second=2)
    names = [client.get_tag_properties(repo, "v1").name for _ in range(3)]
    assert names == ["v1"] * 3
    assert any(r["status"] == 429 for r in fresh.requests())


def test_fault_settings_over_http(fresh: Emulator) -> None:
    body = {
        "latency_ms": 1,
        "error_rate": 0.1,
        "error_status": 502,
        "reset_rate": 0.0,
        "rate_limit_per_second": 100,
        "throttle_rate": 0.05,
        "throttle_retry_after": 1,
        "seed": 3,
        "include_auth": True,
    }
    assert admin(fresh, "PUT", "faults", body).json() == body
    assert admin(fresh, "GET", "faults").json() == body
    for bad in (
        {"error_rate": 2},
        {"bogus": 1},
        {"error_status": 200},
        {"include_auth": "yes"},
        {"rate_limit_per_second": 0},
        {"throttle_rate": -0.1},
        {"throttle_retry_after": 1.5},
        [1],
    ):
        answer = admin(fresh, "PUT", "faults", bad)
        assert answer.status_code == 400
    assert admin(fresh, "DELETE", "faults").status_code == 204
    assert admin(fresh, "GET", "faults").json()["error_rate"] == 0.0
    assert admin(fresh, "GET", "nothing").status_code == 404


# -- Event Grid -----------------------------------------------------------------------------------
class Subscriber:
    """A local webhook recording what Event Grid (the emulator) POSTs; fails the first N."""

    def __init__(self, fail_first: int = 0, fail_status: int = 500) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        self.fail_first = fail_first
        self.fail_status = fail_status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                outer.received.append((dict(self.headers), body))
                status = outer.fail_status if len(outer.received) <= outer.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/runtime/webhooks/EventGrid?functionName=f"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    hook = Subscriber()
    yield hook
    hook.close()


def test_image_pushed_and_deleted_events(fresh: Emulator, subscriber: Subscriber) -> None:
    assert fresh.set_subscribers([subscriber.url]) == [subscriber.url]
    repo = unique_repo("events")
    index = images.oci_index(seed=6)
    push(fresh, repo, index, "latest")
    assert fresh.wait_for_deliveries(10)
    received = [body for _, body in subscriber.received]
    assert all(isinstance(body, list) and len(body) == 1 for body in received)
    events = [body[0] for body in received]
    assert [e["eventType"] for e in events] == ["Microsoft.ContainerRegistry.ImagePushed"] * 3
    children, top = events[:2], events[2]
    assert {e["data"]["target"]["digest"] for e in children} == {c.digest for c in index.children}
    assert all("tag" not in e["data"]["target"] for e in children)
    assert top["data"]["target"] == {
        "mediaType": images.OCI_INDEX,
        "size": index.size,
        "digest": index.digest,
        "length": index.size,
        "repository": repo,
        "tag": "latest",
    }
    assert set(top) == {
        "id",
        "topic",
        "subject",
        "eventType",
        "eventTime",
        "data",
        "dataVersion",
        "metadataVersion",
    }
    assert set(top["data"]) == {"id", "timestamp", "action", "location", "target", "request"}
    assert top["data"]["action"] == "push"
    assert top["subject"] == f"{repo}:latest"
    assert top["data"]["request"]["host"] == fresh.login_server
    assert top["data"]["request"]["method"] == "PUT"
    assert set(top["data"]["request"]) == {"id", "host", "method", "useragent"}
    headers = {k.lower(): v for k, v in subscriber.received[-1][0].items()}
    assert headers["aeg-event-type"] == "Notification"
    assert headers["content-type"].startswith("application/json")
    assert fresh.events() == events
    assert admin(fresh, "GET", "events").json() == events

    deleted = raw(
        fresh, "DELETE", f"/v2/{repo}/manifests/{index.digest}", scope=f"repository:{repo}:delete"
    )
    assert deleted.status_code == 202
    assert fresh.wait_for_deliveries(10)
    last = subscriber.received[-1][1][0]
    assert last["eventType"] == "Microsoft.ContainerRegistry.ImageDeleted"
    assert last["data"]["action"] == "delete"
    assert last["data"]["target"] == {
        "mediaType": images.OCI_INDEX,
        "digest": index.digest,
        "repository": repo,
    }


def test_delivery_is_retried_until_accepted() -> None:
    hook = Subscriber(fail_first=2)
    try:
        with Emulator(subscribers=[hook.url]) as acr:
            push(acr, unique_repo("retry"), images.oci_image(seed=8), "v1")
            assert acr.wait_for_deliveries(15)
            ids = [body[0]["id"] for _, body in hook.received]
            assert len(ids) == 3
            assert len(set(ids)) == 1  # at-least-once: the same event, redelivered
            delivery = acr.deliveries()[0]
            assert delivery["attempts"] == 3
            assert delivery["delivered"] is True
            counts = [h.get("aeg-delivery-count") for h, _ in hook.received]
            assert counts == ["0", "1", "2"]
    finally:
        hook.close()


def test_bad_request_answers_are_not_retried() -> None:
    hook = Subscriber(fail_first=5, fail_status=400)
    try:
        with Emulator(subscribers=[hook.url]) as acr:
            push(acr, unique_repo("norety"), images.oci_image(seed=9), "v1")
            assert acr.wait_for_deliveries(10)
            assert len(hook.received) == 1
            assert acr.deliveries()[0]["gave_up"] is True
    finally:
        hook.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://127.0.0.1:8080/hook",
        "http://10.0.0.1:80/",
        "ftp://127.0.0.1/",
        "http://127.0.0.1/no-port",
        "not a url",
    ],
)
def test_subscribers_must_be_loopback_http(fresh: Emulator, url: str) -> None:
    answer = admin(fresh, "PUT", "subscribers", {"subscribers": [url]})
    assert answer.status_code == 400
    with pytest.raises(ValueError, match="subscriber"):
        fresh.set_subscribers([url])
    with pytest.raises(ValueError, match="subscriber"):
        Emulator(subscribers=[url])
    assert admin(fresh, "GET", "subscribers").json() == {"subscribers": []}


def test_subscribers_over_http(fresh: Emulator, subscriber: Subscriber) -> None:
    answer = admin(fresh, "PUT", "subscribers", [subscriber.url])
    assert answer.json() == {"subscribers": [subscriber.url]}
    assert fresh.subscribers() == [subscriber.url]
    push(fresh, unique_repo("hook"), images.oci_image(seed=10), "v1")
    assert fresh.wait_for_deliveries(10)
    assert len(subscriber.received) == 1
    assert admin(fresh, "DELETE", "events").status_code == 204
    assert fresh.events() == []
