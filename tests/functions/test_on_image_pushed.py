"""`on_image_pushed` through the host's decode path, against the emulator over TLS (no mocks).

Events are the ones the emulator emitted for real pushes (ACR's shape), delivered as Event Grid
delivers them: a JSON array POSTed to the webhook, split and decoded per event by the worker's
`EventGridEventInConverter`.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator.functions_host import FunctionsHostServer
from tests.functions.conftest import App
from tests.support.images import (
    Image,
    docker_image,
    docker_manifest_list,
    oci_image,
    oci_index,
    push_image,
)

ROOT = Path(__file__).resolve().parents[2]
REPO = "team/app"


def generated(app: App, repository: str, digest: str) -> set[str]:
    return {t for t in app.tags_on(repository, digest) if t != "latest"}


def stamp_ms(timestamp: str) -> str:
    """`YYYYMMDDHHMMSSmmm` of an event's `data.timestamp` (the default `{timestamp:ms}`)."""
    seconds, _, fraction = timestamp.rstrip("Z").partition(".")
    return "".join(c for c in seconds if c.isdigit()) + (fraction + "000")[:3]


@pytest.mark.parametrize(
    "make_image",
    [docker_image, docker_manifest_list, oci_image, oci_index],
    ids=["docker-v2", "docker-list", "oci-manifest", "oci-index"],
)
def test_every_manifest_kind_keeps_its_digest(app: App, make_image: Callable[[], Image]) -> None:
    image = make_image()
    event = app.push(REPO, image)

    result = app.deliver(event)

    assert result.status == 200, result.invocations
    (new_tag,) = generated(app, REPO, image.digest)
    stamp = stamp_ms(event["data"]["timestamp"])
    assert new_tag == f"latest_{stamp}_{image.digest.removeprefix('sha256:')[:12]}"
    manifest = app.registry().get_manifest(REPO, new_tag)
    assert manifest.raw == image.raw
    assert manifest.digest == image.digest
    assert manifest.media_type == image.media_type


def test_multi_arch_push_tags_the_index_never_the_children(app: App) -> None:
    index = oci_index()
    app.push(REPO, index)
    events = [e for e in app.acr.events() if e["eventType"].endswith("ImagePushed")]
    assert len(events) == 3, "two platform manifests by digest, then the tagged index"

    result = app.deliver(*events)

    assert result.status == 200
    assert len(result.invocations) == 3
    for child in index.children:
        assert app.tags_on(REPO, child.digest) == set()
    assert len(generated(app, REPO, index.digest)) == 1


