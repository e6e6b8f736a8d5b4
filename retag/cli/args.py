"""Argument types and the one help formatter of the CLI: a bad value is a usage error (exit 2)
with a message that names the accepted form."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from retag.cli.errors import usage_error
from retag.oci import digest_problem, repository_problem, tag_problem


class Formatter(argparse.RawDescriptionHelpFormatter):
    """The one help formatter: descriptions and examples kept as written, 100 columns."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def regex_argument(text: str) -> re.Pattern[str]:
    """A Python regular expression; every `--repository REGEX` full-matches repository names."""
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None


def repository_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--repository REGEX`, the same flag wherever it appears."""
    parser.add_argument(
        "--repository",
        type=regex_argument,
        metavar="REGEX",
        help=f"{help_text} (a regex that must match the whole repository name)",
    )


def mode_argument(
    parser: argparse.ArgumentParser, choices: tuple[str, str], help_text: str
) -> None:
    """`--mode {dry-run,CHANGE}` (default dry-run for prune, the second choice for reconcile is
    set by the caller's default) with `--dry-run` as an alias of `--mode dry-run`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--mode", choices=choices, help=help_text)
    group.add_argument(
        "--dry-run", dest="mode", action="store_const", const="dry-run", help="--mode dry-run"
    )


def json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (see docs/cli.md)"
    )


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
    """`90s`, `30m`, `12h`, `7d` (see `retag.settings.parse_duration`)."""
    from retag.settings import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_settings_arguments(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """--registry / --env-file, accepted before or after the command name. On subcommands the
    defaults are suppressed so a value given before the command name is not overwritten."""
    group = parser.add_argument_group("settings")
    default: Any = argparse.SUPPRESS if suppress else None
    group.add_argument(
        "--registry",
        metavar="LOGIN_SERVER",
        default=default,
        help="registry login server, e.g. myregistry.azurecr.io (overrides ACR_LOGIN_SERVER)",
    )
    group.add_argument(
        "--env-file",
        metavar="PATH",
        default=default,
        help="read settings from this KEY=VALUE file (default: ./.env if present); "
        "variables already set in the environment win",
    )


# -- values checked after parsing (usage errors, exit 2) --------------------------------------


def check_repository(name: str) -> str:
    return _checked("repository", name, repository_problem(name), " (e.g. myapp or team/myapp)")


def check_tag(tag: str) -> str:
    return _checked("tag", tag, tag_problem(tag))


def check_digest(digest: str) -> str:
    return _checked("digest", digest, digest_problem(digest))


def _checked(what: str, value: str, problem: str | None, example: str = "") -> str:
    if problem is not None:
        raise usage_error(f"{what} {value!r} {problem}{example}")
    return value


def split_reference(reference: str, default_tag: str = "latest") -> tuple[str, str]:
    """`repo[:tag]` -> (repo, tag); a ':' before the last '/' is not a tag separator."""
    if "@" in reference:
        raise usage_error(f"{reference!r}: give REPOSITORY[:TAG], not a digest")
    repository, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        repository, tag = reference, default_tag
    return check_repository(repository), check_tag(tag)
