"""samples/events: every file parses, and each event is classified as its name says, with the
local emulator configuration of local.settings.json.example."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from retag.events import IMAGE_PUSHED, ImagePushed, OtherEvent, parse_event, parse_payload
from retag.on_push import handle_event
from retag.registry import Registry, TransientRegistryError
from retag.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "events"

# file -> per event: (event type, tag, what handle_event does)
EXPECTED: dict[str, list[tuple[str, str | None, str]]] = {
    "image-pushed-latest.json": [(IMAGE_PUSHED, "latest", "write")],
    "image-pushed-latest.cloudevent.json": [(IMAGE_PUSHED, "latest", "write")],
    "image-pushed-v1.json": [(IMAGE_PUSHED, "v1", "ignored")],
    "image-pushed-untagged.json": [(IMAGE_PUSHED, None, "ignored")],
    "image-pushed-index.json": [
        (IMAGE_PUSHED, None, "ignored"),
        (IMAGE_PUSHED, None, "ignored"),
        (IMAGE_PUSHED, "latest", "write"),
    ],
    "image-deleted.json": [("Microsoft.ContainerRegistry.ImageDeleted", None, "ignored")],
}


class Unreachable(TransientRegistryError):
    pass


def unreachable_registry() -> Registry:
    """No registry in unit tests: reaching the factory means the event path decided to write."""
    raise Unreachable("no registry in unit tests")


def test_every_sample_is_listed() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str, caplog: pytest.LogCaptureFixture) -> None:
    raw = (SAMPLES / name).read_bytes()
    assert isinstance(json.loads(raw), list)  # Event Grid posts arrays
    envelopes = parse_payload(raw)
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    settings = load_settings({**values, "ACR_CA_BUNDLE": ""})
    assert [len(envelopes)] == [len(EXPECTED[name])]
    for envelope, (event_type, tag, action) in zip(envelopes, EXPECTED[name], strict=True):
        if name.endswith(".cloudevent.json"):
            assert envelope["specversion"] == "1.0"
        event = parse_event(envelope)
        if event_type == IMAGE_PUSHED:
            assert isinstance(event, ImagePushed)
            assert event.tag == tag
            assert event.request_host == settings.registry.login_server
        else:
            assert event == OtherEvent(str(envelope["id"]), event_type)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="acr-retag"):
            if action == "write":
                with pytest.raises(Unreachable):
                    handle_event(envelope, settings, unreachable_registry)
                assert "new_tag=latest_2026112923" in caplog.records[0].getMessage()
            else:
                outcome = handle_event(envelope, settings, unreachable_registry)
                assert outcome.status == action
        assert len(caplog.records) == 1


def test_multi_arch_index_sample_tags_the_index_only() -> None:
    events = [
        parse_event(e) for e in parse_payload((SAMPLES / "image-pushed-index.json").read_bytes())
    ]
    pushed = [e for e in events if isinstance(e, ImagePushed)]
    assert [e.media_type for e in pushed] == [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
    assert len({e.digest for e in pushed}) == 3
    assert pushed[-1].tag == "latest"
