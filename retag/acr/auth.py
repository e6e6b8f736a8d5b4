"""ACR token authentication: JWT expiry, Bearer challenges, the scope of a request, token cache.

Pure except for `Authenticator`, which talks to the registry's token endpoints through the
`send` callable the transport hands it (so token calls are attempts of the same call: counted,
bounded by its deadline, retried by the transport's one retry layer).

ACR's token protocol (design.md §1): a request without a token gets `401` +
`WWW-Authenticate: Bearer realm=...,service=...,scope=...`; the AAD token is exchanged for a
refresh token (`POST /oauth2/exchange`, `grant_type=access_token`), the refresh token for an
access token for the scope (`POST /oauth2/token`, `grant_type=refresh_token`); anonymous clients
ask `/oauth2/token` with `grant_type=password` and an empty refresh token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.rest import HttpRequest

from retag.acr.wire import error_detail
from retag.logline import redact
from retag.registry import PermissionDeniedError

API_VERSION = "2021-07-01"
TOKEN_REFRESH_MARGIN = 300.0
"""Renew a token this many seconds before its `exp` (ACR access tokens live 75 min, refresh tokens
3 h; acr-cli uses the same 5 min margin). Shorter-lived tokens renew after 80 % of their life."""
TOKEN_DEFAULT_TTL = 60.0
"""Tokens without a readable `exp` are reused for at most this long (then fetched again)."""
_MAX_CACHED = 4096
_BEARER_RE = re.compile(r"^\s*Bearer\s+(.*)$", re.IGNORECASE | re.DOTALL)
_PARAM_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_V2_RE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs|tags|referrers)(?:/.*)?$")
_ACR_RE = re.compile(r"^/acr/v1/(?P<name>.+?)(?:/(?P<kind>_tags|_manifests)(?:/.*)?)?$")

Sender = Callable[[HttpRequest], Any]
"""Sends one token request (one attempt) and returns the azure-core response."""

REPOSITORY_TOKEN_ACTIONS = ("pull", "push", "metadata_read")
"""What one access token per repository asks for: every action a re-tag needs (GET manifest,
PUT manifest, the `_tags` read). ACR tokens carry several actions in one scope
(`repository:R:pull,push,metadata_read`) and the token service grants the intersection with the
identity's roles (Docker token spec), so one token serves the whole operation."""
_ACTION_ORDER = ("pull", "push", "delete", "metadata_read", "metadata_write")


def widen_scope(scope: str, actions: tuple[str, ...] = REPOSITORY_TOKEN_ACTIONS) -> str:
    """`repository:R:<needed>` widened to `repository:R:<needed + actions>` (stable order); other
    scopes (`registry:catalog:*`) as they are. OCI repository names contain no `:`."""
    kind, sep, rest = scope.partition(":")
    name, sep2, wanted = rest.rpartition(":")
    if kind != "repository" or not sep or not sep2 or not name:
        return scope
    union = set(wanted.split(",")) | set(actions)
    union.discard("")
    ordered = [a for a in _ACTION_ORDER if a in union] + sorted(union - set(_ACTION_ORDER))
    return f"repository:{name}:{','.join(ordered)}"


# -- JWTs --------------------------------------------------------------------------------------
def _jwt_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (Unix seconds) of a JWT, decoded WITHOUT verifying it; None if unreadable.

    Only used to decide when to renew a token we were given; never trusts it for anything else.
    """
    claims = _jwt_claims(token)
    return None if claims is None else _number(claims.get("exp"))


def jwt_lifetime(token: str) -> float | None:
    """`exp - iat` of a JWT (seconds the issuer made it valid for), None if either is missing.

    Counting the lifetime from when we received the token makes the cache immune to clock skew
    between this machine and the registry (which sets `iat`/`exp` by its own clock).
    """
    claims = _jwt_claims(token)
    if claims is None:
        return None
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None or iat is None or exp <= iat:
        return None
    return exp - iat


# -- challenges and scopes ---------------------------------------------------------------------
@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate: Bearer realm=...,service=...,scope=...` header."""

    realm: str | None
    service: str | None
    scope: str | None
    error: str | None


def parse_bearer_challenge(header: str | None) -> Challenge | None:
    """Parse a Bearer challenge; None when the header is missing or not a Bearer challenge."""
    if not header:
        return None
    match = _BEARER_RE.match(header)
    if not match:
        return None
    params: dict[str, str] = {}
    for name, quoted, bare in _PARAM_RE.findall(match.group(1)):
        value = quoted if quoted or not bare else bare
        params[name.lower()] = value.replace('\\"', '"')
    return Challenge(
        realm=params.get("realm") or None,
        service=params.get("service") or None,
        scope=params.get("scope") or None,
        error=params.get("error") or None,
    )


