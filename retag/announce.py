"""Tell the world a generated tag was added: the Flux nudge and the audit event. The one home.

Called by the event path, the CLI `tag` and reconciliation right after `retag.tagging.tag_push`
WROTE a tag (`written=True`; never for a duplicate, a redelivery or a skipped push). Each channel
is optional and independent, and a failing channel never fails the re-tag: the tag is written, so
the push is done; the failure is one WARNING line (`acr-retag nudge ok=false ...`,
`acr-retag audit ok=false ...`) and the caller reports the channel's status.

- **Flux nudge** (`FLUX_RECEIVER_URL` + `FLUX_RECEIVER_TOKEN`): POST a small JSON body to a
  notification-controller `generic-hmac` Receiver with `X-Signature: sha256=<hex HMAC-SHA256 of
  the body, keyed with the token>`, so Flux reconciles the ImageRepository at once instead of at
  its next scan (fluxcd/notification-controller, docs/spec/v1/receivers.md "Generic HMAC"). TLS
  is verified, redirects are not followed, the timeout is bounded by what is left of the caller's
  time budget (at most 5 s). Reconciliation does not retry a failed nudge: Flux's own scan
  interval is the fallback.
- **Audit event** (`RETAG_EVENTS_TOPIC`): one CloudEvent `AcrRetag.TagAdded` to an Event Grid topic
  with the app's managed identity (`retag.acr.topic`).

The token is never logged, printed or put into a reason.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from retag.audit import TagAddedEvent
from retag.logline import LOGGER, line, one_line
from retag.registry import budget_deadline

if TYPE_CHECKING:
    from retag.settings import NotifySettings

ChannelStatus = Literal["off", "sent", "failed"]
NUDGE_TIMEOUT_SECONDS = 5.0
_MIN_TIMEOUT = 0.5


@dataclass(frozen=True)
class Announced:
    """Per channel: `off` (not configured), `sent`, or `failed` (with the reason)."""

    nudge: ChannelStatus = "off"
    audit: ChannelStatus = "off"
    nudge_reason: str = ""
    audit_reason: str = ""

    def fields(self) -> dict[str, str]:
        """`{"nudge": ..., "audit": ...}` for the channels that are configured (log lines, JSON)."""
        return {k: v for k, v in (("nudge", self.nudge), ("audit", self.audit)) if v != "off"}


class NudgeError(Exception):
    """The Receiver did not take the nudge; `str()` is one line without the token."""


# -- the nudge: pure parts ---------------------------------------------------------------------


def nudge_body(added: TagAddedEvent) -> bytes:
    """The JSON body POSTed to the Receiver (compact, keys in a fixed order)."""
    document = {
        "repository": added.repository,
        "tag": added.tag,
        "digest": added.digest,
        "source_tag": added.source_tag,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signature(body: bytes, token: str) -> str:
    """`sha256=<hex>`: the `X-Signature` a generic-hmac Receiver checks (HMAC-SHA256 of the exact
    body bytes, keyed with the Receiver's token)."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def _timeout() -> float:
    """At most NUDGE_TIMEOUT_SECONDS, and never past the caller's time budget."""
    deadline = budget_deadline()
    if deadline is None:
        return NUDGE_TIMEOUT_SECONDS
    return max(_MIN_TIMEOUT, min(NUDGE_TIMEOUT_SECONDS, deadline - time.monotonic()))


# -- the nudge: the POST ----------------------------------------------------------------------


def send_nudge(url: str, token: str, body: bytes, *, ca_bundle: str | None = None) -> None:
    """POST `body` to the Receiver at `url`; NudgeError unless it answers 2xx. No redirects are
    followed (a Receiver never redirects; following one could send the signed body elsewhere)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = _timeout()
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_bundle)
        connection = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    headers = {
        "Content-Type": "application/json",
        "X-Signature": signature(body, token),
        "User-Agent": "acr-retag",
    }
    target = f"{parts.scheme}://{parts.netloc}"
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(4096)
    except (OSError, http.client.HTTPException) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else one_line(exc, 200)
        raise NudgeError(f"Receiver {target} unreachable ({why})") from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise NudgeError(f"Receiver {target} answered HTTP {response.status}")


# -- announce: both channels ------------------------------------------------------------------


def announce(
    notify: NotifySettings,
    added: TagAddedEvent,
    *,
    ca_bundle: str | None = None,
    log: logging.Logger | None = None,
) -> Announced:
    """Nudge Flux and publish the audit event for `added`, as configured. Never raises for a
    channel's failure: it logs one WARNING line per failed channel and reports it."""
    log = log or LOGGER
    nudge: ChannelStatus = "off"
    audit: ChannelStatus = "off"
    nudge_reason = audit_reason = ""
    subject = {"repository": added.repository, "tag": added.tag}
    if notify.flux_receiver_url and notify.flux_receiver_token:
        try:
            send_nudge(
                notify.flux_receiver_url,
                notify.flux_receiver_token,
                nudge_body(added),
                ca_bundle=ca_bundle,
            )
            nudge = "sent"
        except NudgeError as exc:
            nudge, nudge_reason = "failed", str(exc)
            reason = f"{exc}; the tag is written, Flux sees it at its next scan"
            log.warning(line("nudge", {"ok": False, **subject, "reason": reason}))
    if notify.events_topic:
        try:
            _publish(notify.events_topic, added, ca_bundle)
            audit = "sent"
        except Exception as exc:
            audit, audit_reason = "failed", one_line(exc, 300)
            reason = f"{audit_reason}; the tag is written, the audit event is lost"
            log.warning(line("audit", {"ok": False, **subject, "reason": reason}))
    return Announced(nudge, audit, nudge_reason, audit_reason)


def _publish(endpoint: str, added: TagAddedEvent, ca_bundle: str | None) -> None:
    """The audit event through the Event Grid adapter (imported only when a topic is set)."""
    from retag.acr.topic import publish_tag_added

    publish_tag_added(endpoint, added, ca_bundle=ca_bundle, timeout=_timeout())
