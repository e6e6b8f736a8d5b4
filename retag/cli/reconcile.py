"""`python -m retag reconcile`: the reconciliation engine of the `reconcile_tags` timer, from the
command line.

`retag.cli.main` owns the top-level parser and calls `add_reconcile_parser(subparsers)` and
`run_reconcile(args)`. Output: the table on stdout (or `--json`, the summary line then on stderr).
Exit codes: 0 ok, 1 a repository (or the catalog listing) failed, 2 usage or settings error.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

from retag.cli.args import duration_argument, int_argument, regex_argument
from retag.reconcile.job import DEFAULT_CONCURRENCY, DEFAULT_MAX_DURATION, reconcile_registry
from retag.registry import RegistryError

if TYPE_CHECKING:
    from retag.registry import Registry
    from retag.settings import Settings


def add_reconcile_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `reconcile` to the CLI's subcommands and return its parser; the caller dispatches the
    parsed args to `run_reconcile` (retag.cli.main sets its own handler)."""
    parser = subparsers.add_parser(
        "reconcile",
        help="give every source tag's digest a generated tag (catch up missed events)",
        description=(
            "Level-triggered catch-up for the event path: for each repository in scope"
            " (RETAG_REPOSITORIES / RETAG_EXCLUDE_REPOSITORIES) and each source tag"
            " (RETAG_SOURCE_TAGS), create the generated tag (RETAG_TAG_TEMPLATE, timestamp ="
            " the source tag's last update) when no generated tag points to its digest. Only"
            " ever adds tags. Source tags updated within RECONCILE_GRACE are left to the event"
            " path. Exit codes: 0 ok, 1 a repository failed, 2 usage or settings error."
        ),
        epilog=(
            "example: python -m retag reconcile --dry-run --repository 'team-a/.*'"
            " --max-duration 2m"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="report the drift without writing anything"
    )
    parser.add_argument("--json", action="store_true", help="print every repository as JSON")
    parser.add_argument(
        "--repository",
        metavar="REGEX",
        type=regex_argument,
        help="only repositories fully matching REGEX (on top of the retag filters)",
    )
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
    return parser


def run_reconcile(
    args: argparse.Namespace,
    *,
    settings: Settings | None = None,
    registry: Registry | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `reconcile` for parsed CLI args. Exit code: 0 ok, 1 any failed, 2 settings error.

    `settings` defaults to `load_settings()` (the environment); `registry` to the ACR adapter
    built from them. The CLI passes its own when it has resolved `--registry` or a `.env` file.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    from retag.settings import SettingsError, load_settings

    try:
        resolved = settings if settings is not None else load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=err)
        return 2
    owned = None
    if registry is None:
        from retag.acr.client import AcrRegistry

        try:
            registry = owned = AcrRegistry.from_settings(resolved.registry)
        except (RegistryError, ValueError) as error:
            print(f"error: {error}", file=err)
            return 2
    try:
        report = reconcile_registry(
            registry,
            resolved,
            mode="dry-run" if args.dry_run else "apply",
            repository_filter=args.repository,
            concurrency=args.concurrency,
            max_duration=args.max_duration,
        )
    finally:
        if owned is not None:
            owned.close()
    print(report.to_json() if args.json else report.render_table(), file=out)
    if args.json:
        print(report.summary_line(), file=err)
    return 1 if report.failed else 0
