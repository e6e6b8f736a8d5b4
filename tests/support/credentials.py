"""A real `azure.core.credentials.TokenCredential` implementation for tests (no Azure AD here).

`StaticTokenCredential` hands out an AAD-like access token (random, one hour) and records every
`get_token` call, so tests can check which scope was asked for and how often. It satisfies the
TokenCredential protocol the Azure SDK calls (`get_token(*scopes, claims=, tenant_id=, ...)`); the
emulator's `/oauth2/exchange` accepts any non-empty AAD token.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from azure.core.credentials import AccessToken


class StaticTokenCredential:
    def __init__(self, lifetime_seconds: int = 3600) -> None:
        self.lifetime_seconds = lifetime_seconds
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
        token = "aad-" + secrets.token_urlsafe(24)
        with self._lock:
            self.calls.append(scopes)
            self.issued.append(token)
        return AccessToken(token, int(time.time()) + self.lifetime_seconds)


class FailingCredential:
    """A TokenCredential whose identity cannot get a token (like DefaultAzureCredential with no
    managed identity and no `az login`)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.exceptions import ClientAuthenticationError

        raise ClientAuthenticationError(message="no identity available in this environment")