@dataclass(frozen=True)
class RequestClass:
    """What an HTTP request to the registry needs: `key` identifies the kind of request (method,
    API family, repository) and `scope` is our guess of the token scope it needs; the real scope is
    learned from the first challenge of that kind of request."""

    key: tuple[str, str, str]
    repository: str | None
    scope: str


def _action(method: str, read: str, write: str) -> str:
    if method in ("GET", "HEAD"):
        return read
    return "delete" if method == "DELETE" else write


def classify_request(method: str, path: str) -> RequestClass | None:
    """Derive the token scope a registry request needs from its method and (encoded) path.

    Returns None for requests that never carry an access token (`/v2/` ping, `/oauth2/...`).
    """
    method = method.upper()
    path = unquote(path)
    if path in ("/v2/_catalog", "/acr/v1/_catalog"):
        return RequestClass((method, "catalog", ""), None, "registry:catalog:*")
    match = _V2_RE.match(path)
    if match:
        name, kind = match.group("name"), match.group("kind")
        action = _action(method, "pull", "push")
        return RequestClass((method, f"v2/{kind}", name), name, f"repository:{name}:{action}")
    match = _ACR_RE.match(path)
    if match and not path.startswith("/acr/v1/_"):
        name, kind = match.group("name"), match.group("kind") or "repository"
        action = _action(method, "metadata_read", "metadata_write")
        return RequestClass((method, f"acr/{kind}", name), name, f"repository:{name}:{action}")
    return None


# -- errors ------------------------------------------------------------------------------------
class RegistryAuthError(ClientAuthenticationError):
    """The registry (or Microsoft Entra ID) refused us a token, or refused a fresh token.

    A `ClientAuthenticationError`: permanent, never retried; `retag.acr.errors` maps it to
    `PermissionDeniedError` naming the role `scope` needs."""

    def __init__(self, message: str, *, scope: str | None = None, status: int | None = None):
        super().__init__(message=redact(message))
        self.scope = scope
        self.status = status


class RetryableTokenFailure(Exception):
    """The token endpoint answered 408/429/5xx: the transport's retry layer decides what next."""

    def __init__(self, response: Any) -> None:
        super().__init__(response.status_code)
        self.response = response


# -- the token cache ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float


