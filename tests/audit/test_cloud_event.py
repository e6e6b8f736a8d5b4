"""`retag.audit`: the CloudEvent fields of a new tag (pure, no SDK)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from retag.audit import EVENT_TYPE, TagAddedEvent, cloud_event_fields, event_id

PUSHED = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=UTC)


def make(**overrides: object) -> TagAddedEvent:
    values: dict[str, object] = {
        "registry": "myreg.azurecr.io",
        "repository": "team/app",
        "source_tag": "latest",
        "digest": "sha256:" + "ab" * 32,
        "tag": "latest_20261201093000_abababababab",
        "pushed_at": PUSHED,
        "event_id": "e-1",
        "actor": "pipeline",
    }
    values.update(overrides)
    return TagAddedEvent(**values)  # type: ignore[arg-type]


def test_fields() -> None:
    fields = cloud_event_fields(make())
    assert fields == {
        "type": "AcrRetag.TagAdded",
        "source": "https://myreg.azurecr.io",
        "subject": "team/app:latest_20261201093000_abababababab",
        "id": str(
            uuid.uuid5(
                uuid.NAMESPACE_URL,
                "https://myreg.azurecr.io/team/app:latest_20261201093000_abababababab",
            )
        ),
        "data": {
            "registry": "myreg.azurecr.io",
            "repository": "team/app",
            "sourceTag": "latest",
            "digest": "sha256:" + "ab" * 32,
            "tag": "latest_20261201093000_abababababab",
            "pushedAt": "2026-12-01T09:30:00.123Z",
            "eventId": "e-1",
            "actor": "pipeline",
        },
    }
    assert fields["type"] == EVENT_TYPE


def test_id_is_deterministic_per_tag_and_ignores_the_rest() -> None:
    """Consumers de-duplicate on (source, id) (CloudEvents spec: `source` + `id` identify an
    event, https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md#id)."""
    first = cloud_event_fields(make())["id"]
    again = cloud_event_fields(make(event_id="e-2", actor=None, pushed_at=PUSHED.replace(hour=1)))
    assert again["id"] == first
    assert cloud_event_fields(make(tag="other"))["id"] != first
    assert cloud_event_fields(make(repository="team/other"))["id"] != first
    assert cloud_event_fields(make(registry="other.azurecr.io"))["id"] != first
    assert event_id("https://myreg.azurecr.io/", "team/app", make().tag) == first


def test_pushed_at_is_rfc3339_utc_and_unknowns_are_null() -> None:
    eastern = timezone(timedelta(hours=-5))
    data = cloud_event_fields(
        make(pushed_at=datetime(2026, 12, 1, 4, 30, tzinfo=eastern), event_id=None, actor=None)
    )["data"]
    assert data["pushedAt"] == "2026-12-01T09:30:00.000Z"
    naive = cloud_event_fields(make(pushed_at=datetime(2026, 12, 1, 9, 30)))["data"]
    assert naive["pushedAt"] == "2026-12-01T09:30:00.000Z"  # naive = UTC (retag.timeutil)
    assert data["eventId"] is None
    assert data["actor"] is None


@pytest.mark.parametrize("registry", ["", "https://", "myreg.azurecr.io/path"])
def test_bad_registry(registry: str) -> None:
    with pytest.raises(ValueError, match="login server"):
        cloud_event_fields(make(registry=registry))
