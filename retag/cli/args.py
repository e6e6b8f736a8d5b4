"""argparse `type=` converters shared by the CLI commands: a bad value is a usage error (exit 2)
with a message that names the accepted form."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import timedelta


def regex_argument(text: str) -> re.Pattern[str]:
    """A Python regular expression (callers full-match it against repository names)."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None


def int_argument(low: int, high: int | None = None) -> Callable[[str], int]:
    """A converter for a whole number from `low` to `high` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def duration_argument(text: str) -> timedelta:
    """`90s`, `30m`, `12h`, `7d` (see `retag.config.parse_duration`)."""
    from retag.settings import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
