"""`AcrRegistry`: the `retag.registry.Registry` protocol on top of `azure-containerregistry`.

This is the edge of the application: the only module that imports `azure.containerregistry` and
`azure.identity` (ruff TID251 enforces it). Nothing else in `retag/` imports this module at module
import time; callers import it inside the function that needs a registry, so `import function_app`
stays cheap (issue 3: cold start).

Why the SDK is wrapped the way it is (azure-containerregistry 1.2.0, azure-core 1.41):

* Tokens. The SDK's `ContainerRegistryChallengePolicy` sends every request without a token, waits
  for the `401` challenge, exchanges the AAD token for an ACR refresh token (`/oauth2/exchange`;
  its expiry check is inverted, so this happens on every call) and the refresh token for an access
  token (`/oauth2/token`), then resends: about 4 HTTP requests per operation. We want exactly one.
* Extension point. Every keyword given to `ContainerRegistryClient` is also handed to the SDK's
  internal token-exchange client, which builds a second pipeline from the same keywords. A
  policy instance that forwards requests (`HTTPPolicy`: its `next` link is per instance) therefore
  cannot be injected: it would be chained into both pipelines. A transport can be shared (the
  SDK shares its own), and so can a `SansIOHTTPPolicy` (each pipeline wraps it). So:
  - `_AcrTransport` wraps `RequestsTransport`. It is the single place every HTTP request of the
    client passes through (token calls included): it counts them, enforces the per-call deadline
    and does ACR token authentication itself with a per-scope cache (`_Authenticator`). The SDK's
    challenge policy stays in the pipeline but never sees a `401`: the transport either answers it
    or raises `RegistryAuthError`.
  - `_DeadlinePolicy` (per-call, SansIO) stamps each pipeline run with its absolute deadline.
* Steady state: the access token for a request is chosen before sending, from the scope learned
  from the last challenge of the same kind of request (or derived from method + path), so a GET or
  PUT of a manifest is exactly one HTTP request while its token is valid.
* Deadline: azure-core's `RetryPolicy(timeout=...)` (total seconds per pipeline run, checked before
  each attempt) bounds retries but not the read timeout of the last attempt nor a long
  `Retry-After` sleep. The transport caps connect/read timeouts of every attempt (and token call)
  to the time left and refuses a retry delay that would end after the deadline, so one call never
  takes longer than `deadline_seconds` (plus scheduling noise). Limitation: the read timeout bounds
  each socket read; a server dribbling bytes slower than that is not cut off mid-body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

from azure.containerregistry import ContainerRegistryClient, DigestValidationError
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.rest import HttpRequest

from retag.registry import (
    ConflictError,
    Manifest,
    ManifestInfo,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    RequestCounter,
    TagInfo,
    TransientRegistryError,
    budget_deadline,
    note_request,
    required_role,
)

if TYPE_CHECKING:
    from retag.settings import RegistrySettings

_T = TypeVar("_T")

__all__ = [
    "DEFAULT_AUDIENCE",
    "DOCKER_MANIFEST",
    "OCI_MANIFEST",
    "PAGE_SIZE",
    "AcrRegistry",
    "Challenge",
    "RegistryAuthError",
    "RequestClass",
    "classify_request",
    "jwt_expiry",
    "jwt_lifetime",
    "parse_bearer_challenge",
    "registry_for",
    "required_role",
]

DEFAULT_AUDIENCE = "https://containerregistry.azure.net"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

PAGE_SIZE = 100
"""`n` for the ACR listing APIs (`_tags`, `_manifests`, `_catalog`). ACR's documented default page
is 100 and Azure's own acr-cli (`acr purge`) always asks for 100 (`manifestTagFetchCount`); larger
values are not documented as honoured, so 100 is the largest page we can rely on."""

_API_VERSION = "2021-07-01"
_DEADLINE_OPTION = "retag_deadline"
_TOKEN_REFRESH_MARGIN = 300.0
"""Renew a token this many seconds before its `exp` (ACR access tokens live 75 min, refresh tokens
3 h; acr-cli uses the same 5 min margin). Shorter-lived tokens renew after 80 % of their life."""
_TOKEN_DEFAULT_TTL = 60.0
"""Tokens without a readable `exp` are reused for at most this long (then fetched again)."""
_MAX_CACHED = 4096
_JWT_RE = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_BEARER_RE = re.compile(r"^\s*Bearer\s+(.*)$", re.IGNORECASE | re.DOTALL)
_PARAM_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_V2_RE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs|tags|referrers)(?:/.*)?$")
_ACR_RE = re.compile(r"^/acr/v1/(?P<name>.+?)(?:/(?P<kind>_tags|_manifests)(?:/.*)?)?$")


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit-tested without a registry)
# ---------------------------------------------------------------------------------------------
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
        if method in ("GET", "HEAD"):
            action = "pull"
        elif method == "DELETE":
            action = "delete"
        else:
            action = "push"
        return RequestClass((method, f"v2/{kind}", name), name, f"repository:{name}:{action}")
    match = _ACR_RE.match(path)
    if match and not path.startswith("/acr/v1/_"):
        name, kind = match.group("name"), match.group("kind") or "repository"
        if method in ("GET", "HEAD"):
            action = "metadata_read"
        elif method == "DELETE":
            action = "delete"
        else:
            action = "metadata_write"
        return RequestClass((method, f"acr/{kind}", name), name, f"repository:{name}:{action}")
    return None


def _redact(text: str) -> str:
    """Remove anything token-shaped from a message (defence in depth; we never put tokens in)."""
    return _JWT_RE.sub("<redacted>", text)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip()


def _utc(value: datetime) -> datetime:
    """Timezone-aware UTC (naive values are UTC, as ACR's are)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _parse_time(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise RegistryError(f"registry listing has an invalid {field}: {value!r}")


def _flag(attributes: object, name: str) -> bool:
    """A `changeableAttributes` permission: True when the attributes or the flag are missing
    (ACR's default, and what the SDK's `can_delete is not False` gave); booleans as sent, plus the
    forms the SDK's deserializer accepts ("true"/"false", 1/0). Any other value is treated as
    False: a lock we cannot read is kept as a lock."""
    if not isinstance(attributes, Mapping):
        return True
    value = attributes.get(name)
    if value is None or isinstance(value, bool):
        return value is not False
    if isinstance(value, str) and value.lower() in ("true", "1"):
        return True
    return isinstance(value, int) and value == 1


def tag_info_from_json(entry: Mapping[str, Any]) -> TagInfo:
    """A `TagInfo` from one ACR `_tags` listing entry (or `tag` of a GET): what the SDK's
    `ArtifactTagProperties` held, read straight from the JSON (the SDK's model deserializer costs
    ~0.5 ms per tag, which dominated listing big repositories)."""
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise RegistryError("registry listing has a tag without a name")
    digest = entry.get("digest")
    if not isinstance(digest, str) or not digest:
        raise RegistryError(f"registry listing has tag {name!r} without a digest")
    attributes = entry.get("changeableAttributes")
    return TagInfo(
        name=name,
        digest=digest,
        created_on=_parse_time(entry.get("createdTime"), "createdTime"),
        last_updated_on=_parse_time(entry.get("lastUpdateTime"), "lastUpdateTime"),
        can_delete=_flag(attributes, "deleteEnabled"),
        can_write=_flag(attributes, "writeEnabled"),
    )


def manifest_info_from_json(entry: Mapping[str, Any]) -> ManifestInfo:
    """A `ManifestInfo` from one ACR `_manifests` listing entry (or `manifest` of a GET)."""
    digest = entry.get("digest")
    if not isinstance(digest, str) or not digest:
        raise RegistryError("registry listing has a manifest without a digest")
    tags = entry.get("tags") or []
    references = entry.get("references") or []
    media_type = entry.get("mediaType")
    size = entry.get("imageSize")
    return ManifestInfo(
        digest=digest,
        media_type=media_type if isinstance(media_type, str) else None,
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        created_on=_parse_time(entry.get("createdTime"), "createdTime"),
        last_updated_on=_parse_time(entry.get("lastUpdateTime"), "lastUpdateTime"),
        references=tuple(
            r["digest"]
            for r in (references if isinstance(references, list) else [])
            if isinstance(r, Mapping) and isinstance(r.get("digest"), str)
        ),
        has_subject=bool(entry.get("subject")),
        can_delete=_flag(entry.get("changeableAttributes"), "deleteEnabled"),
        can_write=_flag(entry.get("changeableAttributes"), "writeEnabled"),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


# ---------------------------------------------------------------------------------------------
# Token cache and ACR token protocol
# ---------------------------------------------------------------------------------------------
class RegistryAuthError(ClientAuthenticationError):
    """The registry (or Microsoft Entra ID) refused us a token, or refused a fresh token.

    A `ClientAuthenticationError`, so azure-core's retry policy does not retry it.
    """

    def __init__(self, message: str, *, scope: str | None = None, status: int | None = None):
        super().__init__(message=_redact(message))
        self.scope = scope
        self.status = status


class _RetryableTokenFailure(Exception):
    """The token endpoint answered 408/429/5xx: hand that response to the retry policy."""

    def __init__(self, response: Any) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float


Sender = Callable[[HttpRequest], Any]


class _Authenticator:
    """ACR token protocol with caches for refresh tokens (per service) and access tokens (per
    service and scope). Thread-safe; concurrent misses for one scope fetch it once."""

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential | None,
        aad_scope: str,
        clock: Callable[[], float],
    ) -> None:
        self._endpoint = endpoint
        self._credential = credential
        self._aad_scope = aad_scope
        self._clock = clock
        self._lock = threading.Lock()
        self._access: dict[tuple[str, str], _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._learned: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._fetching: dict[tuple[str, ...], threading.Lock] = {}

    # -- cache ---------------------------------------------------------------------------------
    def _expiry(self, token: str) -> float:
        """When to stop using a token just received: `lifetime` after now, less the margin
        (lifetime = exp - iat when the token has both, else exp - now by our clock)."""
        now = self._clock()
        lifetime = jwt_lifetime(token)
        if lifetime is None:
            exp = jwt_expiry(token)
            if exp is None:
                return now + _TOKEN_DEFAULT_TTL
            lifetime = max(exp - now, 0.0)
        return now + lifetime - min(_TOKEN_REFRESH_MARGIN, lifetime * 0.2)

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
        if self._credential is None:
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
            assert self._credential is not None
            try:
                aad = self._credential.get_token(self._aad_scope).token
            except ClientAuthenticationError as exc:
                raise RegistryAuthError(
                    f"could not get a Microsoft Entra token for {self._aad_scope}: {exc.message}"
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
            params={"api-version": _API_VERSION},
            data=form,
            headers={"Accept": "application/json"},
        )

    @staticmethod
    def _read_token(response: Any, field: str, scope: str | None) -> str:
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise _RetryableTokenFailure(response)
        what = f"an access token for '{scope}'" if scope else "a refresh token"
        if status != 200:
            detail = _error_detail(response)
            raise RegistryAuthError(
                f"the registry refused {what} (HTTP {status}){detail}", scope=scope, status=status
            )
        try:
            value = response.json().get(field)
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise RegistryAuthError(f"the registry's token endpoint returned no {field}")
        return value


def _error_detail(response: Any) -> str:
    """`: CODE message` from an ACR/OCI error body, or an empty string."""
    try:
        body = response.json()
    except Exception:  # not JSON, not read, ...
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = str(errors[0].get("code") or "").strip()
        message = str(errors[0].get("message") or "").strip()
        text = " ".join(part for part in (code, message) if part)
        return f": {_redact(text)[:300]}" if text else ""
    return ""


# ---------------------------------------------------------------------------------------------
# Pipeline pieces
# ---------------------------------------------------------------------------------------------
class _DeadlinePolicy(SansIOHTTPPolicy[Any, Any]):
    """Per-call policy: gives each pipeline run (one SDK call, one page) an absolute deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._seconds = seconds

    def on_request(self, request: PipelineRequest[Any]) -> None:
        deadline = time.monotonic() + self._seconds
        budget = budget_deadline()  # an enclosing `time_budget` (e.g. one event invocation)
        if budget is not None:
            deadline = min(deadline, budget)
        request.context.options.setdefault(_DEADLINE_OPTION, deadline)


class _AcrTransport(HttpTransport[Any, Any]):
    """Wraps `RequestsTransport`: counts, bounds and authenticates every request (module doc)."""

    def __init__(
        self,
        inner: RequestsTransport,
        *,
        host: str,
        authenticator: _Authenticator,
        counter: RequestCounter,
        connect_timeout: float,
        read_timeout: float,
        deadline_seconds: float,
    ) -> None:
        self._inner = inner
        self._host = host.lower()
        self._auth = authenticator
        self._counter = counter
        self._count_lock = threading.Lock()
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._deadline_seconds = deadline_seconds
        self._local = threading.local()

    @property
    def connection_config(self) -> Any:
        return self._inner.connection_config

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _AcrTransport:
        self._inner.open()
        return self

    def __exit__(self, *args: object) -> None:
        # Shared by two SDK pipelines: only AcrRegistry.close() closes the session.
        return None

    def sleep(self, duration: float) -> None:
        """Retry delays (backoff, `Retry-After`) never run past the call's deadline."""
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is not None and getattr(self._local, "expired", None) == deadline:
            return  # already given up: the next attempt fails at once with the first reason
        if deadline is not None and time.monotonic() + duration >= deadline:
            self._local.expired = deadline
            self._local.reason = (
                f"gave up: the registry asked to retry after {duration:.1f} s, past the "
                f"{self._deadline_seconds:g} s deadline of this call"
            )
            return
        time.sleep(duration)

    def send(self, request: Any, **kwargs: Any) -> Any:
        deadline = kwargs.pop(_DEADLINE_OPTION, None)
        if deadline is None:
            deadline = time.monotonic() + self._deadline_seconds
            budget = budget_deadline()
            if budget is not None:
                deadline = min(deadline, budget)
        self._local.deadline = deadline
        parts = urlsplit(request.url)
        request_class = None
        if parts.scheme == "https" and parts.netloc.lower() == self._host:
            request_class = classify_request(request.method, parts.path)
        if request_class is None:
            return self._send(request, deadline, kwargs)
        try:
            return self._send_authorized(request, request_class, deadline, kwargs)
        finally:
            request.headers.pop("Authorization", None)

    # -- internals -----------------------------------------------------------------------------
    def _send(self, request: Any, deadline: float, kwargs: dict[str, Any]) -> Any:
        if getattr(self._local, "expired", None) == deadline:
            raise ServiceResponseTimeoutError(self._local.reason)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServiceResponseTimeoutError(
                f"gave up: the {self._deadline_seconds:g} s deadline of this call has passed"
            )
        connect = kwargs.get("connection_timeout")
        read = kwargs.get("read_timeout")
        kwargs = {
            **kwargs,
            "connection_timeout": min(
                connect if isinstance(connect, int | float) else self._connect_timeout, remaining
            ),
            "read_timeout": min(
                read if isinstance(read, int | float) else self._read_timeout, remaining
            ),
        }
        with self._count_lock:
            self._counter.add(_kind(request.method, urlsplit(request.url).path))
        note_request()
        return self._inner.send(request, **kwargs)

    def _send_authorized(
        self, request: Any, request_class: RequestClass, deadline: float, kwargs: dict[str, Any]
    ) -> Any:
        def send_token_request(token_request: HttpRequest) -> Any:
            return self._send(token_request, deadline, {})

        position = _body_position(request)
        request.headers.pop("Authorization", None)
        service, scope, learned = self._auth.choose(request_class)
        token: str | None = None
        if service is not None:
            token = self._auth.cached(service, scope)
            if token is None and learned:
                # Known scope (typically the token just expired): fetch it up front, no 401.
                try:
                    token = self._auth.access_token(service, scope, send_token_request)
                except _RetryableTokenFailure as failure:
                    return failure.response
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = self._send(request, deadline, kwargs)
        if response.status_code != 401:
            return response

        challenge = parse_bearer_challenge(response.headers.get("WWW-Authenticate"))
        if challenge is None or challenge.service is None:
            raise RegistryAuthError(
                "the registry answered 401 without a Bearer challenge (it needs another kind of "
                "authentication than Microsoft Entra / anonymous tokens)",
                scope=scope,
                status=401,
            )
        new_scope = challenge.scope or scope
        # Our token for this very scope was refused (expired, revoked): forget it. If the
        # challenge names another scope, the guess was wrong and the token stays valid.
        refused = new_scope == scope or challenge.error == "invalid_token"
        if token is not None and service is not None and refused:
            self._auth.invalidate(service, scope, token)
        self._auth.learn(request_class, challenge.service, new_scope)
        try:
            token = self._auth.access_token(challenge.service, new_scope, send_token_request)
        except _RetryableTokenFailure as failure:
            return failure.response
        if not _rewind(request, position):
            raise RegistryAuthError(
                "cannot resend the request body after the authentication challenge", scope=new_scope
            )
        request.headers["Authorization"] = f"Bearer {token}"
        response = self._send(request, deadline, kwargs)
        if response.status_code == 401:
            self._auth.invalidate(challenge.service, new_scope, token)
            raise RegistryAuthError(
                f"the registry rejected a fresh token for '{new_scope}'{_error_detail(response)}",
                scope=new_scope,
                status=401,
            )
        return response


def _kind(method: str, path: str) -> str:
    """A short label for `RequestCounter.by_kind`, e.g. `GET v2/manifests`, `POST oauth2/token`."""
    if path.startswith("/oauth2/"):
        return f"{method} oauth2/{path[len('/oauth2/') :]}"
    request_class = classify_request(method, path)
    if request_class is None:
        return f"{method} {path}"
    return f"{method} {request_class.key[1]}"


def _body_position(request: Any) -> int | None:
    body = getattr(request, "data", None)
    if body is not None and hasattr(body, "seek") and hasattr(body, "tell"):
        try:
            return int(body.tell())
        except (OSError, ValueError):
            return None
    return None


def _rewind(request: Any, position: int | None) -> bool:
    body = getattr(request, "data", None)
    if body is None or not hasattr(body, "read"):
        return True  # bytes, str, dict or no body: resendable as is
    if position is None:
        return False
    try:
        body.seek(position)
    except (OSError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Error mapping
# ---------------------------------------------------------------------------------------------
def _status_message(exc: HttpResponseError) -> str:
    status = exc.status_code
    detail = ""
    model = getattr(exc, "model", None)
    errors = getattr(model, "errors", None)
    if errors:
        first = errors[0]
        code = getattr(first, "code", None) or ""
        message = getattr(first, "message", None) or ""
        detail = " ".join(part for part in (str(code), str(message)) if part)
    elif exc.response is not None:
        detail = _error_detail(exc.response).removeprefix(": ")
    reason = exc.reason or ""
    text = f"HTTP {status}" + (f" {reason}" if reason else "")
    return text + (f": {detail[:300]}" if detail else "")


def _map_exception(exc: Exception, action: str, target: str, login_server: str) -> RegistryError:
    """Translate an SDK/azure-core exception into the `retag.registry` error hierarchy."""
    where = f"{action} {target} on {login_server}"
    if isinstance(exc, RegistryAuthError):
        needed = exc.scope or action
        return PermissionDeniedError(
            _redact(
                f"{where}: permission denied ({exc.message}); the identity needs "
                f"{required_role(needed)}"
            )
        )
    if isinstance(exc, ClientAuthenticationError):
        return PermissionDeniedError(
            _redact(
                f"{where}: authentication failed ({exc.message}); the identity needs "
                f"{required_role(action)}"
            )
        )
    if isinstance(exc, ResourceNotFoundError):
        return NotFoundError(_redact(f"{where}: not found ({_status_message(exc)})"))
    if isinstance(exc, ResourceExistsError):
        return ConflictError(_redact(f"{where}: conflict ({_status_message(exc)})"))
    if isinstance(exc, IncompleteReadError):
        return TransientRegistryError(_redact(f"{where}: connection dropped mid-response ({exc})"))
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status = exc.status_code
        text = _redact(f"{where}: {_status_message(exc)}")
        if status in (401, 403):
            return PermissionDeniedError(f"{text}; the identity needs {required_role(action)}")
        if status == 404:
            return NotFoundError(text)
        if status in (405, 409):
            return ConflictError(f"{text} (locked: write or delete is disabled, or it exists)")
        if status in (408, 429) or status >= 500:
            return TransientRegistryError(text)
        return RegistryError(text)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientRegistryError(_redact(f"{where}: {exc.message or exc}"))
    if isinstance(exc, DigestValidationError):
        return RegistryError(_redact(f"{where}: digest mismatch: {exc}"))
    if isinstance(exc, AzureError):
        return RegistryError(_redact(f"{where}: {exc.message or exc}"))
    return RegistryError(_redact(f"{where}: unexpected response ({type(exc).__name__}: {exc})"))


# ---------------------------------------------------------------------------------------------
# The adapter
# ---------------------------------------------------------------------------------------------
CredentialSpec = Literal["default", "anonymous"] | TokenCredential


class AcrRegistry:
    """`retag.registry.Registry` for Azure Container Registry (and our emulator).

    One `ContainerRegistryClient`, transport and token cache per instance; thread-safe (the
    prune executor shares one instance between threads). Build one per process (`registry_for`).

    `credential`: "default" (`DefaultAzureCredential`, honours AZURE_CLIENT_ID), "anonymous"
    (ACR anonymous pull, the emulator, public registries) or any `TokenCredential`.
    `ca_bundle`: CA file for TLS (never taken from REQUESTS_CA_BUNDLE implicitly).
    `deadline_seconds` bounds each registry call (retries, `Retry-After` and token calls included;
    each page of a listing is one call). `page_size` is the `n` of listings (default `PAGE_SIZE`).
    `clock` (Unix seconds) is only for tests of token expiry.
    """

    def __init__(
        self,
        login_server: str,
        *,
        credential: CredentialSpec,
        audience: str = DEFAULT_AUDIENCE,
        ca_bundle: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        retry_total: int = 3,
        deadline_seconds: float = 20.0,
        retry_backoff_factor: float = 0.5,
        retry_backoff_max: float = 8.0,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._login_server = _normalise_login_server(login_server)
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("deadline_seconds", deadline_seconds),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
        if retry_total < 0:
            raise ValueError(f"retry_total must be >= 0, got {retry_total!r}")
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000, got {page_size!r}")
        self._page_size = page_size
        if ca_bundle and not os.path.isfile(ca_bundle):
            raise ValueError(f"ca_bundle {ca_bundle!r} is not a readable file (a PEM CA bundle)")
        token_credential: TokenCredential | None
        if credential == "default":
            from azure.identity import DefaultAzureCredential

            token_credential = DefaultAzureCredential()
        elif credential == "anonymous":
            token_credential = None
        elif isinstance(credential, str) or not hasattr(credential, "get_token"):
            raise ValueError(
                "credential must be 'default', 'anonymous' or a TokenCredential, "
                f"got {credential!r}"
            )
        else:
            token_credential = credential
        self._anonymous = token_credential is None
        endpoint = "https://" + self._login_server
        self._counter = RequestCounter()
        self._authenticator = _Authenticator(
            endpoint, token_credential, audience.rstrip("/") + "/.default", clock
        )
        # requests re-reads proxies, .netrc and CA variables from the environment on every request
        # (~1 ms each here); we talk to one host, so resolve them once (same outcome) instead.
        verify, proxies = _environment_settings(self._login_server, ca_bundle)
        inner = RequestsTransport(
            connection_timeout=connect_timeout,
            read_timeout=read_timeout,
            connection_verify=verify,
            use_env_settings=False,
        )
        inner.open()  # create the session now, not racily from the first worker threads
        self._transport = _AcrTransport(
            inner,
            host=self._login_server,
            authenticator=self._authenticator,
            counter=self._counter,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline_seconds=deadline_seconds,
        )
        self._client = ContainerRegistryClient(
            endpoint,
            token_credential,
            audience=audience,
            transport=self._transport,
            per_call_policies=[_DeadlinePolicy(deadline_seconds)],
            retry_total=retry_total,
            retry_backoff_factor=retry_backoff_factor,
            retry_backoff_max=retry_backoff_max,
            timeout=deadline_seconds,
            user_agent="acr-retag",
            proxies=proxies,
        )

    @classmethod
    def from_settings(cls, settings: RegistrySettings, **options: Any) -> AcrRegistry:
        """An adapter for the app settings (`ACR_LOGIN_SERVER`, `ACR_CREDENTIAL`, `ACR_AUDIENCE`,
        `ACR_CA_BUNDLE`); `options` are the keyword arguments of the constructor (timeouts...)."""
        return cls(
            settings.login_server,
            credential=settings.credential,
            audience=settings.audience,
            ca_bundle=settings.ca_bundle,
            **options,
        )

    # -- housekeeping --------------------------------------------------------------------------
    @property
    def login_server(self) -> str:
        return self._login_server

    @property
    def endpoint(self) -> str:
        return "https://" + self._login_server

    @property
    def requests_made(self) -> int:
        """HTTP requests sent so far (token calls included)."""
        return self._counter.count

    @property
    def counter(self) -> RequestCounter:
        """The live counter; `by_kind` splits it, e.g. `{"GET v2/manifests": 3, ...}`."""
        return self._counter

    def close(self) -> None:
        self._client.close()
        self._transport.close()  # the client's close() leaves the shared transport open

    def __enter__(self) -> AcrRegistry:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "anonymous" if self._anonymous else "token"
        return f"AcrRegistry({self._login_server!r}, {mode})"

    @contextmanager
    def _mapped(self, action: str, target: str) -> Iterator[None]:
        try:
            yield
        except RegistryError:
            raise
        except (AzureError, ValueError, KeyError) as exc:
            raise _map_exception(exc, action, target, self._login_server) from exc

    def _fail(self, action: str, target: str, message: str) -> NoReturn:
        raise RegistryError(_redact(f"{action} {target} on {self._login_server}: {message}"))

    # -- manifests -----------------------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest by tag or digest, byte-exact (the SDK keeps only the parsed JSON, so the
        raw 200 response is captured with `raw_response_hook`)."""
        target = f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
        captured: dict[str, Any] = {}

        def capture(pipeline_response: Any) -> None:
            response = pipeline_response.http_response
            if response.status_code == 200:
                captured["raw"] = response.read()
                captured["content_type"] = response.headers.get("Content-Type")

        with self._mapped("pull", target):
            result = self._client.get_manifest(repository, reference, raw_response_hook=capture)
        raw = captured.get("raw")
        if not isinstance(raw, bytes):
            self._fail("pull", target, "the manifest response body was not captured")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if digest != result.digest:
            self._fail("pull", target, f"body digest {digest} != registry digest {result.digest}")
        media_type = _media_type(captured.get("content_type") or result.media_type)
        if not media_type:
            self._fail("pull", target, "the registry sent no Content-Type for the manifest")
        return Manifest(raw=raw, media_type=media_type, digest=digest)

    def put_manifest(self, repository: str, manifest: Manifest, tag: str) -> str:
        """PUT `manifest.raw` unchanged under `tag` with its media type; returns the registry's
        digest (the SDK checks it against the bytes sent, so re-serialisation cannot slip in)."""
        with self._mapped("push", f"{repository}:{tag}"):
            return self._client.set_manifest(
                repository, io.BytesIO(manifest.raw), tag=tag, media_type=manifest.media_type
            )

    def get_manifest_info(self, repository: str, digest: str) -> ManifestInfo:
        target = f"{repository}@{digest}"
        with self._mapped("metadata_read", target):
            body = self._get_json(f"/acr/v1/{_quote(repository)}/_manifests/{_quote(digest)}")
            entry = body.get("manifest")
            if not isinstance(entry, Mapping):
                self._fail("metadata_read", target, "the registry sent no manifest attributes")
            return manifest_info_from_json(entry)

    def list_manifests(self, repository: str) -> Iterator[ManifestInfo]:
        path = f"/acr/v1/{_quote(repository)}/_manifests"
        yield from self._paged(path, {}, "manifests", repository, manifest_info_from_json)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest (and with it every tag on it). Missing: no error."""
        if not digest.startswith("sha256:"):
            raise ValueError(f"delete_manifest needs a digest (sha256:...), got {digest!r}")
        with self._mapped("delete", f"{repository}@{digest}"):
            self._client.delete_manifest(repository, digest)

    # -- tags ----------------------------------------------------------------------------------
    def get_tag(self, repository: str, tag: str) -> TagInfo:
        with self._mapped("metadata_read", f"{repository}:{tag}"):
            props = self._client.get_tag_properties(repository, tag)
            return TagInfo(
                name=props.name,
                digest=props.digest,
                created_on=_utc(props.created_on),
                last_updated_on=_utc(props.last_updated_on),
                can_delete=props.can_delete is not False,
                can_write=props.can_write is not False,
            )

    def list_tags(self, repository: str, *, digest: str | None = None) -> Iterator[TagInfo]:
        """Every tag (pages of `page_size`, following `Link`); with `digest`, only the tags on it
        (ACR's `_tags?digest=` filter). No `orderby`: the registry's default order, as before.

        Same request as the SDK's `list_tag_properties(results_per_page=n, digest=...)`, but the
        JSON is read directly (`tag_info_from_json`) instead of through the SDK's deserializer."""
        query = {} if digest is None else {"digest": digest}
        path = f"/acr/v1/{_quote(repository)}/_tags"
        yield from self._paged(path, query, "tags", repository, tag_info_from_json)

    def delete_tag(self, repository: str, tag: str) -> None:
        """Delete the tag only (the manifest stays). A tag that is already gone is not an error."""
        with self._mapped("delete", f"{repository}:{tag}"):
            self._client.delete_tag(repository, tag)

    # -- repositories --------------------------------------------------------------------------
    def list_repositories(self) -> Iterator[str]:
        with self._mapped("catalog", "repositories"):
            yield from self._client.list_repository_names(results_per_page=self._page_size)

    # -- pushing (CLI `push-sample`, demo) -------------------------------------------------------
    def push_image(
        self,
        repository: str,
        tag: str,
        config: bytes,
        layers: list[bytes],
        *,
        media_type: str = OCI_MANIFEST,
    ) -> str:
        """Upload the config and layer blobs, then PUT an image manifest under `tag`.

        Docker v2 manifests are written with 3-space indentation, like `docker push` does.
        Returns the manifest digest.
        """
        if media_type == OCI_MANIFEST:
            config_type, layer_type, indent = _OCI_CONFIG, _OCI_LAYER, None
        elif media_type == DOCKER_MANIFEST:
            config_type, layer_type, indent = _DOCKER_CONFIG, _DOCKER_LAYER, 3
        else:
            raise ValueError(f"push_image supports {OCI_MANIFEST} and {DOCKER_MANIFEST}")
        descriptors = []
        with self._mapped("push", f"{repository}:{tag}"):
            for blob in (config, *layers):
                digest, size = self._client.upload_blob(repository, io.BytesIO(blob))
                descriptors.append({"digest": digest, "size": size})
        document = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, **descriptors[0]},
            "layers": [{"mediaType": layer_type, **d} for d in descriptors[1:]],
        }
        raw = json.dumps(document, indent=indent).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        pushed = self.put_manifest(repository, Manifest(raw, media_type, digest), tag)
        if pushed != digest:
            self._fail("push", f"{repository}:{tag}", f"registry digest {pushed} != {digest}")
        return pushed

    # -- raw JSON through the same pipeline (tokens, retries, counting, deadline) ---------------
    def _get_json(self, path: str) -> dict[str, Any]:
        response = self._send_get(path)
        return _json_object(response)

    def _send_get(self, path_or_url: str) -> Any:
        request = HttpRequest("GET", path_or_url, headers={"Accept": "application/json"})
        # `_client` is the generated client; `send_request` runs our request through the same
        # pipeline (retry, deadline, auth, counting) and leaves error handling to us.
        response = self._client._client.send_request(request)
        if response.status_code != 200:
            response.read()
            raise _http_error(response)
        return response

    def _paged(
        self,
        path: str,
        query: Mapping[str, str],
        field: str,
        target: str,
        parse: Callable[[Mapping[str, Any]], _T],
    ) -> Iterator[_T]:
        """The entries of `field` of every page of an ACR listing (a metadata read), each made
        into a `_T` by `parse`, one page in memory at a time. Entries that are not JSON objects
        are skipped; an entry `parse` refuses (RegistryError) fails the listing.

        The first request is `path?n=<page_size>&<query>` (values percent-encoded like the SDK's
        query serializer, `quote(value, safe="")`); the next ones follow `Link` verbatim, relative
        links resolved against the endpoint by the same `format_url` the SDK's pager uses."""
        action = "metadata_read"
        url: str | None = f"{path}?n={self._page_size}" + "".join(
            f"&{name}={_quote(value)}" for name, value in query.items()
        )
        while url is not None:
            with self._mapped(action, target):
                response = self._send_get(url)
                body = _json_object(response)
                next_link = _next_link(response.headers.get("Link"))
            entries = body.get(field) or []
            if not isinstance(entries, list):
                self._fail(action, target, f"'{field}' in the listing is not a list")
            for entry in entries:
                if isinstance(entry, Mapping):
                    try:
                        item = parse(entry)
                    except RegistryError as exc:
                        self._fail(action, target, str(exc))
                    yield item
            if next_link == url:  # would loop forever (the SDK's pager would)
                self._fail(action, target, f"the listing's next link is the same page: {url}")
            url = next_link


def _quote(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")


def _json_object(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise RegistryError(f"the registry sent invalid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise RegistryError("the registry sent JSON that is not an object")
    return body


def _next_link(header: str | None) -> str | None:
    """The URL of `Link: <url>; rel="next"` (relative to the registry), or None.

    The SDK's pager takes the first `<...>` of the header whatever its `rel`; we take the
    `rel="next"` link, and a bare `<url>` (no parameters at all) like the SDK does."""
    if not header:
        return None
    for part in header.split(","):
        match = re.match(r"\s*<([^>]*)>\s*(?:;(.*))?$", part)
        if match is None:
            continue
        params = match.group(2)
        if params is None or not params.strip() or re.search(r'rel\s*=\s*"?next"?', params):
            return match.group(1) or None
    return None


def _http_error(response: Any) -> HttpResponseError:
    status = response.status_code
    error_type: type[HttpResponseError]
    if status == 401:
        error_type = ClientAuthenticationError
    elif status == 404:
        error_type = ResourceNotFoundError
    elif status == 409:
        error_type = ResourceExistsError
    else:
        error_type = HttpResponseError
    return error_type(response=response)


def _normalise_login_server(value: str) -> str:
    text = value.strip()
    if text.lower().startswith("https://"):
        text = text[len("https://") :]
    text = text.rstrip("/")
    if text.lower().startswith("http://"):
        raise ValueError(
            f"login server {value!r}: plain HTTP is not supported (the SDK requires HTTPS)"
        )
    if not text or "/" in text or any(c.isspace() for c in text) or "@" in text:
        raise ValueError(
            f"login server {value!r} is not a host name such as myregistry.azurecr.io "
            "or 127.0.0.1:5443"
        )
    return text.lower()


_registries: dict[RegistrySettings, AcrRegistry] = {}
_registries_lock = threading.Lock()


def registry_for(settings: RegistrySettings) -> AcrRegistry:
    """The process-wide `AcrRegistry` for `settings`: built once per worker process (client,
    credential, connection pool and token cache are then reused by every invocation), thread-safe.
    """
    registry = _registries.get(settings)
    if registry is not None:
        return registry
    with _registries_lock:
        registry = _registries.get(settings)
        if registry is None:
            registry = _registries[settings] = AcrRegistry.from_settings(settings)
        return registry


def _environment_settings(host: str, ca_bundle: str | None) -> tuple[str | bool, dict[str, str]]:
    """TLS verification and proxies for `host`, as requests would derive them per request.

    An explicit `ca_bundle` wins; else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, else the default
    trust store (certifi). Proxies come from HTTPS_PROXY/HTTP_PROXY unless NO_PROXY covers `host`.
    """
    import urllib.request

    verify: str | bool = (
        ca_bundle
        or os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or True
    )
    proxies = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https")}
    if proxies and urllib.request.proxy_bypass(host.rsplit(":", 1)[0]):
        proxies = {}
    return verify, proxies


# ---------------------------------------------------------------------------------------------
# Credential check (used by `acr-retag doctor`)
# ---------------------------------------------------------------------------------------------
def check_credential(registry: AcrRegistry) -> float | None:
    """Acquire a Microsoft Entra token for the registry audience with the adapter's credential.

    Returns the token's expiry (Unix seconds), or None for an anonymous adapter. The token is
    discarded: it is never returned, logged or put in a message. Raises PermissionDeniedError
    naming the scope when no token can be obtained (no `az login`, no managed identity, ...).
    The credential caches the token, so the registry calls that follow do not fetch it again.
    """
    authenticator = registry._authenticator
    credential = authenticator._credential
    if credential is None:
        return None
    scope = authenticator._aad_scope
    try:
        expires_on = credential.get_token(scope).expires_on
    except ClientAuthenticationError as exc:
        raise PermissionDeniedError(
            _redact(f"could not get a Microsoft Entra token for {scope}: {exc.message}")
        ) from exc
    except (AzureError, ValueError, OSError) as exc:
        raise PermissionDeniedError(
            _redact(f"could not get a Microsoft Entra token for {scope}: {exc}")
        ) from exc
    return float(expires_on)