def test_steady_state_costs_three_requests_per_new_tag_and_one_per_redelivery(app: App) -> None:
    """A new tag: the tags on the digest and the manifest, read at once, then the PUT. A
    redelivery of a push this instance tagged: the tags on the digest only (issue 12's targets:
    <= 3 and 1)."""
    app.deliver(app.push(REPO, oci_image()))  # warm-up: the repository's token is fetched here
    images = [oci_image() for _ in range(10)]
    events = []
    log = []
    for image in images:  # each push's event delivered before the next push, as Event Grid does
        app.acr.advance_clock(1)
        events.append(app.push(REPO, image))
        app.acr.clear_requests()
        assert app.deliver(events[-1]).status == 200
        log.extend(app.acr.requests())

    assert len(log) == 30
    for i in range(10):
        three = log[3 * i : 3 * i + 3]
        assert sorted((r["method"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in three) == [
            ("GET", "_tags", 200),
            ("GET", images[i].digest, 200),
            ("PUT", three[2]["path"].rsplit("/", 1)[-1], 201),
        ]
        assert three[2]["method"] == "PUT"
    for image in images:
        assert len(generated(app, REPO, image.digest)) == 1

    app.acr.clear_requests()
    assert app.deliver(events[-1]).status == 200  # a redelivery of the push latest is on
    for event in events[:-1]:  # redeliveries of pushes latest has moved on from: superseded
        assert app.deliver(event).status == 200
    assert [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in app.acr.requests()] == [
        ("GET", "_tags")
    ] * 10
    for image in images:
        assert len(generated(app, REPO, image.digest)) == 1  # nothing new anywhere


def test_redelivery_is_idempotent_and_a_new_push_gets_a_new_tag(app: App) -> None:
    image = docker_image()
    event = app.push(REPO, image)
    assert app.deliver(event).status == 200
    first = generated(app, REPO, image.digest)
    manifests_before = len(list(app.registry().list_manifests(REPO)))

    assert app.deliver(event, copy.deepcopy(event)).status == 200

    assert generated(app, REPO, image.digest) == first
    assert len(list(app.registry().list_manifests(REPO))) == manifests_before

    # The same digest pushed again, nothing in between: it already carries the newest generated
    # tag, which Flux selects; a second tag would only roll the pods (issue 12).
    app.acr.advance_clock(60)
    assert app.deliver(app.push(REPO, image)).status == 200
    assert generated(app, REPO, image.digest) == first

    # Another digest, then the first one again (a rollback): each gets a new, newest tag.
    other = docker_image()
    app.acr.advance_clock(60)
    assert app.deliver(app.push(REPO, other)).status == 200
    app.acr.advance_clock(60)
    assert app.deliver(app.push(REPO, image)).status == 200
    assert len(generated(app, REPO, other.digest)) == 1
    assert len(generated(app, REPO, image.digest)) == 2


def test_cloudevents_schema(app: App) -> None:
    image = oci_image()
    event = app.push(REPO, image)
    cloud = {
        "specversion": "1.0",
        "id": event["id"],
        "source": event["topic"],
        "subject": event["subject"],
        "type": event["eventType"],
        "time": event["eventTime"],
        "data": event["data"],
    }
    assert app.deliver(cloud).status == 200
    assert len(generated(app, REPO, image.digest)) == 1


def _hostile_events(event: dict[str, Any]) -> list[tuple[str, Any]]:
    """Near-valid events with one thing wrong, and what each must be classified as."""

    def changed(path: str, value: Any) -> dict[str, Any]:
        copy_ = copy.deepcopy(event)
        *parents, last = path.split(".")
        node = copy_
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
        return copy_

    return [
        ("ignored", changed("data.target.tag", "v1")),
        ("ignored", changed("data.target.tag", "latest_20261129230700_3f2a9c1b7d4e")),
        ("ignored", changed("data.target.tag", KeyError)),
        ("ignored", changed("eventType", "Microsoft.ContainerRegistry.ImageDeleted")),
        ("ignored", changed("eventType", "Microsoft.ContainerRegistry.ChartPushed")),
        ("ignored", changed("data.target.repository", "other/app")),
        ("rejected", changed("data.request.host", "evil.azurecr.io")),
        ("rejected", changed("data.request.host", KeyError)),
        ("rejected", changed("data.request", "not-an-object")),
        ("rejected", changed("data.target.digest", "sha256:1234")),
        ("rejected", changed("data.target.digest", "md5:" + "a" * 32)),
        ("rejected", changed("data.target.digest", "sha256:" + "A" * 64)),
        ("rejected", changed("data.target.digest", KeyError)),
        ("rejected", changed("data.target.digest", 42)),
        ("rejected", changed("data.target.repository", "../etc/passwd")),
        ("rejected", changed("data.target.repository", "Team/App")),
        ("rejected", changed("data.target.repository", "/team/app")),
        ("rejected", changed("data.target.repository", "team//app")),
        ("rejected", changed("data.target.repository", "a" * 300)),
        ("rejected", changed("data.target.repository", None)),
        ("rejected", changed("data.target.tag", "latest;rm -rf /")),
        ("rejected", changed("data.target.tag", "x" * 200)),
        ("rejected", changed("data.target.tag", "")),
        ("rejected", changed("data.target.tag", ["latest"])),
        ("rejected", changed("data.target", None)),
        ("rejected", changed("data", "a string")),
        ("rejected", changed("data", KeyError)),
        ("rejected", changed("data.timestamp", "yesterday")),
        ("rejected", changed("id", 12345)),
    ]


def test_ignored_and_rejected_events_write_nothing(
    make_app: Callable[..., App], outcome_lines: Callable[[], list[str]]
) -> None:
    app = make_app(RETAG_EXCLUDE_REPOSITORIES="other/.*")
    image = oci_image()
    template_event = app.push(REPO, image)
    hostile = _hostile_events(template_event)
    assert len(hostile) >= 25
    app.acr.clear_requests()

    for expected, event in hostile:
        before = len(outcome_lines())
        result = app.deliver(event)
        assert result.status == 200, (expected, event)
        new_lines = outcome_lines()[before:]
        assert len(new_lines) == 1, (expected, new_lines)
        assert f"outcome={expected}" in new_lines[0], new_lines[0]
        assert 'reason="' in new_lines[0]

    assert app.acr.requests() == [], "ignored and rejected events must not touch the registry"
    assert generated(app, REPO, image.digest) == set()


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'["a string"]', b"[null]"],
    ids=["not-json", "numbers", "string", "null"],
)
def test_unparsable_deliveries_are_refused_without_a_write(app: App, body: bytes) -> None:
    result = app.host.deliver_event_grid("on_image_pushed", body, "Notification")
    assert result.status == 400
    assert app.writes() == []


