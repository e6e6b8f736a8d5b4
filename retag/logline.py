"""Text for log lines and reports: one line, quoted when it must be, never a token. Pure.

The event path, reconciliation and pruning each log `key=value` lines (`acr-retag outcome=...`,
`acr-retag reconcile ...`, `prune repository=...`). Values that come from outside (event ids,
repository names, error messages) go through here, so a crafted value can neither forge a second
line or field nor carry a credential into the logs:

- `format_field` for identifiers: plain when they are plain, JSON-quoted otherwise, `-` for none;
- `format_text` for free text (reasons, errors): always JSON-quoted, optionally clipped;
- both `redact` token-shaped text first (JWTs, bearer/basic credentials, `token=...` pairs).
"""

from __future__ import annotations

import json
import re

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
    return json.dumps(_clip(redact(text), limit))


def one_line(text: object, limit: int = 400) -> str:
    """`str(text)` with whitespace collapsed (SDK messages span lines), clipped to `limit`."""
    return _clip(" ".join(str(text).split()), limit)


def describe_error(error: BaseException) -> str:
    """`TypeName: message` on one line (at most 300 characters of message), or `TypeName`."""
    text = one_line(error, 300)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _clip(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
