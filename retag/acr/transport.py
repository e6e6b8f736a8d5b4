"""The one HTTP transport every registry request passes through, composed in one place.

Like go-containerregistry's `pkg/v1/remote/transport`, one concern per layer, outermost first:

    send(request)                 the call's deadline (`deadline_seconds`, within `time_budget`)
      -> _with_retries            THE retry layer: 408/429/5xx, resets, timeouts; Retry-After
        -> _with_bearer           ACR token auth with a per-scope cache (`auth.Authenticator`)
          -> _attempt             one HTTP attempt: timeouts capped to the time left, counted
                                  (`retag.registry.note_request`), TLS failures made permanent

Why a transport and not policies: every keyword given to `ContainerRegistryClient` also reaches
the SDK's internal token-exchange client, which builds a second pipeline from the same keywords,
so a forwarding `HTTPPolicy` (its `next` link is per instance) cannot be injected; a transport can
be shared (the SDK shares its own). The SDK's challenge policy stays in its pipeline but never sees
a `401` (we answer it, or raise `RegistryAuthError`), and its `RetryPolicy` is replaced by a no-op
(`NO_RETRY`), so no retry is stacked under or over this one.

Limits: the read timeout bounds each socket read; a server dribbling bytes slower than that is not
cut off mid-body. A retry whose delay would end past the deadline is not attempted: the call fails
at once with the reason (`DeadlineExceeded`).
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.rest import HttpRequest

from retag.acr.auth import (
    Authenticator,
    RegistryAuthError,
    RequestClass,
    RetryableTokenFailure,
    classify_request,
    parse_bearer_challenge,
    widen_scope,
)
from retag.acr.wire import error_detail
from retag.registry import budget_deadline, note_request

NO_RETRY: SansIOHTTPPolicy[Any, Any] = SansIOHTTPPolicy()
"""Given to the SDK as its `retry_policy`: a no-op, so azure-core's RetryPolicy never runs."""

RETRY_STATUSES = frozenset({408, 429, *range(500, 600)}) - {501, 505}
"""Answers worth another attempt (azure-core's RetryPolicy set: 408, 429, 5xx but 501/505)."""
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryRules:
    """`total` retries after the first attempt; delay `backoff_factor * 2**(retry-1)` capped at
    `backoff_max`, or what the registry's `Retry-After` asks for."""

    total: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 8.0

    def backoff(self, retry: int) -> float:
        return min(self.backoff_max, self.backoff_factor * 2.0 ** (retry - 1))


class TlsVerificationError(ServiceRequestError):
    """The registry's TLS certificate failed verification: permanent, never retried."""


class DeadlineExceeded(ServiceResponseTimeoutError):
    """The call's deadline passed, or the next retry would end past it: never retried."""


def retry_after(response: Any) -> float | None:
    """Seconds the registry asked us to wait (`retry-after-ms`, `Retry-After` seconds or date)."""
    headers = response.headers
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001)):
        value = headers.get(name)
        if value:
            try:
                return max(float(value) * scale, 0.0)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def certificate_failure(exc: BaseException) -> ssl.SSLError | None:
    """The `ssl` verification error somewhere under an azure-core / requests / urllib3 error."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return item
        if isinstance(item, ssl.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(item):
            return item
        pending.extend([item.__cause__, item.__context__, *item.args])
        pending.extend(getattr(item, name, None) for name in ("inner_exception", "reason"))
    return None


def trust_description(ca_bundle: str | None) -> str:
    """Which CAs verify the registry, for messages: ACR_CA_BUNDLE, else the system trust store."""
    if ca_bundle:
        return f"ACR_CA_BUNDLE ({ca_bundle})"
    env = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if env:
        return f"REQUESTS_CA_BUNDLE ({env}; ACR_CA_BUNDLE is unset)"
    return "the system trust store (ACR_CA_BUNDLE is unset)"


def environment_settings(host: str, ca_bundle: str | None) -> tuple[str | bool, dict[str, str]]:
    """TLS verification and proxies for `host`, as requests would derive them per request.

    An explicit `ca_bundle` wins; else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, else the default
    trust store (certifi). Proxies come from HTTPS_PROXY/HTTP_PROXY unless NO_PROXY covers `host`.
    requests re-reads these on every request (~1 ms each here); we talk to one host, so the
    adapter resolves them once (same outcome) and turns the per-request lookup off.
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


