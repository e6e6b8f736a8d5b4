"""A real `azure.core.credentials.TokenCredential` implementation for tests (no Azure AD here).

`StaticTokenCredential` hands out an AAD-like access token (random, one hour) and records every
`get_token` call, so tests can check which scope was asked for and how often. It satisfies the
TokenCredential protocol the Azure SDK calls (`get_token(*scopes, claims=, tenant_id=, ...)`); the
emulator's `/oauth2/exchange` accepts any non-empty AAD token.

`StaticTokenCredential(audience=...)` hands out an unsigned JWT instead (`header.payload.sig`,
payload `{"aud": audience, "exp": ..., "iat": ...}`): the emulator's Event Grid topic decodes the
payload (no signature check, there is no Entra ID here) and checks `aud` and `exp`, as Event Grid
does for `https://eventgrid.azure.net`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any

from azure.core.credentials import AccessToken


class StaticTokenCredential:
    def __init__(self, lifetime_seconds: int = 3600, *, audience: str | None = None) -> None:
        self.lifetime_seconds = lifetime_seconds
        self.audience = audience
        self.calls: list[tuple[str, ...]] = []
        self.issued: list[str] = []
        self._lock = threading.Lock()

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        expires = int(time.time()) + self.lifetime_seconds
        if self.audience is None:
            token = "aad-" + secrets.token_urlsafe(24)
        else:
            token = unsigned_jwt({"aud": self.audience, "exp": expires, "iat": int(time.time())})
        with self._lock:
            self.calls.append(scopes)
            self.issued.append(token)
        return AccessToken(token, expires)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped token with `claims` as payload and a random (unchecked) signature."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(32))}"


class FailingCredential:
    """A TokenCredential whose identity cannot get a token (like DefaultAzureCredential with no
    managed identity and no `az login`)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.exceptions import ClientAuthenticationError

        raise ClientAuthenticationError(message="no identity available in this environment")
