"""The acr-retag command line: `python -m retag ...` or the `acr-retag` console script.

Parser assembly and dispatch only. Each command is one module (`tag`, `list_tags`, `replay`,
`push_sample`, `doctor`, `prune`, `reconcile`, `flux_manifests`) with HELP, DESCRIPTION, EPILOG,
`add_arguments(parser)` and `run(args, ctx)`; settings come from `env.Context`; output from
`output`; every failure goes through `errors` (one `acr-retag: error: ...` line on stderr, and
with `--json` still one object on stdout; exit 0 ok, 1 failed, 2 usage or settings, 130
interrupted).

Importing this module is cheap: the Azure SDKs and the use cases load only when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from retag.cli.args import Formatter, add_settings_arguments
from retag.cli.env import Context
from retag.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
    print_error,
)
from retag.cli.output import emit

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

COMMANDS: dict[str, str] = {
    "tag": "retag.cli.tag",
    "list": "retag.cli.list_tags",
    "replay": "retag.cli.replay",
    "push-sample": "retag.cli.push_sample",
    "doctor": "retag.cli.doctor",
    "prune": "retag.cli.prune",
    "reconcile": "retag.cli.reconcile",
    "flux-manifests": "retag.cli.flux_manifests",
}
"""Command name -> module (HELP, DESCRIPTION, EPILOG, add_arguments, run)."""

MAIN_DESCRIPTION = """\
acr-retag: give every push of a mutable tag (latest) a unique, sortable tag on the same digest.

Settings are the Function App's environment variables (ACR_LOGIN_SERVER, ACR_CREDENTIAL,
RETAG_TAG_TEMPLATE, ...), read from the environment and from a .env file; the environment wins
over the file and --registry wins over both.
"""

MAIN_EPILOG = """\
examples:
  acr-retag tag myapp                      # pipeline step after `docker push myapp:latest`
  acr-retag list myapp
  acr-retag doctor --repository myapp
  acr-retag --registry myregistry.azurecr.io list team/api --json
  acr-retag flux-manifests myapp | kubectl apply -f -   # Flux objects for the template

exit codes: 0 ok, 1 operation failed, 2 usage or settings error, 130 interrupted.
--json prints one object: {"ok": ..., "command": ..., ...} (docs/cli.md).
Docs: docs/cli.md, docs/pipelines.md (push approach), docs/flux.md, docs/deploy.md (roles).
"""

Handler = Callable[[argparse.Namespace, Context], int]


class Parser(argparse.ArgumentParser):
    """argparse's parser, remembering its usage error so `--json` can still print the object."""

    usage_error: str | None = None

    def error(self, message: str) -> NoReturn:
        Parser.usage_error = message
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    Parser.usage_error = None
    parser = Parser(
        prog=PROG, description=MAIN_DESCRIPTION, epilog=MAIN_EPILOG, formatter_class=Formatter
    )
    add_settings_arguments(parser, suppress=False)
    from retag import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    common = Parser(add_help=False)
    add_settings_arguments(common, suppress=True)
    for name, module_name in COMMANDS.items():
        module: Any = importlib.import_module(module_name)
        command: argparse.ArgumentParser = sub.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            epilog=module.EPILOG,
            formatter_class=Formatter,
            parents=[common],
        )
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    credential: TokenCredential | None = None,
) -> int:
    """Run one command; returns the exit code.

    `env` replaces os.environ as the settings environment and `credential` replaces
    ACR_CREDENTIAL (tests, embedding); the console script passes neither.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors (argparse exits 2)
        words = list(sys.argv[1:] if argv is None else argv)
        if Parser.usage_error is not None and "--json" in words:
            command = next((w for w in words if w in COMMANDS), "")
            emit(command, {}, ok=False, error=f"usage: {Parser.usage_error}")
        if isinstance(exc.code, int):
            return exc.code
        return EXIT_OK if exc.code is None else EXIT_USAGE
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    ctx = Context(args, env, credential)
    try:
        return handler(args, ctx)
    except CliError as exc:
        return fail(ctx, exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return fail(ctx, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return EXIT_FAILED
    finally:
        ctx.close()


def fail(ctx: Context, message: str, code: int) -> int:
    """The one way a command fails: with --json the object on stdout, always the stderr line."""
    if ctx.json:
        emit(ctx.command, {}, ok=False, error=message)
    print_error(message)
    return code
