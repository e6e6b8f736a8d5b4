"""SDK / azure-core exceptions -> the `retag.registry` error hierarchy, with one-line messages.

Every message names the action, the target and the registry (`push team/app:v2 on myreg...`),
the HTTP status and ACR's error code when there is one, and, for permission errors, the role to
grant (`retag.registry.required_role`, the one role table). Text is redacted (`logline.redact`).

Statuses and exception types are those azure-containerregistry 1.2.0 raises (design.md §1):
401 `ClientAuthenticationError`, 404 `ResourceNotFoundError`, 409 `ResourceExistsError`, the rest
`HttpResponseError` (ACR code in `e.model.errors[0].code`); ACR answers a write to a locked
artifact with 405 and throttles with 429.
"""

from __future__ import annotations

import json
from typing import Any

from azure.containerregistry import DigestValidationError
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from retag.acr.auth import RegistryAuthError
from retag.acr.transport import TlsVerificationError
from retag.acr.wire import WireError, error_detail
from retag.logline import clip, redact
from retag.registry import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RegistryError,
    TransientRegistryError,
    required_role,
)


def status_message(exc: HttpResponseError) -> str:
    """`HTTP 503 Service Unavailable: UNKNOWN the detail` (ACR's code and message when sent)."""
    detail = ""
    errors = getattr(getattr(exc, "model", None), "errors", None)
    if errors:
        code = getattr(errors[0], "code", None) or ""
        message = getattr(errors[0], "message", None) or ""
        detail = clip(" ".join(part for part in (str(code), str(message)) if part), 300)
    elif exc.response is not None:
        detail = error_detail(exc.response)
    reason = exc.reason or ""
    text = f"HTTP {exc.status_code}" + (f" {reason}" if reason else "")
    return text + (f": {detail}" if detail else "")


def http_error(response: Any) -> HttpResponseError:
    """The exception the SDK would raise for a non-2xx `response` of a raw request."""
    error_type: type[HttpResponseError]
    status = response.status_code
    if status == 401:
        error_type = ClientAuthenticationError
    elif status == 404:
        error_type = ResourceNotFoundError
    elif status == 409:
        error_type = ResourceExistsError
    else:
        error_type = HttpResponseError
    return error_type(response=response)


def _error_code(exc: HttpResponseError) -> str | None:
    """ACR's error code (`errors[0].code`) when the answer carried one."""
    errors = getattr(getattr(exc, "model", None), "errors", None)
    if errors:
        return str(getattr(errors[0], "code", None) or "") or None
    if exc.response is not None:
        try:
            body = json.loads(exc.response.text())
        except ValueError:  # not JSON: no code
            return None
        listed = body.get("errors") if isinstance(body, dict) else None
        if isinstance(listed, list) and listed and isinstance(listed[0], dict):
            code = listed[0].get("code")
            return code if isinstance(code, str) else None
    return None


def _for_status(exc: HttpResponseError, where: str, action: str) -> RegistryError:
    status = exc.status_code or 0
    text = redact(f"{where}: {status_message(exc)}")
    if status in (401, 403):
        return PermissionDeniedError(f"{text}; the identity needs {required_role(action)}")
    if status == 404:
        return NotFoundError(text)
    if status == 405 and _error_code(exc) == "UNSUPPORTED":
        # 405 UNSUPPORTED ("A manifest can only be deleted by digest."): not a lock.
        return RegistryError(f"{text} (the registry does not support this operation)")
    if status in (405, 409):
        return ConflictError(f"{text} (locked: write or delete is disabled, or it exists)")
    if status in (408, 429) or status >= 500:
        return TransientRegistryError(text)
    return RegistryError(text)


def map_exception(
    exc: Exception, action: str, target: str, login_server: str, *, attempts: int = 1
) -> RegistryError:
    """Translate an SDK/azure-core exception into the `retag.registry` error hierarchy.

    `attempts` (the transport's count for the call) is named when the call was retried."""
    where = f"{action} {target} on {login_server}"
    if isinstance(exc, WireError):
        return RegistryError(redact(f"{where}: {exc}"))
    if isinstance(exc, RegistryAuthError):
        return PermissionDeniedError(
            redact(
                f"{where}: permission denied ({exc.message}); the identity needs "
                f"{required_role(exc.scope or action)}"
            )
        )
    if isinstance(exc, ClientAuthenticationError):
        return PermissionDeniedError(
            redact(
                f"{where}: authentication failed ({exc.message}); the identity needs "
                f"{required_role(action)}"
            )
        )
    if isinstance(exc, TlsVerificationError):
        return RegistryError(redact(f"{where}: {exc.message}"))
    if isinstance(exc, ResourceNotFoundError):
        return NotFoundError(redact(f"{where}: not found ({status_message(exc)})"))
    if isinstance(exc, ResourceExistsError):
        return ConflictError(redact(f"{where}: conflict ({status_message(exc)})"))
    if isinstance(exc, IncompleteReadError):
        return TransientRegistryError(redact(f"{where}: connection dropped mid-response ({exc})"))
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        error = _for_status(exc, where, action)
        if isinstance(error, TransientRegistryError) and attempts > 1:
            return TransientRegistryError(f"{error} (gave up after {attempts} attempts)")
        return error
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientRegistryError(redact(f"{where}: {exc.message or exc}"))
    if isinstance(exc, DigestValidationError):
        return RegistryError(redact(f"{where}: digest mismatch: {exc}"))
    if isinstance(exc, AzureError):
        return RegistryError(redact(f"{where}: {exc.message or exc}"))
    return RegistryError(redact(f"{where}: unexpected response ({type(exc).__name__}: {exc})"))
