"""An Event Grid custom topic: `POST /api/events` on the emulator's HTTPS listener.

Auth as Event Grid checks a publisher (docs: learn.microsoft.com/azure/event-grid/
authenticate-with-microsoft-entra-id and MicrosoftDocs/azure-docs
articles/event-grid/authenticate-with-access-keys-shared-access-signatures.md):
- `Authorization: Bearer <Entra token>` for the audience `https://eventgrid.azure.net` (the
  SDK asks its credential for `https://eventgrid.azure.net/.default`). There is no Entra ID here:
  the JWT payload is decoded without checking the signature (like `/oauth2/exchange` accepts any
  AAD token), but its `aud` must be Event Grid's and its `exp`, when present, in the future;
- `aeg-sas-key: <topic key>` (header, or the `aeg-sas-key` query parameter).
Anything else is 401 with an Azure error body `{"error": {"code": "Unauthorized", "message"}}`.

The body must be a CloudEvents batch (`application/cloudevents-batch+json`): a JSON array of
objects, each with string `specversion` ("1.0"), `id`, `source` and `type`; else 400. Accepted
events are recorded (oldest dropped past MAX_EVENTS) for `/_emulator/topic/events`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

EVENTGRID_AUDIENCES = frozenset({"https://eventgrid.azure.net", "https://eventgrid.azure.net/"})
MAX_EVENTS = 100_000
MAX_BATCH_BYTES = 1024 * 1024  # Event Grid's limit for one publish request (1 MB)
REQUIRED = ("specversion", "id", "source", "type")


class TopicError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"error": {"code": self.code, "message": self.message}}).encode()


def _jwt_payload(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(segment.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class Topic:
    """State and checks of the emulated topic; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.key = secrets.token_urlsafe(32)
        self._clock = clock
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self._lock = threading.Lock()

    # -- auth -------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None, sas_key: str | None) -> str:
        """The auth method used ("key" or "token"); raises TopicError(401) otherwise."""
        if sas_key is not None:
            if hmac.compare_digest(sas_key.encode(), self.key.encode()):
                return "key"
            raise TopicError(401, "Unauthorized", "The specified key is not valid for the topic.")
        if not authorization:
            raise TopicError(
                401,
                "Unauthorized",
                "The request is not authorized: send an Authorization bearer token or aeg-sas-key.",
            )
        scheme, _, token = authorization.partition(" ")
        payload = _jwt_payload(token.strip()) if scheme.lower() == "bearer" else None
        if payload is None:
            raise TopicError(401, "Unauthorized", "The authorization token is malformed.")
        audience = payload.get("aud")
        if audience not in EVENTGRID_AUDIENCES:
            raise TopicError(
                401,
                "Unauthorized",
                f"The token audience {str(audience)[:100]!r} is not valid: "
                "expected https://eventgrid.azure.net.",
            )
        expires = payload.get("exp")
        if expires is not None and (
            not isinstance(expires, int | float)
            or isinstance(expires, bool)
            or expires <= self._clock()
        ):
            raise TopicError(401, "Unauthorized", "The authorization token has expired.")
        return "token"

    # -- events -----------------------------------------------------------------------------------
    @staticmethod
    def parse_batch(body: bytes) -> list[dict[str, Any]]:
        if len(body) > MAX_BATCH_BYTES:
            raise TopicError(413, "RequestEntityTooLarge", "The batch exceeds 1048576 bytes.")
        try:
            batch = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise TopicError(400, "BadRequest", "The request body is not valid JSON.") from None
        if not isinstance(batch, list) or not batch:
            raise TopicError(400, "BadRequest", "A CloudEvents batch must be a non-empty array.")
        for index, item in enumerate(batch):
            if not isinstance(item, dict):
                raise TopicError(400, "BadRequest", f"Event {index} is not a JSON object.")
            for name in REQUIRED:
                value = item.get(name)
                if not isinstance(value, str) or not value:
                    raise TopicError(
                        400, "BadRequest", f"Event {index}: required attribute {name!r} missing."
                    )
            if item["specversion"] != "1.0":
                raise TopicError(400, "BadRequest", f"Event {index}: specversion must be '1.0'.")
        return batch

    def publish(self, authorization: str | None, sas_key: str | None, body: bytes) -> int:
        """Check and record one batch; returns how many events were recorded."""
        self.authenticate(authorization, sas_key)
        batch = self.parse_batch(body)
        with self._lock:
            self._events.extend(batch)
        return len(batch)

    def events(self) -> list[dict[str, Any]]:
        """The recorded CloudEvents (as published), oldest first."""
        with self._lock:
            return [json.loads(json.dumps(e)) for e in self._events]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
