"""`acr-retag reconcile`: the reconciliation engine of the `reconcile_tags` timer, from the
command line. Output: the table on stdout, or `--json`. A run that did not do what it was asked
(a repository or the catalog failed, the time box left repositories unreached) ends `ok: false`
with one `acr-retag: error:` line and exit 1; Ctrl-C prints the partial report and exits 130.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Literal

from retag.cli.args import duration_argument, int_argument, mode_argument, repository_argument
from retag.cli.args import json_argument as json_flag
from retag.cli.errors import finish_run
from retag.cli.output import emit, run_outcome
from retag.reconcile.job import DEFAULT_CONCURRENCY, DEFAULT_MAX_DURATION

if TYPE_CHECKING:
    from retag.cli.env import Context
    from retag.registry import Registry
    from retag.settings import Settings

HELP = "give every source tag's digest a generated tag (catch up missed events)"
DESCRIPTION = """\
Level-triggered catch-up for the event path: for each repository in scope
(RETAG_REPOSITORIES / RETAG_EXCLUDE_REPOSITORIES, and --repository) and each source tag
(RETAG_SOURCE_TAGS), create the generated tag (RETAG_TAG_TEMPLATE, timestamp = the source
tag's last update) when no generated tag points to its digest. Only ever adds tags. Source
tags updated within RECONCILE_GRACE are left to the event path. --mode apply is the default
(RECONCILE_MODE is not used here); --dry-run is the same as --mode dry-run."""
EPILOG = """\
examples:
  acr-retag reconcile --mode dry-run --repository 'team-a/.*' --max-duration 2m
  acr-retag reconcile --json

exit codes: 0 ok, 1 the run failed or did not finish (ok: false), 2 usage or settings error,
130 interrupted"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mode_argument(
        parser, ("dry-run", "apply"), "apply (default: add missing tags) or dry-run (report only)"
    )
    repository_argument(parser, "only these repositories, on top of the retag filters")
    parser.add_argument(
        "--concurrency",
        type=int_argument(1),
        default=DEFAULT_CONCURRENCY,
        help=f"repositories checked in parallel (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--max-duration",
        metavar="DURATION",
        type=duration_argument,
        default=DEFAULT_MAX_DURATION,
        help="stop starting repositories after this long, e.g. 90s, 10m (default 8m)",
    )
    json_flag(parser)


def run(args: argparse.Namespace, ctx: Context) -> int:
    return ctx.run_engine("reconciling", "push", execute)


def execute(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    """Run `reconcile` with parsed `args`, these settings and this registry; print; exit code."""
    from datetime import UTC, datetime

    from retag.reconcile.job import reconcile_registry
    from retag.reconcile.report import ReconcileReport

    mode: Literal["dry-run", "apply"] = "dry-run" if args.mode == "dry-run" else "apply"
    started = datetime.now(UTC)
    interrupted = False
    try:
        report = reconcile_registry(
            registry,
            settings,
            mode=mode,
            repository_filter=args.repository,
            concurrency=args.concurrency,
            max_duration=args.max_duration,
        )
    except KeyboardInterrupt:
        # The engine's own partial report replaces this once it catches Ctrl-C itself.
        interrupted = True
        report = ReconcileReport(
            mode=mode, started_at=started, max_duration=args.max_duration, interrupted=True
        )
        report.duration_s = (datetime.now(UTC) - started).total_seconds()
    interrupted = interrupted or bool(getattr(report, "interrupted", False))
    ok, error = run_outcome(report, interrupted=interrupted)
    if args.json:
        emit("reconcile", {**report.to_dict(), "interrupted": interrupted}, ok=ok, error=error)
    else:
        print(report.render_table())
    pattern = args.repository.pattern if args.repository is not None else None
    matched = bool(report.repositories)
    return finish_run(
        "reconcile", error, interrupted=interrupted, filter_pattern=pattern, matched=matched
    )