def test_transient_503_fails_the_invocation_then_redelivery_succeeds(
    app: App, outcome_lines: Callable[[], list[str]]
) -> None:
    image = oci_image()
    event = app.push(REPO, image)
    app.acr.clear_requests()
    app.acr.set_faults(error_rate=1.0, error_status=503)

    failed = app.deliver(event)

    assert failed.status == 500, "Event Grid must be told to redeliver"
    assert "retry=true" in outcome_lines()[-1]
    assert not [r for r in app.acr.requests() if r["method"] == "PUT" and r["status"] == 201]
    app.acr.clear_faults()
    assert generated(app, REPO, image.digest) == set()

    assert app.deliver(event).status == 200
    assert len(generated(app, REPO, image.digest)) == 1


def test_throttling_429_is_retried_within_the_invocation(app: App) -> None:
    image = oci_image()
    event = app.push(REPO, image)
    app.deliver(event)  # warm the token cache
    app.acr.advance_clock(1)
    app.acr.clear_requests()
    results = []
    for _ in range(3):  # three new digests, each event delivered after its push: three writes
        pushed = app.push(REPO, oci_image())
        app.acr.set_faults(rate_limit_per_second=2)
        results.append(app.deliver(pushed))
        app.acr.clear_faults()

    assert all(r.status == 200 for r in results)
    statuses = [r["status"] for r in app.acr.requests()]
    assert 429 in statuses, "the rate limit should have throttled at least one request"
    written = [
        r for r in app.acr.requests() if r["status"] == 201 and "/manifests/latest_" in r["path"]
    ]
    assert len(written) == 3


def test_hung_registry_fails_within_the_event_grid_budget(app: App) -> None:
    image = oci_image()
    event = app.push(REPO, image)
    app.acr.set_faults(latency_ms=60_000)  # the emulator's maximum; beyond our budget

    started = time.monotonic()
    result = app.deliver(event)
    elapsed = time.monotonic() - started

    assert result.status == 500
    assert elapsed < 25, f"invocation took {elapsed:.1f} s; Event Grid gives up after 30 s"


def test_manifest_deleted_before_retag_is_a_warning_not_a_failure(
    app: App, outcome_lines: Callable[[], list[str]]
) -> None:
    image = oci_image()
    event = app.push(REPO, image)
    app.registry().delete_manifest(REPO, image.digest)
    app.acr.clear_requests()

    assert app.deliver(event).status == 200

    assert "outcome=ignored" in outcome_lines()[-1]
    assert not [r for r in app.acr.requests() if r["method"] == "PUT"]


