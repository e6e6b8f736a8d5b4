"""`python -m retag prune`: the prune engine of the `prune_tags` timer, from the command line.

`retag.cli.main` owns the top-level parser and calls `add_prune_parser(subparsers)` and
`run_prune(args)`. The flags mirror the PRUNE_* settings and override them for this run. Unlike
the timer, the command never deletes unless asked (`--mode delete`): PRUNE_MODE is ignored here,
so a settings file meant for the Function cannot make an exploratory run destructive.

Output: the human table on stdout (or `--json` with every item and its reason); progress on
stderr only when stderr is a terminal. Exit codes: 0 ok, 1 a deletion (or a listing) failed,
2 usage or settings error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TextIO

from retag.cli.args import duration_argument, int_argument, regex_argument

if TYPE_CHECKING:
    from retag.prune.job import Progress
    from retag.prune.report import PruneReport, RepositoryResult
    from retag.registry import Registry
    from retag.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DESCRIPTION = """\
Delete old tags (and, with --untagged, old untagged manifests) exactly as the prune_tags timer
does, with the same settings (PRUNE_*, RETAG_*, ACR_*), overridden by these flags.

Never deleted: source tags (RETAG_SOURCE_TAGS), every tag on a digest a source tag points to,
the newest --keep candidates, candidates younger than --min-age, locked tags and tags on locked
manifests. Untagged manifests are never deleted when an index in the repository references them
(multi-arch images), when they have a subject (signatures, SBOMs), are locked, or have an
unknown media type. The run is time-boxed (--max-duration); the next run continues.

Without --mode delete nothing is deleted: the default is a dry run that prints exactly the plan
delete mode would execute."""

EPILOG = """\
examples:
  python -m retag prune                                  # dry run with the settings
  python -m retag prune --keep 5 --min-age 3d --repository 'team/.*'
  python -m retag prune --mode delete --untagged --json > prune-report.json

exit codes: 0 ok, 1 a deletion or a repository listing failed, 2 usage or settings error"""


def add_prune_parser(subparsers: Any, **parser_kwargs: Any) -> argparse.ArgumentParser:
    """Add the `prune` subcommand to `subparsers` (from `ArgumentParser.add_subparsers()`).

    `parser_kwargs` go to `add_parser` (e.g. `parents=[common]`, `formatter_class=...`).
    Returns the new parser (call `set_defaults(handler=...)` on it as you need).
    """
    parser_kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prune",
        help="delete old generated tags (dry run unless --mode delete)",
        description=DESCRIPTION,
        epilog=EPILOG,
        **parser_kwargs,
    )
    add_prune_arguments(parser)
    return parser


def add_prune_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--mode",
        choices=("dry-run", "delete"),
        default="dry-run",
        help="dry-run (default: list, delete nothing) or delete (PRUNE_MODE is not used here)",
    )
    mode.add_argument(
        "--dry-run",
        dest="mode",
        action="store_const",
        const="dry-run",
        help="same as --mode dry-run",
    )
    parser.add_argument(
        "--keep", type=int_argument(0, 100_000), metavar="N", help="PRUNE_KEEP: newest kept"
    )
    parser.add_argument(
        "--min-age",
        type=duration_argument,
        metavar="DURATION",
        help="PRUNE_MIN_AGE, e.g. 30m, 12h, 7d",
    )
    parser.add_argument("--scope", choices=("generated", "all"), help="PRUNE_SCOPE")
    parser.add_argument(
        "--untagged",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="PRUNE_UNTAGGED: also delete old untagged manifests",
    )
    parser.add_argument(
        "--repository",
        type=regex_argument,
        metavar="REGEX",
        help="only repositories this regex fully matches (replaces PRUNE_REPOSITORIES)",
    )
    parser.add_argument(
        "--concurrency", type=int_argument(1, 64), metavar="N", help="PRUNE_CONCURRENCY"
    )
    parser.add_argument(
        "--max-duration", type=duration_argument, metavar="DURATION", help="PRUNE_MAX_DURATION"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with this run's flags applied."""
    prune = settings.prune
    changes: dict[str, Any] = {}
    for flag in ("keep", "min_age", "scope", "untagged", "concurrency", "max_duration"):
        value = getattr(args, flag, None)
        if value is not None:
            changes[flag] = value
    if getattr(args, "repository", None) is not None:
        changes["repositories"] = args.repository
    changes["mode"] = getattr(args, "mode", None) or "dry-run"
    return replace(settings, prune=replace(prune, **changes))


def run_prune(
    args: argparse.Namespace,
    *,
    settings: Settings | None = None,
    registry: Registry | None = None,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `prune` with parsed `args`; returns the exit code.

    `settings` (else loaded from `env`, else os.environ) and `registry` (else an `AcrRegistry`
    built from the settings) let `retag.cli.main` share its own; output goes to `stdout`/`stderr`.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    if settings is None:
        from retag.settings import SettingsError, load_settings

        try:
            settings = load_settings(env)
        except SettingsError as exc:
            print(f"acr-retag: error: settings: {exc}", file=err)
            return EXIT_USAGE
    settings = settings_for(args, settings)
    owned = None
    if registry is None:
        from retag.acr.client import AcrRegistry

        try:
            owned = AcrRegistry.from_settings(settings.registry)
        except ValueError as exc:
            print(f"acr-retag: error: registry: {exc}", file=err)
            return EXIT_USAGE
        registry = owned
    as_json = bool(getattr(args, "json", False))
    stream = _JsonStream(out) if as_json else None
    try:
        report = _run(settings, registry, err, stream)
    finally:
        if owned is not None:
            owned.close()
    if stream is not None:
        stream.finish(report)
    else:
        print(report.render_table(), end="", file=out)
    return EXIT_OK if report.ok else EXIT_FAILED


def _run(
    settings: Settings, registry: Registry, err: TextIO, stream: _JsonStream | None
) -> PruneReport:
    from retag.prune.job import prune_with_settings

    mode: Literal["dry-run", "delete"] = "delete" if settings.prune.mode == "delete" else "dry-run"
    progress = _ProgressLine(err) if _isatty(err) else None
    try:
        return prune_with_settings(
            registry, settings, mode=mode, progress=progress, on_repository=stream
        )
    finally:
        if progress is not None:
            progress.close()


class _JsonStream:
    """`--json` written as the run goes: one repository (every item with its reason) per line,
    then the run's totals. Memory stays bounded by the largest repository."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0
        out.write('{"repositories": [')

    def __call__(self, result: RepositoryResult) -> None:
        self.out.write(("," if self.count else "") + "\n  " + json.dumps(result.to_dict()))
        self.count += 1

    def finish(self, report: PruneReport) -> None:
        rest = report.to_dict()
        del rest["repositories"]
        self.out.write("\n], " + json.dumps(rest, indent=2)[1:].lstrip() + "\n")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _ProgressLine:
    """One self-overwriting status line on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.width = 0

    def __call__(self, p: Progress) -> None:
        text = (
            f"prune: {p.repository} {p.done}/{p.planned}  total deleted {p.deleted_total}"
            f"  failed {p.failed_total}  repositories done {p.repositories_done}"
            f"  {p.elapsed_seconds:.0f}s"
        )
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def main(
    argv: list[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Standalone entry (tests, or before `retag.cli.main` wires the command)."""
    parser = argparse.ArgumentParser(prog="acr-retag prune", description=DESCRIPTION, epilog=EPILOG)
    add_prune_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_prune(args, env=env, stdout=stdout, stderr=stderr)
