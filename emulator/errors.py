"""Registry errors as they travel on the wire: `{"errors":[{"code","message","detail"}]}`."""

from __future__ import annotations

import json
from typing import Any

DISALLOWED_MESSAGE = (
    "The operation is disallowed on this registry, repository or image. View troubleshooting "
    "steps at https://aka.ms/acr/faq/#why-does-my-pull-or-push-request-fail-with-disallowed-operation"
)


class ApiError(Exception):
    """An error answer: HTTP status plus one registry error code."""

    def __init__(  # noqa: PLR0917 - mirrors the wire entry; call sites read naturally
        self,
        status: int,
        code: str,
        message: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
        more_details: list[Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})
        self.more_details = list(more_details or [])  # further entries with the same code

    def body(self) -> bytes:
        details = [self.detail, *self.more_details]
        return json.dumps(
            {"errors": [_entry(self.code, self.message, detail) for detail in details]}
        ).encode()


def _entry(code: str, message: str, detail: Any) -> dict[str, Any]:
    # ACR omits `detail` when it has none (e.g. TAG_UNKNOWN, NAME_UNKNOWN, UNSUPPORTED).
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return entry


def error_body(code: str, message: str, detail: Any = None) -> bytes:
    return json.dumps({"errors": [_entry(code, message, detail)]}).encode()


PAGE_NOT_FOUND = b"404 page not found\n"


def not_found(code: str, message: str, detail: Any = None) -> ApiError:
    return ApiError(404, code, message, detail)


def bad_request(code: str, message: str, detail: Any = None) -> ApiError:
    return ApiError(400, code, message, detail)


def disallowed(detail: Any = None) -> ApiError:
    """What ACR answers when a lock (writeEnabled/deleteEnabled=false) forbids the operation."""
    return ApiError(405, "REGISTRY_DISALLOWED_OPERATION", DISALLOWED_MESSAGE, detail)
