"""The event path: one ImagePushed event in, one Outcome (and one log line) out.

`handle_event` decides purely from the event and the settings whether a write is needed, and only
then builds the registry (so ignored and rejected events cost no I/O at all). The write itself is
`retag.tagging.tag_push`, the one engine shared with the CLI `tag` and reconciliation.

Outcomes and log levels:

- `retagged` (INFO): the generated tag now points to the event's digest.
- `ignored` (INFO): not ours to act on: another event type, a push by digest, a tag that is not a
  source tag (this includes our own generated tags: no loops), a repository outside the filters.
  Also `ignored` at WARNING: the manifest was deleted before we could re-tag it (404).
- `rejected` (WARNING): malformed events and events from another registry; nothing is written.
- `skipped` (WARNING): the template renders an image label (`{revision}`, `{created}`) the image
  does not have, or has with a value that cannot go into a tag; nothing is written, and Event Grid
  is not asked to retry (the image's content cannot change).
- `failed` (ERROR): the write was refused for good (target tag locked or already on another
  digest, digest mismatch); nothing is overwritten and Event Grid is not asked to retry.

Transient registry failures (5xx, 429, timeouts) are logged as `failed` with `retry=true` and
re-raised as TransientRegistryError so the Functions host reports a failure and Event Grid
redelivers. Permission errors (401/403) are treated the same way, on purpose: Event Grid keeps
redelivering for up to 24 h and then dead-letters, so an operator who grants the missing role
(AcrPush, or "Container Registry Repository Writer" on ABAC registries) within that window loses
no push, and a misconfigured deployment shows up as failed invocations rather than quiet log
lines. Events whose `data.request.host` is missing are rejected: ACR always sends it, and
without it we cannot prove the event is about the registry we write to.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from retag.announce import announce
from retag.audit import TagAddedEvent
from retag.events import MalformedEvent, OtherEvent, parse_event
from retag.logline import LOGGER, format_field, format_text, level_for
from retag.registry import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RegistryError,
    RequestTally,
    TransientRegistryError,
    required_role,
    tally_requests,
)
from retag.settings import Settings
from retag.tagging import Push, tag_push

Status = Literal["retagged", "ignored", "rejected", "skipped", "failed"]
_REASON_MAX_LENGTH = 300


@dataclass(frozen=True)
class Outcome:
    """What happened to one event. `log_line()` is the one line logged for it."""

    status: Status
    reason: str
    event_id: str | None = None
    repository: str | None = None
    source_tag: str | None = None
    digest: str | None = None
    new_tag: str | None = None
    duration_ms: float = 0.0
    requests: int = 0
    level: int | None = None
    """Log level when it differs from the status default (WARNING for a deleted manifest)."""
    retry: bool = False
    """True when the event is handed back to Event Grid for redelivery (the call raised)."""
    announced: dict[str, str] | None = None
    """`{"nudge": "sent"|"failed", "audit": ...}` for the configured channels of a new tag."""

    @property
    def log_level(self) -> int:
        return self.level if self.level is not None else level_for(self.status)

    def log_line(self) -> str:
        """`acr-retag outcome=... event_id=... ... reason="..."`; never contains a token."""
        parts = [
            "acr-retag",
            f"outcome={self.status}",
            f"event_id={format_field(self.event_id)}",
            f"repository={format_field(self.repository)}",
            f"source_tag={format_field(self.source_tag)}",
            f"digest={format_field(self.digest)}",
            f"new_tag={format_field(self.new_tag)}",
            f"duration_ms={self.duration_ms:.1f}",
            f"requests={self.requests}",
        ]
        if self.retry:
            parts.append("retry=true")
        parts.extend(f"{channel}={status}" for channel, status in (self.announced or {}).items())
        parts.append(f"reason={format_text(self.reason, _REASON_MAX_LENGTH)}")
        return " ".join(parts)


def handle_event(
    envelope: Mapping[str, object],
    settings: Settings,
    registry: Callable[[], Registry],
    *,
    log: logging.Logger | None = None,
) -> Outcome:
    """Handle one raw event (Event Grid schema or CloudEvents); logs exactly one outcome line.

    `registry` is a factory called only when a write is needed. Raises TransientRegistryError
    (after logging) when Event Grid should redeliver the event; every other result is returned.
    """
    log = log or LOGGER
    started = time.monotonic()
    with tally_requests() as tally:  # this event's requests only: the adapter is shared
        outcome, error = _handle(envelope, settings, registry, _Result(started, tally))
    log.log(outcome.log_level, outcome.log_line())
    if error is not None:
        raise error
    return outcome


@dataclass
class _Result:
    """Builds the Outcome of one event as its fields become known."""

    started: float
    tally: RequestTally
    """Registry requests sent by this thread for this event (`Registry.requests_made` counts
    every thread sharing the adapter: concurrent invocations would inflate each other's count)."""
    event_id: str | None = None
    repository: str | None = None
    source_tag: str | None = None
    digest: str | None = None
    new_tag: str | None = None

    announced: dict[str, str] | None = None

    def __call__(
        self, status: Status, reason: str, *, level: int | None = None, retry: bool = False
    ) -> Outcome:
        return Outcome(
            status=status,
            reason=reason,
            event_id=self.event_id,
            repository=self.repository,
            source_tag=self.source_tag,
            digest=self.digest,
            new_tag=self.new_tag,
            duration_ms=(time.monotonic() - self.started) * 1000.0,
            requests=self.tally.count,
            level=level,
            retry=retry,
            announced=self.announced,
        )


def _handle(
    envelope: Mapping[str, object],
    settings: Settings,
    registry_factory: Callable[[], Registry],
    result: _Result,
) -> tuple[Outcome, Exception | None]:
    try:
        event = parse_event(envelope)
    except MalformedEvent as exc:
        result.event_id = exc.event_id
        return result("rejected", f"malformed event: {exc.reason}"), None
    result.event_id = event.event_id
    if isinstance(event, OtherEvent):
        return result("ignored", f"event type {event.event_type} is not an image push"), None

    retag = settings.retag
    result.repository, result.digest = event.repository, event.digest
    if event.tag is None:
        return result("ignored", "pushed by digest (platform manifest of a multi-arch push?)"), None
    result.source_tag = event.tag
    if event.tag not in retag.source_tags:
        if retag.template.is_generated(event.tag):
            reason = "tag is a generated tag (our own re-tag)"
        else:
            reason = f"tag is not a source tag (RETAG_SOURCE_TAGS={','.join(retag.source_tags)})"
        return result("ignored", reason), None
    if not retag.in_scope(event.repository):
        reason = "repository is outside RETAG_REPOSITORIES / RETAG_EXCLUDE_REPOSITORIES"
        return result("ignored", reason), None

    login_server = settings.registry.login_server
    if event.request_host is None:
        return result("rejected", "missing data.request.host: cannot prove the event is ours"), None
    if not is_registry_host(event.request_host, login_server):
        reason = (
            f"event is from registry {event.request_host}, not ACR_LOGIN_SERVER={login_server} "
            "or one of its regional endpoints"
        )
        return result("rejected", reason), None

    push = Push(event.repository, event.tag, event.digest, event.pushed_at)
    render = retag.template.preview if retag.template.label_names else retag.template.render
    result.new_tag = render(event.tag, event.pushed_at, event.digest)
    try:
        tagged = tag_push(registry_factory(), retag.template, push)
    except NotFoundError as exc:
        reason = f"manifest deleted before re-tag ({exc})"
        return result("ignored", reason, level=logging.WARNING), None
    except ConflictError as exc:
        return result("failed", f"not overwritten: {exc}"), None
    except PermissionDeniedError as exc:
        reason = (
            f"permission denied ({exc}); grant {required_role('push')}; Event Grid will redeliver"
        )
        retry = TransientRegistryError(reason)
        retry.__cause__ = exc
        return result("failed", reason, retry=True), retry
    except TransientRegistryError as exc:
        reason = f"transient registry error ({exc}); Event Grid will redeliver"
        return result("failed", reason, retry=True), exc
    except RegistryError as exc:
        return result("failed", f"registry error: {exc}"), None
    except Exception as exc:
        reason = f"unexpected error {type(exc).__name__}: {exc}; Event Grid will redeliver"
        return result("failed", reason, retry=True), exc
    result.new_tag = tagged.tag
    if tagged.skipped:
        return result("skipped", f"{tagged.reason}; nothing written"), None
    if not tagged.written:
        return result("ignored", f"{tagged.reason}; nothing written"), None
    added = TagAddedEvent(
        login_server,
        event.repository,
        event.tag,
        event.digest,
        tagged.tag,
        event.pushed_at,
        event_id=event.event_id,
        actor=event.actor,
    )
    announced = announce(settings.notify, added, ca_bundle=settings.registry.ca_bundle)
    result.announced = announced.fields() or None
    return result("retagged", tagged.reason), None


def is_registry_host(host: str, login_server: str) -> bool:
    """True when `host` (an event's `data.request.host`) is `login_server` or one of its
    regional endpoints: `<name>.<region>.geo.<suffix>` for login server `<name>.<suffix>`
    (Learn, "container registry endpoint reference": a push through a geo-replica's regional
    endpoint carries that host). Every other host, lookalikes included, is not.

    Host names on the wire are ASCII (IDNA): Unicode lookalikes must not pass for the login server
    (`str.lower()` maps the Kelvin sign U+212A to `k`, so `\u212aitchen.azurecr.io` would)."""
    event_host, ours = _normal_host(host), _normal_host(login_server)
    if event_host is None or ours is None:
        return False
    if event_host == ours:
        return True
    name, dot, suffix = ours.partition(".")
    if not dot or ":" in ours:
        return False
    match = _REGIONAL_RE.fullmatch(event_host)
    return match is not None and match["name"] == name and match["suffix"] == suffix


_REGIONAL_RE = re.compile(
    r"(?P<name>[a-z0-9-]+)\.(?P<region>[a-z0-9]+)\.geo\.(?P<suffix>[a-z0-9.-]+)"
)


def _normal_host(host: str) -> str | None:
    """Lowercase, without the default HTTPS port; None for a non-ASCII host."""
    host = host.strip()
    if not host.isascii():
        return None
    return host.lower().removesuffix(":443")
