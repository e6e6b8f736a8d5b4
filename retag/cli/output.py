"""The one output module of the CLI: the `--json` envelope, the table renderer, times and
durations.

Contract (docs/cli.md): `--json` prints ONE JSON object on stdout with at least `ok` (bool),
`command` and the command's data; durations are `duration_s` (seconds, rounded to ms), times
RFC 3339 UTC with `Z`, counts snake_case keys present even when zero. On an error the object is
still printed (`ok: false`, `error`), and stderr gets one `acr-retag: error: ...` line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from retag.timeutil import utc_iso

if TYPE_CHECKING:
    from retag.sweep import RunReport


def envelope(
    command: str, data: Mapping[str, Any], *, ok: bool, error: str | None = None
) -> dict[str, Any]:
    """`{"ok", "command", ...data, "error"}`: the command's data between the two. The envelope's
    `ok`/`error` win over the data's (a report that has its own)."""
    body = {key: value for key, value in data.items() if key not in ("ok", "command", "error")}
    return {"ok": ok, "command": command, **body, "error": error}


def emit_json(value: object, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    json.dump(value, stream, indent=2, sort_keys=False)
    stream.write("\n")


def emit(
    command: str, data: Mapping[str, Any], *, ok: bool = True, error: str | None = None
) -> None:
    """Print the command's envelope as JSON on stdout."""
    emit_json(envelope(command, data, ok=ok, error=error))


def table(headers: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing spaces; the header
    row first unless `headers` is None."""
    every = [list(headers), *rows] if headers is not None else list(rows)
    if not every:
        return ""
    widths = [max(len(row[i]) for row in every) for i in range(len(every[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in every
    ]
    return "\n".join(lines) + "\n"


def print_table(headers: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> None:
    sys.stdout.write(table(headers, rows))


def when(moment: datetime) -> str:
    """A time in the output: RFC 3339 UTC with `Z`, to the second."""
    return utc_iso(moment, "seconds")


def duration_s(seconds: float) -> float:
    """A duration in the output: seconds, rounded to the millisecond."""
    return round(seconds, 3)


class JsonStream:
    """The envelope written as a run goes (`prune --json`): `{"command": ..., "<key>": [` one
    item per line as it is done, then `], ...rest, "ok": ..., "error": ...}` once the run ends.
    Memory stays bounded by the largest item."""

    def __init__(self, command: str, key: str, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.key = key
        self.count = 0
        self.out.write("{" + f'"command": {json.dumps(command)}, {json.dumps(key)}: [')

    def item(self, value: Mapping[str, Any]) -> None:
        self.out.write(("," if self.count else "") + "\n  " + json.dumps(value))
        self.count += 1

    def finish(self, rest: Mapping[str, Any], *, ok: bool, error: str | None) -> None:
        tail = {k: v for k, v in rest.items() if k not in (self.key, "ok", "command", "error")}
        body = json.dumps({**tail, "ok": ok, "error": error}, indent=2)
        self.out.write("\n], " + body[1:].lstrip() + "\n")
        self.out.flush()


def run_outcome(report: RunReport, *, interrupted: bool = False) -> tuple[bool, str | None]:
    """`(ok, error)` of a run: the report's own, or interrupted when Ctrl-C came outside it."""
    if interrupted and not report.interrupted:
        return False, "interrupted: the report shows what was done before Ctrl-C"
    return report.ok, report.error
