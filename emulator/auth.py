"""ACR-style token authentication.

Flow (what the Azure SDK and docker clients do):
1. A request without a valid access token gets 401 and
   `WWW-Authenticate: Bearer realm="https://HOST/oauth2/token",service="HOST",scope="..."`.
2. `POST /oauth2/exchange` (grant_type=access_token, service, access_token=<AAD token>) returns a
   refresh token. Any non-empty AAD token is accepted (there is no Azure AD here).
3. `POST /oauth2/token` (grant_type=refresh_token + refresh_token, or grant_type=password for
   anonymous access) returns an access token limited to the requested scope. `GET /oauth2/token`
   (docker token protocol, optional Basic auth) does the same.

Tokens are JWT-shaped (base64url header.payload.signature), HMAC-SHA256 signed with a per-process
secret. Access tokens live 75 minutes, refresh tokens 3 hours (real time, not the emulated clock).
A token authorises exactly the (type, name, action) triples it was granted, written with ACR's
claim casing: `"access": [{"Type": "repository", "Name": "r", "Actions": ["pull"]}]`.
Anonymous pull (ACR's anonymous pull access) implies `metadata_read`, as on ACR, where anonymous
clients list tags.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.errors import ApiError

ACCESS_TOKEN_SECONDS = 75 * 60
REFRESH_TOKEN_SECONDS = 3 * 60 * 60
REPOSITORY_ACTIONS = ("pull", "push", "delete", "metadata_read", "metadata_write")
CATALOG_ACTIONS = ("*",)
UNAUTHORIZED_MESSAGE = (
    "authentication required, visit https://aka.ms/acr/authorization for more information."
)
ANONYMOUS_USER = "00000000-0000-0000-0000-000000000000"

_SCOPE_RE = re.compile(r"^(repository|registry)(?:\([a-z0-9]+\))?:([^:\s]+):([a-z_*,]+)$")


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def text(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scopes(text: str) -> list[Scope]:
    """Parse a space-separated scope list; raises ValueError on malformed entries."""
    scopes = []
    for part in text.split():
        match = _SCOPE_RE.match(part)
        if not match:
            raise ValueError(f"malformed scope {part!r}")
        kind, name, actions = match.groups()
        wanted = tuple(a for a in actions.split(",") if a)
        if not wanted:
            raise ValueError(f"scope {part!r} names no action")
        scopes.append(Scope(kind, name, wanted))
    return scopes


def challenge(login_server: str, scope: str | None, error: str | None = None) -> str:
    """ACR's challenge: `Bearer realm="https://R/oauth2/token",service="R"[,scope="..."]`, plus
    `,error="insufficient_scope"` / `,error="invalid_token"` when a token was sent."""
    value = f'Bearer realm="https://{login_server}/oauth2/token",service="{login_server}"'
    if scope:
        value += f',scope="{scope}"'
    if error:
        value += f',error="{error}"'
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenService:
    """Issues and verifies tokens; remembers every token it issued (see `issued()`)."""

    def __init__(
        self,
        login_server: str,
        *,
        anonymous: bool = True,
        anonymous_actions: Collection[str] | None = None,
    ) -> None:
        self.login_server = login_server
        self.anonymous = anonymous
        self.anonymous_actions: frozenset[str] | None = (
            None if anonymous_actions is None else frozenset(anonymous_actions)
        )
        self._secret = secrets.token_bytes(32)
        self._issued: list[str] = []
        self._lock = threading.Lock()

    # -- token encoding -------------------------------------------------------------------------
    def _encode(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "emulator"}).encode())
        payload = self._payload(claims)
        signing_input = f"{header}.{payload}".encode()
        signature = _b64(hmac.new(self._secret, signing_input, hashlib.sha256).digest())
        token = f"{header}.{payload}.{signature}"
        with self._lock:
            self._issued.append(token)
        return token

    @staticmethod
    def _payload(claims: dict[str, Any]) -> str:
        # The SDK decodes the payload with standard (not URL-safe) base64 and naive padding, so
        # pick a filler making the encoding free of '-'/'_' and of padding (like a careful issuer).
        for filler in range(256):
            data = json.dumps({**claims, "pad": " " * filler}, separators=(",", ":")).encode()
            if len(data) % 3:
                continue
            text = _b64(data)
            if "-" not in text and "_" not in text:
                return text
        return _b64(json.dumps(claims).encode())  # pragma: no cover - practically unreachable

    def _decode(self, token: str) -> dict[str, Any] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        header, payload, signature = parts
        expected = _b64(
            hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        )
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(claims, dict):
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= time.time():
            return None
        return claims

    def issued(self) -> list[str]:
        with self._lock:
            return list(self._issued)

    # -- issuing ------------------------------------------------------------------------------
    def _base_claims(self, subject: str, service: str, lifetime: int) -> dict[str, Any]:
        now = int(time.time())
        return {
            "jti": str(uuid.uuid4()),
            "sub": subject,
            "nbf": now - 5,
            "exp": now + lifetime,
            "iat": now,
            "iss": "Azure Container Registry",
            "aud": service,
            "version": "1.0",
        }

    def issue_refresh(self, subject: str, service: str) -> str:
        claims = self._base_claims(subject, service, REFRESH_TOKEN_SECONDS)
        claims["grant_type"] = "refresh_token"
        claims["tenant"] = "emulator"
        # Claim names and casing of ACR refresh tokens (Go SDK recordings, 2022-12).
        claims["permissions"] = {
            "Actions": ["read", "write", "delete", "deleted/read", "deleted/restore/action"],
            "NotActions": None,
        }
        claims["roles"] = []
        return self._encode(claims)

    def issue_access(self, subject: str, service: str, scopes: list[Scope], grant: str) -> str:
        allowed = None if grant != "anonymous" else self.anonymous_actions
        if allowed is not None and "pull" in allowed:
            allowed = allowed | {"metadata_read"}  # ACR anonymous pull lists tags too
        access = []
        for scope in scopes:
            if scope.type == "registry":
                actions = ["*"] if scope.name == "catalog" else []
            else:
                requested = REPOSITORY_ACTIONS if "*" in scope.actions else scope.actions
                actions = [
                    a
                    for a in requested
                    if a in REPOSITORY_ACTIONS and (allowed is None or a in allowed)
                ]
            if actions:
                access.append({"Type": scope.type, "Name": scope.name, "Actions": actions})
        claims = self._base_claims(subject, service, ACCESS_TOKEN_SECONDS)
        claims["grant_type"] = grant
        claims["access"] = access
        return self._encode(claims)

    # -- endpoints ------------------------------------------------------------------------------
    def exchange(self, form: Mapping[str, str]) -> dict[str, str]:
        """POST /oauth2/exchange: AAD access token -> ACR refresh token."""
        grant = form.get("grant_type", "")
        service = form.get("service", "")
        if grant not in ("access_token", "access_token_refresh_token", "refresh_token"):
            raise ApiError(400, "UNSUPPORTED", f"unsupported grant_type {grant!r}")
        if not service:
            raise ApiError(400, "UNSUPPORTED", "service is required")
        if grant == "refresh_token":
            claims = self._decode(form.get("refresh_token", ""))
            if claims is None or claims.get("grant_type") != "refresh_token":
                raise self.unauthorized("invalid refresh token")
            subject = str(claims.get("sub", "user"))
        else:
            if not form.get("access_token"):
                raise self.unauthorized("access_token (an AAD token) is required")
            subject = "aad-principal"
        return {"refresh_token": self.issue_refresh(subject, service)}

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, str]:
        """POST or GET /oauth2/token: refresh token (or anonymous) + scope -> access token."""
        service = form.get("service", "") or self.login_server
        try:
            scopes = parse_scopes(form.get("scope", ""))
        except ValueError as exc:
            raise ApiError(400, "UNSUPPORTED", str(exc)) from exc
        grant = form.get("grant_type", "")
        refresh = form.get("refresh_token", "")
        if not refresh:
            # docker login style: user 00000000-..., password = an ACR refresh token
            refresh = form.get("password", "") or (basic[1] if basic is not None else "")
        if grant == "refresh_token" or refresh:
            claims = self._decode(refresh)
            if claims is None or claims.get("grant_type") != "refresh_token":
                raise self.unauthorized("invalid or expired refresh token")
            return {"access_token": self.issue_access(str(claims["sub"]), service, scopes, "user")}
        if grant in ("password", ""):
            if not self.anonymous:
                raise self.unauthorized("anonymous access is disabled on this registry")
            return {"access_token": self.issue_access("anonymous", service, scopes, "anonymous")}
        raise ApiError(400, "UNSUPPORTED", f"unsupported grant_type {grant!r}")

    def anonymous_may(self, action: str) -> bool:
        if not self.anonymous:
            return False
        allowed = self.anonymous_actions
        if allowed is None or action in allowed:
            return True
        return action == "metadata_read" and "pull" in allowed

    def unauthorized(self, message: str = UNAUTHORIZED_MESSAGE) -> ApiError:
        return ApiError(401, "UNAUTHORIZED", message)

    # -- checking -------------------------------------------------------------------------------
    def authorizes(self, authorization: str | None, type_: str, name: str, action: str) -> bool:
        return self.check(authorization, type_, name, action) == "ok"

    def check(self, authorization: str | None, type_: str, name: str, action: str) -> str:
        """ "ok"; "missing" (no bearer token); "invalid" (bad signature, expired, not an access
        token: ACR's `error="invalid_token"`); "insufficient" (valid, lacks the action: ACR's
        `error="insufficient_scope"`)."""
        if not authorization or not authorization.startswith("Bearer "):
            return "missing"
        claims = self._decode(authorization[len("Bearer ") :].strip())
        if claims is None or not isinstance(claims.get("access"), list):
            return "invalid"
        for entry in claims["access"]:
            if not isinstance(entry, dict):
                continue
            if entry.get("Type") != type_ or entry.get("Name") != name:
                continue
            actions = entry.get("Actions")
            if isinstance(actions, list) and (action in actions or "*" in actions):
                return "ok"
        return "insufficient"

    def is_valid_access(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        claims = self._decode(authorization[len("Bearer ") :].strip())
        return claims is not None and "access" in claims
