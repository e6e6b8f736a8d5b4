"""The one error -> exit-code map of the CLI, and the one `acr-retag: error: ...` line.

Exit codes: 0 ok, 1 the operation failed (including a run whose report says `ok: false`),
2 usage or settings error, 130 interrupted (Ctrl-C). Expected failures are a `CliError`; registry
and SDK failures inside a `registry_step` become one; the role to grant comes from
`retag.registry.required_role` (through the adapter's message, or added here when it has none).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from retag.logline import one_line
from retag.registry import Need, required_role

PROG = "acr-retag"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEPLOY_DOC = "docs/deploy.md"


class CliError(Exception):
    """An expected failure: printed as one line, mapped to an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def usage_error(message: str) -> CliError:
    return CliError(message, EXIT_USAGE)


def error_line(message: str) -> str:
    """THE stderr line of a failure: `acr-retag: error: <message>` (one line)."""
    return f"{PROG}: error: {one_line(message, 1000)}"


def print_error(message: str) -> None:
    print(error_line(message), file=sys.stderr)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {one_line(message, 1000)}", file=sys.stderr)


def finish_run(
    command: str,
    error: str | None,
    *,
    interrupted: bool = False,
    filter_pattern: str | None = None,
    matched: bool = True,
) -> int:
    """After a run's report is printed: the warning for a `--repository` that matched nothing,
    the one error line when the run is not ok, and the exit code (0, 1, or 130 interrupted)."""
    if filter_pattern is not None and not matched:
        warn(f"--repository {filter_pattern!r} matched no repository")
    if error is not None:
        print_error(f"{command}: {error}")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if error is not None else EXIT_OK


@contextmanager
def registry_step(
    action: str, need: Need, login_server: str, *, anonymous: bool = False
) -> Iterator[None]:
    """Turn registry and SDK failures inside the block into one-line CliErrors (exit 1)."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    from retag.registry import (
        ConflictError,
        NotFoundError,
        PermissionDeniedError,
        RegistryError,
        TransientRegistryError,
    )

    try:
        yield
    except PermissionDeniedError as exc:
        message = permission_message(exc, need, anonymous=anonymous)
        raise CliError(f"{action}: {message}") from exc
    except NotFoundError as exc:
        text = one_line(exc)
        raise CliError(
            f"{action}: {text if 'not found' in text else 'not found: ' + text}"
        ) from exc
    except TransientRegistryError as exc:
        raise CliError(
            f"{action}: registry {login_server} unreachable or failing after retries "
            f"({one_line(exc)})"
        ) from exc
    except ConflictError as exc:
        raise CliError(f"{action}: refused, nothing was changed ({one_line(exc)})") from exc
    except RegistryError as exc:
        raise CliError(f"{action}: {one_line(exc)}") from exc
    except ClientAuthenticationError as exc:
        raise CliError(
            f"{action}: could not get a credential or token ({one_line(exc)}); "
            f"check `az login`, AZURE_CLIENT_ID or the managed identity, see {DEPLOY_DOC}"
        ) from exc
    except (AzureError, OSError) as exc:
        raise CliError(f"{action}: {type(exc).__name__}: {one_line(exc)}") from exc


def permission_message(exc: Exception, need: Need, *, anonymous: bool = False) -> str:
    """What the registry refused, the role to grant (`required_role`: the adapter's message
    already names it; added here only when it does not) and where the roles are documented."""
    text = one_line(exc, 400)
    if "permission denied" not in text and "authentication failed" not in text:
        text = f"permission denied: {text}"
    if "the identity needs " not in text:
        text += f"; the identity needs {required_role(need)}"
    text += f"; see {DEPLOY_DOC}"
    if anonymous:
        text += (
            "; ACR_CREDENTIAL=anonymous sends no identity: use ACR_CREDENTIAL=default "
            "unless the registry allows anonymous access"
        )
    return text
