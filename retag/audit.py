"""The audit event published after each new generated tag: `TagAddedEvent` and its CloudEvent
fields. Pure (no I/O, no Azure SDK): `retag.acr.topic` turns `cloud_event_fields` into the SDK's
CloudEvent and sends it.

The CloudEvent (docs/audit.md):
- `type` `AcrRetag.TagAdded`; `source` `https://<login server>`; `subject` `<repository>:<tag>`;
- `id` `uuid5(NAMESPACE_URL, "https://<login server>/<repository>:<tag>")`: the same tag always
  gets the same id, so a consumer can de-duplicate a re-publish (CloudEvents: source + id
  identify an event);
- `data` `registry, repository, sourceTag, digest, tag, pushedAt (RFC 3339 UTC), eventId, actor`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from retag.timeutil import utc_iso

EVENT_TYPE = "AcrRetag.TagAdded"


@dataclass(frozen=True)
class TagAddedEvent:
    registry: str
    """Login server, e.g. `myreg.azurecr.io` (no scheme)."""
    repository: str
    source_tag: str
    digest: str
    tag: str
    """The generated tag that was added."""
    pushed_at: datetime
    event_id: str | None = None
    """Id of the ImagePushed event that caused it (None for a CLI or reconcile re-tag)."""
    actor: str | None = None
    """Who pushed, when known (the push event's `actor.name`)."""


def _login_server(registry: str) -> str:
    server = registry.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not server or "/" in server:
        raise ValueError(f"registry must be a login server like myreg.azurecr.io, not {registry!r}")
    return server


def event_id(registry: str, repository: str, tag: str) -> str:
    """The deterministic CloudEvent id of the tag `repository:tag` on `registry`."""
    server = _login_server(registry)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://{server}/{repository}:{tag}"))


def cloud_event_fields(event: TagAddedEvent) -> dict[str, Any]:
    """`{"type", "source", "subject", "id", "data"}` of the CloudEvent for `event`."""
    server = _login_server(event.registry)
    return {
        "type": EVENT_TYPE,
        "source": f"https://{server}",
        "subject": f"{event.repository}:{event.tag}",
        "id": event_id(server, event.repository, event.tag),
        "data": {
            "registry": server,
            "repository": event.repository,
            "sourceTag": event.source_tag,
            "digest": event.digest,
            "tag": event.tag,
            "pushedAt": utc_iso(event.pushed_at, "milliseconds"),
            "eventId": event.event_id,
            "actor": event.actor,
        },
    }
