"""The one log-line format, and text for reports: one line, quoted when it must be, never a token.

Every outcome and summary line is `acr-retag <kind> key=value ...`, built by `line()`, logged by
the one logger `LOGGER` (name `acr-retag`) at the level `level_for()` gives its outcome. Values:
booleans `true|false`, numbers as they are, durations as `duration_ms`, identifiers plain or
JSON-quoted, free text (`reason`, `error`, ...) always JSON-quoted. Values that come from outside
(event ids, repository names, error messages) go through here, so a crafted value can neither
forge a second line or field nor carry a credential into the logs:

- `format_field` for identifiers: plain when they are plain, JSON-quoted otherwise, `-` for none;
- `format_text` for free text (reasons, errors): always JSON-quoted, optionally clipped;
- both `redact` token-shaped text first (JWTs, bearer/basic credentials, `token=...` pairs).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping

LOGGER_NAME = "acr-retag"
LOGGER = logging.getLogger(LOGGER_NAME)
"""The one logger every acr-retag line goes to (Function App, CLI, timers)."""

TEXT_KEYS = frozenset({"reason", "error", "cause", "detail", "message", "hint"})
"""Keys whose values are free text: always JSON-quoted, clipped to `TEXT_LIMIT`."""
TEXT_LIMIT = 300

_LEVELS = {
    "ok": logging.INFO,
    "retagged": logging.INFO,
    "tagged": logging.INFO,
    "ignored": logging.INFO,
    "in-sync": logging.INFO,
    "rejected": logging.WARNING,
    "skipped": logging.WARNING,
    "failed": logging.ERROR,
}

_PLAIN_VALUE_RE = re.compile(r"[A-Za-z0-9._:/@+-]+")
_SECRET_PATTERNS = (
    # JWTs (ACR access and refresh tokens, Entra ID tokens).
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)\b(access_token|refresh_token|password|client_secret|secret|token|sig)"
        r"([\"']?\s*[=:]\s*[\"']?)[^\s&,;\"']+"
    ),
)


def redact(text: str) -> str:
    """`text` with every token-shaped part replaced by `[redacted]`."""
    text = _SECRET_PATTERNS[0].sub("[redacted]", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)} [redacted]", text)
    return _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)


def format_field(value: str | None) -> str:
    """A `key=value` value: `-` for None, else redacted, and JSON-quoted unless it is plain
    (`-` itself is quoted, so it cannot be mistaken for None)."""
    if value is None:
        return "-"
    value = redact(value)
    if value != "-" and _PLAIN_VALUE_RE.fullmatch(value):
        return value
    return json.dumps(value)


def format_text(text: str, limit: int | None = None) -> str:
    """Free text as a `key="..."` value: redacted, clipped to `limit` characters, JSON-quoted."""
    return json.dumps(clip(redact(text), limit))


def format_value(key: str, value: object) -> str:
    """One `key=value` value in the one format: None `-`, booleans `true|false`, ints as they
    are, floats with one decimal, text keys (`TEXT_KEYS`) via `format_text`, the rest via
    `format_field`."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    if key in TEXT_KEYS:
        return format_text(str(value), TEXT_LIMIT)
    return format_field(str(value))


def line(kind: str, fields: Mapping[str, object]) -> str:
    """`acr-retag <kind> key=value ...` (keys in the order given, text values quoted)."""
    parts = ["acr-retag", kind]
    parts.extend(f"{key}={format_value(key, value)}" for key, value in fields.items())
    return " ".join(parts)


def level_for(outcome: str) -> int:
    """The log level of an outcome: INFO ok/ignored, WARNING rejected/skipped, ERROR failed."""
    return _LEVELS.get(outcome, logging.ERROR)


def one_line(text: object, limit: int = 400) -> str:
    """`str(text)` with whitespace collapsed (SDK messages span lines), clipped to `limit`."""
    return clip(" ".join(str(text).split()), limit)


def describe_error(error: BaseException) -> str:
    """`TypeName: message` on one line (at most 300 characters of message), or `TypeName`."""
    text = one_line(error, 300)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def clip(text: str, limit: int | None) -> str:
    """`text` cut to at most `limit` characters, ending in `...` when cut (None: unchanged)."""
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


SDK_LOGGERS = (
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "azure.containerregistry",
    "azure.eventgrid",
)


def quiet_sdk_logging(level: str | None = None) -> None:
    """Set the Azure SDK loggers to `level` (default WARNING; `RETAG_SDK_LOG_LEVEL`), so a re-tag
    writes our one outcome line to Application Insights, not multi-line request dumps."""
    numeric = logging.getLevelName((level or "WARNING").upper())
    if not isinstance(numeric, int):
        numeric = logging.WARNING
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(numeric)
