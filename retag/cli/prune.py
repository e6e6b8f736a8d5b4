"""`acr-retag prune`: the prune engine of the `prune_tags` timer, from the command line.

The flags mirror the PRUNE_* settings and override them for this run. Unlike the timer, the
command never deletes unless asked (`--mode delete`): PRUNE_MODE is ignored here, so a settings
file meant for the Function cannot make an exploratory run destructive. Output: the table on
stdout (or `--json`, streamed one repository per line); progress on stderr only on a terminal.
A run that did not do what it was asked ends `ok: false` with one `acr-retag: error:` line and
exit 1; Ctrl-C prints the partial report and exits 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TextIO

from retag.cli.args import (
    duration_argument,
    int_argument,
    json_argument,
    mode_argument,
    repository_argument,
)
from retag.cli.errors import finish_run
from retag.cli.output import JsonStream, run_outcome

if TYPE_CHECKING:
    from retag.cli.env import Context
    from retag.prune.job import Progress
    from retag.prune.report import RepositoryResult
    from retag.registry import Registry
    from retag.settings import Settings

HELP = "delete old generated tags (dry run unless --mode delete)"
DESCRIPTION = """\
Delete old tags (and, with --untagged, old untagged manifests) exactly as the prune_tags timer
does, with the same settings (PRUNE_*, RETAG_*, ACR_*), overridden by these flags.

Never deleted: source tags (RETAG_SOURCE_TAGS), every tag on a digest a source tag points to,
the newest --keep candidates, candidates younger than --min-age, locked tags and tags on locked
manifests. Untagged manifests are never deleted when an index in the repository references them
(multi-arch images), when they have a subject (signatures, SBOMs), are locked, or have an
unknown media type. The run is time-boxed (--max-duration); the next run continues.

Without --mode delete nothing is deleted: the default is a dry run that prints exactly the plan
delete mode would execute. Ctrl-C stops starting work, prints what was done and exits 130."""
EPILOG = """\
examples:
  acr-retag prune                                  # dry run with the settings
  acr-retag prune --keep 5 --min-age 3d --repository 'team/.*'
  acr-retag prune --mode delete --untagged --json > prune-report.json

exit codes: 0 ok, 1 the run failed or did not finish (ok: false), 2 usage or settings error,
130 interrupted"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode_argument(
        parser,
        ("dry-run", "delete"),
        "dry-run (default: list, delete nothing) or delete (PRUNE_MODE is not used here)",
    )
    parser.add_argument(
        "--keep", type=int_argument(0, 100_000), metavar="N", help="PRUNE_KEEP: newest kept"
    )
    parser.add_argument(
        "--min-age", type=duration_argument, metavar="DURATION", help="PRUNE_MIN_AGE: 30m, 7d"
    )
    parser.add_argument("--scope", choices=("generated", "all"), help="PRUNE_SCOPE")
    parser.add_argument(
        "--untagged",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="PRUNE_UNTAGGED: also delete old untagged manifests",
    )
    repository_argument(parser, "only these repositories (replaces PRUNE_REPOSITORIES)")
    parser.add_argument(
        "--concurrency", type=int_argument(1, 64), metavar="N", help="PRUNE_CONCURRENCY"
    )
    parser.add_argument(
        "--max-duration", type=duration_argument, metavar="DURATION", help="PRUNE_MAX_DURATION"
    )
    json_argument(parser)


def settings_for(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with this run's flags applied (mode: dry-run unless `--mode delete`)."""
    changes: dict[str, Any] = {}
    for flag in ("keep", "min_age", "scope", "untagged", "concurrency", "max_duration"):
        value = getattr(args, flag, None)
        if value is not None:
            changes[flag] = value
    if getattr(args, "repository", None) is not None:
        changes["repositories"] = args.repository
    changes["mode"] = getattr(args, "mode", None) or "dry-run"
    return replace(settings, prune=replace(settings.prune, **changes))


def run(args: argparse.Namespace, ctx: Context) -> int:
    return ctx.run_engine("pruning", "delete", execute)


def execute(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    """Run `prune` with parsed `args`, these settings and this registry; print; exit code."""
    from datetime import UTC, datetime

    from retag.prune.job import prune_with_settings
    from retag.prune.report import PruneReport

    settings = settings_for(args, settings)
    mode: Literal["dry-run", "delete"] = "delete" if settings.prune.mode == "delete" else "dry-run"
    stream = JsonStream("prune", "repositories") if args.json else None
    done: list[RepositoryResult] = []

    def on_repository(result: RepositoryResult) -> None:
        done.append(result.summarised())
        if stream is not None:
            stream.item(result.to_dict())

    progress = _ProgressLine(sys.stderr) if _isatty(sys.stderr) else None
    started = datetime.now(UTC)
    interrupted = False
    try:
        report = prune_with_settings(
            registry, settings, mode=mode, progress=progress, on_repository=on_repository
        )
    except KeyboardInterrupt:
        interrupted = True
        report = PruneReport(mode=mode, started_at=started, repositories=done, interrupted=True)
        report.duration_s = (datetime.now(UTC) - started).total_seconds()
    finally:
        if progress is not None:
            progress.close()
    interrupted = interrupted or bool(getattr(report, "interrupted", False))
    ok, error = run_outcome(report, interrupted=interrupted)
    if stream is not None:
        stream.finish({**report.to_dict(), "interrupted": interrupted}, ok=ok, error=error)
    else:
        print(report.render_table(), end="")
    pattern = args.repository.pattern if args.repository is not None else None
    matched = bool(report.repositories or report.unvisited)
    return finish_run(
        "prune", error, interrupted=interrupted, filter_pattern=pattern, matched=matched
    )


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
    """`acr-retag prune ARGV` with output to `stdout`/`stderr` (benchmarks, embedding)."""
    from contextlib import redirect_stderr, redirect_stdout

    from retag.cli.main import main as cli_main

    with redirect_stdout(stdout or sys.stdout), redirect_stderr(stderr or sys.stderr):
        return cli_main(["prune", *(argv or [])], env=env)