def _retryable_error(exc: AzureError, method: str, path: str) -> bool:
    if isinstance(exc, TlsVerificationError | DeadlineExceeded):
        return False
    if isinstance(exc, ServiceRequestError):
        return True  # never reached the registry
    if isinstance(exc, ServiceResponseError | IncompleteReadError):
        return method in _IDEMPOTENT or path.startswith("/oauth2/")
    return False


@dataclass(frozen=True)
class TransportOptions:
    """`host` is the registry (tokens go nowhere else); timeouts cap each attempt, the deadline
    each call; `trust` names the CAs that verify the registry, for TLS failure messages."""

    host: str
    connect_timeout: float
    read_timeout: float
    deadline_seconds: float
    retry: RetryRules
    trust: str


class AcrTransport(HttpTransport[Any, Any]):
    """Wraps `RequestsTransport`: deadline, retries, bearer auth and counting (module doc)."""

    def __init__(
        self, inner: RequestsTransport, authenticator: Authenticator, options: TransportOptions
    ) -> None:
        self._inner = inner
        self._auth = authenticator
        self._options = options
        self._host = options.host.lower()
        self._local = threading.local()

    @property
    def connection_config(self) -> Any:
        return self._inner.connection_config

    def open(self) -> None:
        self._inner.open()

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> AcrTransport:
        self._inner.open()
        return self

    def __exit__(self, *args: object) -> None:
        # Shared by several pipelines: only AcrRegistry.close() closes the session.
        return None

    def attempts(self) -> int:
        """HTTP attempts of this thread's last `send` (token calls not included)."""
        count: int = getattr(self._local, "attempts", 0)
        return count

    # -- layer 1: the call's deadline ----------------------------------------------------------
    def send(self, request: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self._options.deadline_seconds
        budget = budget_deadline()  # an enclosing `time_budget` (e.g. one event invocation)
        if budget is not None:
            deadline = min(deadline, budget)
        try:
            return self._with_retries(request, deadline, kwargs)
        finally:
            request.headers.pop("Authorization", None)

    # -- layer 2: the one retry layer ----------------------------------------------------------
    def _with_retries(self, request: Any, deadline: float, kwargs: dict[str, Any]) -> Any:
        rules = self._options.retry
        position = _body_position(request)
        method, path = request.method.upper(), urlsplit(request.url).path
        attempt = 0
        while True:
            attempt += 1
            self._local.attempts = attempt
            try:
                response = self._with_bearer(request, deadline, kwargs)
            except AzureError as exc:
                if not _retryable_error(exc, method, path):
                    raise  # permanent: auth refused, TLS, deadline passed, non-idempotent
                if attempt > rules.total:
                    given_up = _gave_up(exc, attempt)
                    if given_up is exc:
                        raise
                    raise given_up from exc
                delay, asked, last = rules.backoff(attempt), False, type(exc).__name__
            else:
                if response.status_code not in RETRY_STATUSES or attempt > rules.total:
                    return response  # success, a permanent answer, or out of retries
                asked_for = retry_after(response)
                delay = rules.backoff(attempt) if asked_for is None else asked_for
                asked, last = asked_for is not None, f"HTTP {response.status_code}"
            self._pause(delay, deadline, attempt, last, asked)
            if not _rewind(request, position):
                raise ServiceRequestError("cannot resend the request body for a retry")

    def _pause(self, delay: float, deadline: float, attempts: int, last: str, asked: bool) -> None:
        if time.monotonic() + delay >= deadline:
            why = (
                f"the registry asked to retry after {delay:.1f} s"
                if asked
                else f"the next retry (in {delay:.1f} s) would end"
            )
            raise DeadlineExceeded(
                f"gave up after {_attempts(attempts)}: {why}, past the "
                f"{self._options.deadline_seconds:g} s deadline of this call (last: {last})"
            )
        time.sleep(delay)

    # -- layer 3: ACR bearer tokens ------------------------------------------------------------
    def _with_bearer(self, request: Any, deadline: float, kwargs: dict[str, Any]) -> Any:
        parts = urlsplit(request.url)
        request_class = None
        if parts.scheme == "https" and parts.netloc.lower() == self._host:
            request_class = classify_request(request.method, parts.path)
        if request_class is None:
            return self._attempt(request, deadline, kwargs)
        try:
            return self._authorized(request, request_class, deadline, kwargs)
        except RetryableTokenFailure as failure:
            return failure.response  # the token endpoint's 429/5xx: the retry layer decides

    def _authorized(
        self, request: Any, request_class: RequestClass, deadline: float, kwargs: dict[str, Any]
    ) -> Any:
        # Token calls go the way the request goes: through the same proxy (HTTPS_PROXY), if any.
        token_kwargs = {k: v for k, v in kwargs.items() if k == "proxies"}

        def send_token_request(token_request: HttpRequest) -> Any:
            return self._attempt(token_request, deadline, token_kwargs)

        position = _body_position(request)
        request.headers.pop("Authorization", None)
        service, scope, _learned = self._auth.choose(request_class)
        if service is None:
            # First contact: ACR's token service is the login server itself.
            service = self._host
        # The repository's ONE token (every action a re-tag needs), asked for up front rather
        # than learned from a 401: a cold re-tag is exchange + token + the reads + the PUT. A
        # registry that disagrees refuses the token request; then the challenge below tells us.
        wide = widen_scope(scope)
        token: str | None = self._auth.cached(service, wide)
        if token is None:
            with contextlib.suppress(RegistryAuthError):
                token = self._auth.access_token(service, wide, send_token_request)
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = self._attempt(request, deadline, kwargs)
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
        # The repository's one token was refused. Expired or revoked (`invalid_token`): forget it
        # and fetch it again. It lacked the action (the identity's roles grant less than we asked
        # for: `insufficient_scope`): ask for exactly the challenge's scope instead.
        if token is not None:
            self._auth.invalidate(service, wide, token)
        self._auth.learn(request_class, challenge.service, new_scope)
        if token is None or challenge.error == "invalid_token":
            wide_scope = widen_scope(new_scope)
            try:
                token = self._auth.access_token(challenge.service, wide_scope, send_token_request)
                new_scope = wide_scope
            except RegistryAuthError:
                # Refused outright: ask for exactly what this request needs, so a refusal names
                # that scope (and the role that grants it).
                token = self._auth.access_token(challenge.service, new_scope, send_token_request)
        else:
            token = self._auth.access_token(challenge.service, new_scope, send_token_request)
        if not _rewind(request, position):
            raise RegistryAuthError(
                "cannot resend the request body after the authentication challenge", scope=new_scope
            )
        request.headers["Authorization"] = f"Bearer {token}"
        response = self._attempt(request, deadline, kwargs)
        if response.status_code == 401:
            self._auth.invalidate(challenge.service, new_scope, token)
            detail = error_detail(response)
            raise RegistryAuthError(
                f"the registry rejected a fresh token for '{new_scope}'"
                + (f": {detail}" if detail else ""),
                scope=new_scope,
                status=401,
            )
        return response

    # -- layer 4: one attempt ------------------------------------------------------------------
    def _attempt(self, request: Any, deadline: float, kwargs: dict[str, Any]) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            seconds = self._options.deadline_seconds
            raise DeadlineExceeded(f"gave up: the {seconds:g} s deadline of this call has passed")
        connect = kwargs.get("connection_timeout")
        read = kwargs.get("read_timeout")
        kwargs = {
            **kwargs,
            "connection_timeout": min(
                connect if isinstance(connect, int | float) else self._options.connect_timeout,
                remaining,
            ),
            "read_timeout": min(
                read if isinstance(read, int | float) else self._options.read_timeout, remaining
            ),
        }
        note_request()
        try:
            return self._inner.send(request, **kwargs)
        except AzureError as exc:
            failure = certificate_failure(exc)
            if failure is None:
                raise
            reason = getattr(failure, "verify_message", None) or failure.reason or str(failure)
            raise TlsVerificationError(
                f"TLS certificate verification failed for {self._host} ({reason}): the "
                f"registry's certificate is not trusted by {self._options.trust}; set "
                "ACR_CA_BUNDLE to a PEM bundle with the CA that issued it (not retried)",
                error=exc,
            ) from exc


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"


def _gave_up(exc: AzureError, attempts: int) -> AzureError:
    """`exc` again, its message saying how many attempts were made (same type when possible)."""
    message = f"gave up after {_attempts(attempts)}: {exc.message or type(exc).__name__}"
    if isinstance(exc, ServiceResponseError):
        return ServiceResponseError(message, error=exc)
    if isinstance(exc, ServiceRequestError):
        return ServiceRequestError(message, error=exc)
    return exc