class Authenticator:
    """ACR token protocol with caches for refresh tokens (per service) and access tokens (per
    service and scope). Thread-safe; concurrent misses for one scope fetch it once.

    `credential` None is anonymous access. `aad_scope` is `<audience>/.default`."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential | None,
        aad_scope: str,
        clock: Callable[[], float],
    ) -> None:
        self._endpoint = endpoint
        self.credential = credential
        self.aad_scope = aad_scope
        self._clock = clock
        self._lock = threading.Lock()
        self._access: dict[tuple[str, str], _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._learned: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._fetching: dict[tuple[str, ...], threading.Lock] = {}

    def _expiry(self, token: str) -> float:
        """When to stop using a token just received: `lifetime` after now, less the margin
        (lifetime = exp - iat when the token has both, else exp - now by our clock)."""
        now = self._clock()
        lifetime = jwt_lifetime(token)
        if lifetime is None:
            exp = jwt_expiry(token)
            if exp is None:
                return now + TOKEN_DEFAULT_TTL
            lifetime = max(exp - now, 0.0)
        return now + lifetime - min(TOKEN_REFRESH_MARGIN, lifetime * 0.2)

    def _valid(self, token: _Token | None) -> str | None:
        if token is not None and self._clock() < token.renew_at:
            return token.value
        return None

    def cached(self, service: str, scope: str) -> str | None:
        with self._lock:
            return self._valid(self._access.get((service, scope)))

    def _store(self, service: str, scope: str, token: str) -> None:
        with self._lock:
            if len(self._access) >= _MAX_CACHED:
                now = self._clock()
                self._access = {k: v for k, v in self._access.items() if v.renew_at > now}
            self._access[(service, scope)] = _Token(token, self._expiry(token))

    def invalidate(self, service: str, scope: str, token: str) -> None:
        with self._lock:
            current = self._access.get((service, scope))
            if current is not None and current.value == token:
                del self._access[(service, scope)]

    def learn(self, request_class: RequestClass, service: str, scope: str) -> None:
        with self._lock:
            if len(self._learned) >= _MAX_CACHED:
                self._learned.clear()
            self._learned[request_class.key] = (service, scope)

    def choose(self, request_class: RequestClass) -> tuple[str | None, str, bool]:
        """(service, scope, learned) to use for a request before sending it."""
        with self._lock:
            learned = self._learned.get(request_class.key)
            if learned is not None:
                return learned[0], learned[1], True
            services = {service for service, _ in self._learned.values()}
        # Not learned for this kind of request: guess the scope; any service seen so far.
        service = next(iter(services)) if len(services) == 1 else None
        return service, request_class.scope, False

    def _fetch_lock(self, key: tuple[str, ...]) -> threading.Lock:
        with self._lock:
            lock = self._fetching.get(key)
            if lock is None:
                if len(self._fetching) >= _MAX_CACHED:
                    self._fetching.clear()
                lock = self._fetching[key] = threading.Lock()
            return lock

    # -- protocol ------------------------------------------------------------------------------
    def access_token(self, service: str, scope: str, send: Sender) -> str:
        """A valid access token for `scope`, from the cache or the registry's token endpoint."""
        token = self.cached(service, scope)
        if token is not None:
            return token
        with self._fetch_lock(("access", service, scope)):
            token = self.cached(service, scope)
            if token is not None:
                return token
            token = self._fetch_access(service, scope, send)
            self._store(service, scope, token)
            return token

    def _fetch_access(self, service: str, scope: str, send: Sender) -> str:
        form = {"service": service, "scope": scope}
        if self.credential is None:
            form.update(grant_type="password", refresh_token="")
            response = send(self._post("/oauth2/token", form))
            return self._read_token(response, "access_token", scope)
        refresh, fresh = self._refresh_token(service, send)
        form.update(grant_type="refresh_token", refresh_token=refresh)
        response = send(self._post("/oauth2/token", form))
        if response.status_code == 401 and not fresh:
            # The cached refresh token was revoked or expired early: exchange once more.
            self._drop_refresh(service, refresh)
            refresh, _ = self._refresh_token(service, send)
            form["refresh_token"] = refresh
            response = send(self._post("/oauth2/token", form))
        return self._read_token(response, "access_token", scope)

    def _refresh_token(self, service: str, send: Sender) -> tuple[str, bool]:
        with self._lock:
            token = self._valid(self._refresh.get(service))
        if token is not None:
            return token, False
        with self._fetch_lock(("refresh", service)):
            with self._lock:
                token = self._valid(self._refresh.get(service))
            if token is not None:
                return token, False
            assert self.credential is not None
            try:
                aad = self.credential.get_token(self.aad_scope).token
            except ClientAuthenticationError as exc:
                raise RegistryAuthError(
                    f"could not get a Microsoft Entra token for {self.aad_scope}: {exc.message}"
                ) from exc
            form = {"grant_type": "access_token", "service": service, "access_token": aad}
            response = send(self._post("/oauth2/exchange", form))
            token = self._read_token(response, "refresh_token", None)
            with self._lock:
                self._refresh[service] = _Token(token, self._expiry(token))
            return token, True

    def _drop_refresh(self, service: str, token: str) -> None:
        with self._lock:
            current = self._refresh.get(service)
            if current is not None and current.value == token:
                del self._refresh[service]

    def _post(self, path: str, form: dict[str, str]) -> HttpRequest:
        return HttpRequest(
            "POST",
            self._endpoint + path,
            params={"api-version": API_VERSION},
            data=form,
            headers={"Accept": "application/json"},
        )

    @staticmethod
    def _read_token(response: Any, field: str, scope: str | None) -> str:
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise RetryableTokenFailure(response)
        what = f"an access token for '{scope}'" if scope else "a refresh token"
        if status != 200:
            detail = error_detail(response)
            raise RegistryAuthError(
                f"the registry refused {what} (HTTP {status})" + (f": {detail}" if detail else ""),
                scope=scope,
                status=status,
            )
        try:
            value = response.json().get(field)
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise RegistryAuthError(f"the registry's token endpoint returned no {field}")
        return value

    def entra_token_expiry(self) -> float | None:
        """Acquire a Microsoft Entra token for the registry audience with the credential (what
        `acr-retag doctor` checks); its expiry in Unix seconds, None when anonymous.

        The token is discarded: never returned, logged or put in a message. The credential caches
        it, so the registry calls that follow do not fetch it again. Raises PermissionDeniedError
        naming the scope when no token can be obtained (no `az login`, no managed identity...)."""
        if self.credential is None:
            return None
        where = f"could not get a Microsoft Entra token for {self.aad_scope}"
        try:
            expires_on = self.credential.get_token(self.aad_scope).expires_on
        except ClientAuthenticationError as exc:
            raise PermissionDeniedError(redact(f"{where}: {exc.message}")) from exc
        except (AzureError, ValueError, OSError) as exc:
            raise PermissionDeniedError(redact(f"{where}: {exc}")) from exc
        return float(expires_on)
