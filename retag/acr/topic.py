"""Publish the audit CloudEvent (`retag.audit`) to an Event Grid topic with azure-eventgrid.

How the installed SDK sends it (azure-eventgrid 4.22.1; without `namespace_topic` the public
`azure.eventgrid.EventGridPublisherClient` delegates to the topic client
`azure/eventgrid/_legacy/_publisher_client.py`, which we use directly: see the import below):
- `send([CloudEvent])` POSTs a JSON array to the topic endpoint with
  `?api-version=2018-01-01` and `Content-Type: application/cloudevents-batch+json; charset=utf-8`
  (`_legacy/_publisher_client.py` `send`, `_legacy/_helpers.py` `_build_request`,
  `_legacy/_constants.py` DEFAULT_API_VERSION);
- a TokenCredential gets a `BearerTokenCredentialPolicy` for the scope
  `https://eventgrid.azure.net/.default` (`_legacy/_helpers.py` `_get_authentication_policy`,
  `_legacy/_constants.py` DEFAULT_EVENTGRID_SCOPE): in Azure, the app's managed identity needs
  the role "EventGrid Data Sender" on the topic;
- any status but 200 raises (401 `ClientAuthenticationError`, else `HttpResponseError`).

Bounded: one attempt (`retry_total=0`: a failure is reported, the caller decides), connect and
read timeouts, TLS verified (with `ca_bundle` when given). Every failure is a `PublishError` with
a one-line message that never holds a token.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.core.pipeline.transport import RequestsTransport

# The topic client itself, not the public `azure.eventgrid.EventGridPublisherClient`: in
# azure-eventgrid 4.22.1 the public class, for a basic topic (no `namespace_topic`), builds this
# one WITHOUT forwarding its keywords (`azure/eventgrid/_patch.py` `__init__`:
# `LegacyEventGridPublisherClient(endpoint, credential, api_version=...)`), so a transport,
# `retry_total=0`, timeouts and `connection_verify` given to it are silently ignored (tested in
# tests/acr/test_topic.py). Per-call keywords to `send` would reach the pipeline but also the
# event model (a WARNING per keyword from the SDK's serializer).
from azure.eventgrid._legacy import EventGridPublisherClient

from retag.acr.transport import environment_settings
from retag.audit import TagAddedEvent, cloud_event_fields
from retag.logline import clip, redact
from retag.settings import check_ca_bundle

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["PublishError", "publish_tag_added"]


_CREDENTIAL_LOCK = threading.Lock()
_CREDENTIAL: TokenCredential | None = None


def _default_credential() -> TokenCredential:
    """One `DefaultAzureCredential` per process (in Azure the managed identity): its token cache
    then serves every publish instead of a token request per event."""
    global _CREDENTIAL  # noqa: PLW0603 - one lazily built credential per process
    with _CREDENTIAL_LOCK:
        if _CREDENTIAL is None:
            from azure.identity import DefaultAzureCredential

            _CREDENTIAL = DefaultAzureCredential()
        return _CREDENTIAL


class PublishError(Exception):
    """Publishing the audit event failed (one line, never a token)."""


def _one_line(text: str, limit: int = 300) -> str:
    return clip(redact(" ".join(text.split())), limit)


def _error_detail(response: Any) -> str:
    """`code message` of an Azure error body `{"error": {"code", "message"}}`, or ""."""
    try:
        body = json.loads(response.text())
    except Exception:  # not JSON, not read, ...
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    code = str(error.get("code") or "").strip()
    message = str(error.get("message") or "").strip()
    return " ".join(part for part in (code, message) if part)


def _describe(exc: AzureError) -> str:
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        text = f"HTTP {exc.status_code}" + (f" {exc.reason}" if exc.reason else "")
        detail = _error_detail(exc.response) if exc.response is not None else ""
        return text + (f": {detail}" if detail else "")
    inner = getattr(exc, "inner_exception", None) or exc
    return f"{type(exc).__name__}: {type(inner).__name__}"


def publish_tag_added(
    endpoint: str,
    event: TagAddedEvent,
    *,
    credential: TokenCredential | None = None,
    ca_bundle: str | None = None,
    timeout: float = 5.0,
) -> None:
    """Send one `AcrRetag.TagAdded` CloudEvent to the topic `endpoint` (`https://.../api/events`).

    `credential`: default `DefaultAzureCredential()` (honours AZURE_CLIENT_ID). Raises
    `PublishError` on any failure (bad endpoint, no token, HTTP error, timeout, TLS).
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise PublishError(f"publish {event.repository}:{event.tag}: bad topic endpoint")
    target = f"topic {host}"
    if ca_bundle:
        try:
            ca_bundle = check_ca_bundle(ca_bundle)
        except ValueError as exc:
            raise PublishError(_one_line(f"publish to {target}: ca_bundle: {exc}")) from None
    fields = cloud_event_fields(event)
    cloud_event = CloudEvent(
        source=fields["source"],
        type=fields["type"],
        subject=fields["subject"],
        id=fields["id"],
        data=fields["data"],
    )
    if credential is None:
        credential = _default_credential()
    verify, proxies = environment_settings(host, ca_bundle)
    transport = RequestsTransport(
        connection_timeout=timeout,
        read_timeout=timeout,
        connection_verify=verify,
        use_env_settings=False,
    )
    client = EventGridPublisherClient(
        endpoint,
        credential,
        transport=transport,
        retry_total=0,
        connection_timeout=timeout,
        read_timeout=timeout,
        proxies=proxies or None,
    )
    try:
        with client:
            client.send([cloud_event])
    except AzureError as exc:
        raise PublishError(
            _one_line(f"publish {fields['subject']} to {target}: {_describe(exc)}")
        ) from None
    except Exception as exc:  # a credential or transport bug: still one line, still loud
        raise PublishError(
            _one_line(f"publish {fields['subject']} to {target}: {type(exc).__name__}")
        ) from None
