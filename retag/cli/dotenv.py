"""A small, strict `.env` parser (pure: text in, mapping out).

Accepted lines, one setting per line:

    # a comment                      (whole-line comments and blank lines are skipped)
    KEY=value                        (surrounding whitespace is trimmed)
    export KEY=value                 (a leading `export ` is allowed, as in shell files)
    KEY=value  # trailing comment    (only when `#` follows whitespace in an unquoted value)
    KEY='literal $value # kept'      (single quotes: everything literal)
    KEY="line\\nbreak \\"quoted\\""     (double quotes: \\n \\t \\" \\\\ escapes)
    KEY=                             (empty value)

There is no variable interpolation and no multi-line value. A line that is none of the above is
an error naming the file and line number, so a typo never silently becomes a setting. Errors never
quote a value (a .env file may hold secrets).
"""

from __future__ import annotations

import re

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class DotenvError(ValueError):
    """A line of a .env file that is not `KEY=VALUE`."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}")
        self.source = source
        self.line = line


def parse_dotenv(text: str, source: str = ".env") -> dict[str, str]:
    """Parse `.env` text into a dict (later lines win). Raises DotenvError."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep:
            raise DotenvError(source, number, "expected KEY=VALUE (no '=' on this line)")
        if not _KEY.fullmatch(key):
            raise DotenvError(
                source, number, f"invalid name {_clip(key)!r} (letters, digits and _ only)"
            )
        values[key] = _parse_value(rest.strip(), source, number)
    return values


def _parse_value(text: str, source: str, number: int) -> str:
    if not text:
        return ""
    quote = text[0]
    if quote == "'":
        end = text.find("'", 1)
        if end < 0:
            raise DotenvError(source, number, "unterminated single-quoted value")
        _check_tail(text[end + 1 :], source, number)
        return text[1:end]
    if quote == '"':
        out: list[str] = []
        index = 1
        while index < len(text):
            char = text[index]
            if char == "\\" and index + 1 < len(text):
                following = text[index + 1]
                out.append(_ESCAPES.get(following, "\\" + following))
                index += 2
                continue
            if char == '"':
                _check_tail(text[index + 1 :], source, number)
                return "".join(out)
            out.append(char)
            index += 1
        raise DotenvError(source, number, "unterminated double-quoted value")
    # Unquoted: an inline comment starts at whitespace followed by '#'.
    match = re.search(r"\s#", text)
    if match:
        text = text[: match.start()]
    return text.strip()


def _check_tail(tail: str, source: str, number: int) -> None:
    tail = tail.strip()
    if tail and not tail.startswith("#"):
        raise DotenvError(source, number, "unexpected text after the closing quote")


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