def test_locked_target_is_never_overwritten(
    app: App, outcome_lines: Callable[[], list[str]]
) -> None:
    image = oci_image()
    event = app.push(REPO, image)
    app.deliver(event)
    (tag,) = generated(app, REPO, image.digest)
    _lock(app, tag)
    app.acr.clear_requests()

    assert app.deliver(event).status == 200

    # A redelivery finds its tag on the digest: nothing is written, the lock is never tested.
    assert "outcome=ignored" in outcome_lines()[-1]
    assert "already tagged" in outcome_lines()[-1]
    assert not [r for r in app.acr.requests() if r["method"] == "PUT"]
    assert app.registry().get_tag(REPO, tag).digest == image.digest


def _lock(app: App, tag: str) -> None:
    from azure.containerregistry import ContainerRegistryClient

    client = ContainerRegistryClient(
        app.acr.endpoint,
        credential=None,
        audience="https://containerregistry.azure.net",
        connection_verify=app.acr.ca_bundle,
    )
    client.update_tag_properties(REPO, tag, can_write=False, can_delete=False)


def test_existing_tag_on_another_digest_is_never_overwritten(
    make_app: Callable[..., App], outcome_lines: Callable[[], list[str]]
) -> None:
    app = make_app(RETAG_TAG_TEMPLATE="{tag}-{timestamp}")  # no digest: not unique on its own
    first, second = oci_image(), oci_image()
    first_event = app.push(REPO, first)
    app.deliver(first_event)
    (tag,) = generated(app, REPO, first.digest)
    event = app.push(REPO, second)
    event["data"]["timestamp"] = first_event["data"]["timestamp"]  # pushed in the same second

    assert app.deliver(event).status == 200

    assert "outcome=failed" in outcome_lines()[-1]
    assert app.registry().get_tag(REPO, tag).digest == first.digest
    assert generated(app, REPO, second.digest) == set()


def test_invalid_settings_fail_every_invocation_with_a_clear_line(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(RETAG_TAG_TEMPLATE="{nope}")
    event = app.push(REPO, oci_image())
    app.acr.clear_requests()

    result = app.deliver(event)

    assert result.status == 500, "events must be redelivered once the settings are fixed"
    assert any("RETAG_TAG_TEMPLATE" in r.getMessage() for r in caplog.records)
    assert app.acr.requests() == []


def test_end_to_end_event_grid_delivery_to_the_webhook(app: App) -> None:
    with FunctionsHostServer(app.host) as host:
        app.acr.set_subscribers([host.webhook_url("on_image_pushed")])
        image = docker_image()
        push_image(app.acr.endpoint, REPO, image, tag="latest", verify=app.acr.ca_bundle)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not generated(app, REPO, image.digest):
            time.sleep(0.02)
    assert len(generated(app, REPO, image.digest)) == 1


def test_importing_function_app_does_not_load_the_heavy_sdks(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    probe = (
        "import sys, function_app; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('azure.identity', "
        "'azure.containerregistry')))))"
    )
    env = {"ACR_LOGIN_SERVER": "myregistry.azurecr.io", "ACR_CA_BUNDLE": str(ca), "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", "import json; " + probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == []


def test_one_time_budget_bounds_all_calls_of_an_invocation(app: App) -> None:
    from retag.registry import TransientRegistryError, time_budget

    image = oci_image()
    app.push(REPO, image)
    registry = app.registry()
    registry.get_manifest(REPO, image.digest)  # warm: tokens cached
    app.acr.set_faults(latency_ms=60_000)

    started = time.monotonic()
    with time_budget(1.5), pytest.raises(TransientRegistryError):
        registry.get_manifest(REPO, image.digest)
    with time_budget(0.5), pytest.raises(TransientRegistryError):
        registry.get_manifest(REPO, image.digest)  # a second call in a new, shorter budget
    elapsed = time.monotonic() - started

    assert elapsed < 4, f"two budgeted calls took {elapsed:.1f} s"
