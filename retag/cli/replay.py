"""`acr-retag replay FILE...`: saved or dead-lettered events through the on_image_pushed
handler, with these settings."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retag.cli.args import json_argument
from retag.cli.errors import EXIT_FAILED, EXIT_OK, print_error
from retag.cli.output import duration_s, emit
from retag.logline import one_line

if TYPE_CHECKING:
    from retag.cli.env import Context
    from retag.registry import Registry

HELP = "feed event files through the on_image_pushed handler"
DESCRIPTION = """\
Read each FILE (one event or an array; Event Grid schema or CloudEvents; dead-lettered
event blobs downloaded from storage) and run every event through exactly the handler
of the on_image_pushed Function, with these settings. Prints one outcome per event.
Exit 1 if any event was rejected or failed (ignored events are fine)."""
EPILOG = """\
examples:
  acr-retag replay samples/events/image-pushed-latest.json
  az storage blob download-batch -d deadletters -s deadletter ... && \\
    acr-retag replay deadletters/**/*.json
"""

STATUSES = ("retagged", "ignored", "rejected", "failed", "unreadable")
"""Every count the summary carries (present even when zero)."""
OUTCOME_FIELDS = (
    "status",
    "reason",
    "event_id",
    "repository",
    "source_tag",
    "digest",
    "new_tag",
    "duration_ms",
    "requests",
)
"""The outcome's fields in `--json` (`duration_ms` written as `duration_s`, the contract's unit)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", metavar="FILE", nargs="+")
    json_argument(parser)


class _OutcomeLines(logging.Handler):
    """Collects the outcome lines handle_event logs (the Function's exact log line)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run(args: argparse.Namespace, ctx: Context) -> int:
    from retag.events import parse_payload
    from retag.on_push import handle_event
    from retag.registry import TransientRegistryError

    settings = ctx.settings()
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    records: list[dict[str, Any]] = []
    # A private logger (not in the logging tree): each outcome line is printed exactly once.
    collected = _OutcomeLines()
    log = logging.Logger("acr-retag.replay", logging.DEBUG)
    log.addHandler(collected)

    def registry() -> Registry:
        return ctx.registry()

    for name in args.files:
        try:
            envelopes = parse_payload(Path(name).read_bytes())
        except OSError as exc:
            print_error(f"{name}: cannot read: {exc.strerror or one_line(exc)}")
            counts["unreadable"] += 1
            continue
        except ValueError as exc:
            print_error(f"{name}: not an event file: {one_line(exc)}")
            counts["unreadable"] += 1
            continue
        for index, envelope in enumerate(envelopes):
            collected.lines.clear()
            record: dict[str, Any] = {"file": name, "index": index}
            try:
                outcome = handle_event(envelope, settings, registry, log=log)
            except TransientRegistryError as exc:
                record.update(status="failed", retry=True, reason=one_line(exc))
            else:
                record.update({field: getattr(outcome, field, None) for field in OUTCOME_FIELDS})
                record["duration_s"] = duration_s(float(record.pop("duration_ms") or 0) / 1000)
            counts[record["status"]] = counts.get(record["status"], 0) + 1
            record["line"] = " ".join(collected.lines)
            records.append(record)
            if not args.json:
                for line in collected.lines:
                    print(f"{name}[{index}]: {line}")
    bad = counts["rejected"] + counts["failed"] + counts["unreadable"]
    error = f"{bad} event(s) or file(s) rejected, failed or unreadable" if bad else None
    events = sum(v for k, v in counts.items() if k != "unreadable")
    if args.json:
        summary = {"files": len(args.files), "event_count": events, "counts": counts}
        emit("replay", {**summary, "events": records}, ok=not bad, error=error)
    else:
        summary_text = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        print(
            f"replayed {events} event(s) from {len(args.files)} file(s): "
            f"{summary_text or 'nothing'}"
        )
    return EXIT_FAILED if bad else EXIT_OK
