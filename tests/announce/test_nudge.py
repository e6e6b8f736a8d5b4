"""The Flux nudge (issue 14 item 2): after a NEW generated tag, a signed POST to a generic-hmac
Receiver; never for a duplicate; a dead or failing Receiver never fails the re-tag.

The Receiver is `emulator.flux_receiver.FluxReceiver`, which checks `X-Signature` the way
notification-controller does for `type: generic-hmac` (fluxcd/notification-controller,
docs/spec/v1/receivers.md, "Generic HMAC": `sha256=<hex HMAC-SHA256(body, token)>`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator import Emulator
from emulator.flux_receiver import FluxReceiver, signature_valid
from retag.announce import nudge_body, signature
from retag.audit import TagAddedEvent
from retag.on_push import handle_event
from retag.registry import time_budget
from retag.settings import Settings, load_settings
from retag.tagging import _RECENT
from tests.cli.conftest import Run
from tests.support.images import oci_image, push_image

TOKEN = "flux-receiver-token-0123456789abcdef"
REPO = "team/nudged"


@pytest.fixture(autouse=True)
def _forget() -> None:
    _RECENT.clear()


def settings_for(acr: Emulator, url: str, **extra: str) -> Settings:
    return load_settings(
        {
            "ACR_LOGIN_SERVER": acr.login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": acr.ca_bundle,
            "FLUX_RECEIVER_URL": url,
            "FLUX_RECEIVER_TOKEN": TOKEN,
            **extra,
        }
    )


def pushed_event(
    acr: Emulator, seed: int, event_id: str = "evt-nudge"
) -> tuple[str, dict[str, Any]]:
    image = oci_image(seed=seed)
    push_image(acr.endpoint, REPO, image, tag="latest", verify=acr.ca_bundle)
    event = {
        "id": event_id,
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2026-12-01T09:30:00.5Z",
        "data": {
            "timestamp": "2026-12-01T09:30:00.1234567Z",
            "action": "push",
            "target": {"repository": REPO, "tag": "latest", "digest": image.digest},
            "request": {"host": acr.login_server, "method": "PUT"},
            "actor": {"name": "ci-pipeline"},
        },
    }
    return image.digest, event


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    added = TagAddedEvent(
        "r.azurecr.io",
        "a/b",
        "latest",
        "sha256:" + "1" * 64,
        "latest_x",
        datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
    )
    body = nudge_body(added)
    assert json.loads(body) == {
        "repository": "a/b",
        "tag": "latest_x",
        "digest": "sha256:" + "1" * 64,
        "source_tag": "latest",
    }
    expected = hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    assert signature(body, TOKEN) == f"sha256={expected}"
    assert signature_valid(signature(body, TOKEN), body, TOKEN)
    assert not signature_valid(signature(body + b" ", TOKEN), body, TOKEN)
    assert not signature_valid(signature(body, TOKEN + "x"), body, TOKEN)


def test_a_new_tag_nudges_once_and_a_redelivery_does_not(
    acr: Emulator, registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with FluxReceiver(TOKEN) as receiver, caplog.at_level(logging.INFO, logger="acr-retag"):
        settings = settings_for(acr, receiver.url)
        digest, event = pushed_event(acr, seed=51)
        outcome = handle_event(event, settings, lambda: registry)
        assert outcome.status == "retagged"
        assert [n.body for n in receiver.nudges] == [
            {"repository": REPO, "tag": outcome.new_tag, "digest": digest, "source_tag": "latest"}
        ]
        assert receiver.refused == 0
        _RECENT.clear()  # the redelivery may land on another instance
        again = handle_event(event, settings, lambda: registry)
        assert again.status == "ignored"
        assert len(receiver.nudges) == 1  # never on duplicates
    lines = [r.getMessage() for r in caplog.records if r.name == "acr-retag"]
    assert "nudge=sent" in lines[0]
    assert "nudge=" not in lines[1]
    assert all(TOKEN not in text for text in caplog.text.splitlines())


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook/gone"


@pytest.mark.parametrize("failure", ["dead", "500", "hanging"])
def test_a_failing_receiver_never_fails_the_re_tag(
    acr: Emulator, registry: Any, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    status, delay = (500, 0.0) if failure == "500" else (200, 3.0)
    with FluxReceiver(TOKEN, status=status, delay=delay) as receiver:
        url = _closed_port_url() if failure == "dead" else receiver.url
        settings = settings_for(acr, url)
        digest, event = pushed_event(acr, seed=52)
        started = time.monotonic()
        with caplog.at_level(logging.INFO, logger="acr-retag"), time_budget(1.0):
            outcome = handle_event(event, settings, lambda: registry)
        elapsed = time.monotonic() - started
    assert outcome.status == "retagged"
    assert registry.get_tag(REPO, outcome.new_tag).digest == digest
    records = [r for r in caplog.records if r.name == "acr-retag"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("acr-retag nudge ok=false")
    assert "nudge=failed" in records[-1].getMessage()
    assert records[-1].levelno == logging.INFO
    assert elapsed < 2.5  # bounded by the invocation's time budget, not the Receiver
    assert TOKEN not in caplog.text


def test_cli_tag_nudges_and_reports_it(acr: Emulator, cli: Any) -> None:
    with FluxReceiver(TOKEN) as receiver:
        env = {
            "ACR_LOGIN_SERVER": acr.login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": acr.ca_bundle,
            "FLUX_RECEIVER_URL": receiver.url,
            "FLUX_RECEIVER_TOKEN": TOKEN,
        }
        push_image(acr.endpoint, "team/cli", oci_image(seed=53), tag="latest", verify=acr.ca_bundle)
        run: Run = cli(["tag", "team/cli", "--json"], env=env)
        assert run.code == 0, run.err
        result = json.loads(run.out)
        assert result["nudge"] == "sent"
        assert [n.body["tag"] for n in receiver.nudges] == [result["tag"]]
        again: Run = cli(["tag", "team/cli", "--json"], env=env)
        assert json.loads(again.out)["written"] is False
        assert "nudge" not in json.loads(again.out)
        assert len(receiver.nudges) == 1
    dead = {**env, "FLUX_RECEIVER_URL": _closed_port_url()}
    push_image(acr.endpoint, "team/cli", oci_image(seed=54), tag="latest", verify=acr.ca_bundle)
    run = cli(["tag", "team/cli"], env=dead)
    assert run.code == 0  # the tag is written: the step did its job
    assert "warning: nudge failed" in run.err
    assert TOKEN not in run.err + run.out


def test_reconcile_nudges_for_the_tags_it_writes(acr: Emulator, registry: Any) -> None:
    from retag.reconcile.job import reconcile_registry

    with FluxReceiver(TOKEN) as receiver:
        settings = settings_for(acr, receiver.url, RECONCILE_GRACE="0s")
        push_image(
            acr.endpoint, "team/lost", oci_image(seed=55), tag="latest", verify=acr.ca_bundle
        )
        report = reconcile_registry(registry, settings)
        tagged = [r for r in report.repositories if r.status == "tagged"]
        assert [r.repository for r in tagged] == ["team/lost"]
        assert [n.body["repository"] for n in receiver.nudges] == ["team/lost"]
        reconcile_registry(registry, settings)  # in sync now: nothing written, no nudge
        assert len(receiver.nudges) == 1
