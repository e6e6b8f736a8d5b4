"""The acr-retag command line: `python -m retag ...` or the `acr-retag` console script.

Commands: `tag` (the push approach: a pipeline step re-tags explicitly), `list`, `replay`,
`push-sample`, `doctor`, plus `prune` and `reconcile` (same engines as the timer Functions).

Settings come from the same environment variables as the Function App. Sources, strongest
first: `--registry` (ACR_LOGIN_SERVER only), the process environment, then a `.env` file
(`--env-file PATH`, else `./.env` when present). Exit codes: 0 ok, 1 the operation failed,
2 usage or settings error. Expected failures (settings, permissions, not found, network) print
one line `acr-retag: error: ...` on stderr, never a traceback.

Importing this module is cheap: the Azure SDKs and the use cases load only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from retag.logline import one_line
from retag.oci import digest_problem, repository_problem, short_digest, tag_problem
from retag.registry import ROLES, Need
from retag.timeutil import utc_iso

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from retag.acr.client import AcrRegistry
    from retag.naming import TagTemplate
    from retag.registry import Registry, TagInfo
    from retag.settings import Settings

PROG = "acr-retag"
Parser = argparse.ArgumentParser
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEPLOY_DOC = "docs/deploy.md"


class CliError(Exception):
    """An expected failure: printed as one line, mapped to an exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def role_hint(need: Need, login_server: str) -> str:
    role, abac = ROLES[need]
    return (
        f"grant the identity {role} on registry {login_server} "
        f"(on registries with ABAC repository permissions: {abac}); see {DEPLOY_DOC}"
    )


# --------------------------------------------------------------------------------------------
# Settings and registry, loaded on first use


@dataclass
class Context:
    args: argparse.Namespace
    env: Mapping[str, str] | None
    credential: TokenCredential | None = None
    """Replaces ACR_CREDENTIAL when set (tests and embedding); settings are still validated."""
    _settings: Settings | None = None
    _registry: AcrRegistry | None = None
    _environment: dict[str, str] | None = None

    def environment(self) -> dict[str, str]:
        """The merged environment: .env file < process environment < --registry."""
        if self._environment is None:
            self._environment = merged_environment(
                os.environ if self.env is None else self.env,
                getattr(self.args, "env_file", None),
                getattr(self.args, "registry", None),
            )
        return self._environment

    def settings(self) -> Settings:
        if self._settings is None:
            from retag.settings import SettingsError, load_settings

            try:
                self._settings = load_settings(self.environment())
            except SettingsError as exc:
                raise CliError(f"settings: {one_line(exc)}", EXIT_USAGE) from exc
        return self._settings

    def registry(self) -> AcrRegistry:
        if self._registry is None:
            settings = self.settings()
            from retag.acr.client import AcrRegistry

            reg = settings.registry
            if self.env is None:  # a real process: the SDK reads os.environ itself
                export_azure_variables(read_env_file(getattr(self.args, "env_file", None)))
            try:
                if self.credential is None:
                    self._registry = AcrRegistry.from_settings(reg)
                else:
                    self._registry = AcrRegistry(
                        reg.login_server,
                        credential=self.credential,
                        audience=reg.audience,
                        ca_bundle=reg.ca_bundle,
                    )
            except ValueError as exc:
                raise CliError(f"settings: {one_line(exc)}", EXIT_USAGE) from exc
        return self._registry

    @property
    def login_server(self) -> str:
        return self.settings().registry.login_server

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def read_env_file(env_file: str | None) -> dict[str, str]:
    """The values of `--env-file PATH`, else of ./.env when it exists, else nothing."""
    from retag.cli.dotenv import DotenvError, parse_dotenv

    path = Path(env_file) if env_file else Path(".env")
    if not env_file and not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        raise CliError(f"cannot read env file {path}: {reason}", EXIT_USAGE) from exc
    try:
        return parse_dotenv(text, source=str(path))
    except DotenvError as exc:
        raise CliError(f"env file {exc}", EXIT_USAGE) from exc


def merged_environment(
    explicit: Mapping[str, str], env_file: str | None, registry: str | None
) -> dict[str, str]:
    """Layer the settings sources. The explicit environment wins over the .env file, so an
    exported variable (CI secrets, `az` pipelines) is never silently replaced by a stale file;
    `--registry` wins over both."""
    values = read_env_file(env_file)
    values.update(explicit)
    if registry is not None:
        values["ACR_LOGIN_SERVER"] = registry
    return values


def export_azure_variables(file_values: Mapping[str, str]) -> None:
    """DefaultAzureCredential reads AZURE_* (AZURE_CLIENT_ID, AZURE_TENANT_ID, ...) from the
    process environment: give it those from the .env file, unless already set there."""
    for key, value in file_values.items():
        if key.startswith("AZURE_") and key not in os.environ:
            os.environ[key] = value


@contextmanager
def registry_step(action: str, need: Need, ctx: Context) -> Iterator[None]:
    """Turn registry and SDK failures inside the block into one-line CliErrors."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    from retag.registry import (
        ConflictError,
        NotFoundError,
        PermissionDeniedError,
        RegistryError,
        TransientRegistryError,
    )

    login_server = ctx.login_server
    try:
        yield
    except PermissionDeniedError as exc:
        raise CliError(f"{action}: {permission_message(exc, need, ctx)}") from exc
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
    except AzureError as exc:
        raise CliError(f"{action}: {type(exc).__name__}: {one_line(exc)}") from exc
    except OSError as exc:
        raise CliError(f"{action}: {type(exc).__name__}: {one_line(exc)}") from exc


def permission_message(exc: Exception, need: Need, ctx: Context) -> str:
    """The role to grant first, then what the registry said (without the adapter's own role
    sentence, which would repeat it)."""
    detail = one_line(exc, 300)
    detail = re.sub(r";? ?the identity needs .*$", "", detail)
    message = f"permission denied: {role_hint(need, ctx.login_server)} (registry said: {detail})"
    if ctx.settings().registry.credential == "anonymous" and ctx.credential is None:
        message += (
            "; ACR_CREDENTIAL=anonymous sends no identity: use ACR_CREDENTIAL=default "
            "unless the registry allows anonymous access"
        )
    return message


# --------------------------------------------------------------------------------------------
# Argument checks (usage errors, exit 2)


def check_repository(name: str) -> str:
    return _checked("repository", name, repository_problem(name), " (e.g. myapp or team/myapp)")


def check_tag(tag: str) -> str:
    return _checked("tag", tag, tag_problem(tag))


def check_digest(digest: str) -> str:
    return _checked("digest", digest, digest_problem(digest))


def _checked(what: str, value: str, problem: str | None, example: str = "") -> str:
    if problem is not None:
        raise CliError(f"{what} {value!r} {problem}{example}", EXIT_USAGE)
    return value


def split_reference(reference: str, default_tag: str = "latest") -> tuple[str, str]:
    """`repo[:tag]` -> (repo, tag); a ':' before the last '/' is not a tag separator."""
    if "@" in reference:
        raise CliError(f"{reference!r}: give REPOSITORY[:TAG], not a digest", EXIT_USAGE)
    repository, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        repository, tag = reference, default_tag
    return check_repository(repository), check_tag(tag)


def load_template(
    ctx: Context, text: str | None, extra_source_tags: Sequence[str] = ()
) -> TagTemplate:
    """The settings' template, or `--template`, validated against every source tag involved."""
    from retag.naming import TagTemplate

    settings = ctx.settings()
    source_tags = tuple(dict.fromkeys([*settings.retag.source_tags, *extra_source_tags]))
    if text is None and set(source_tags) == set(settings.retag.source_tags):
        return settings.retag.template
    try:
        return TagTemplate.parse(
            settings.retag.template.text if text is None else text, source_tags
        )
    except ValueError as exc:
        option = "--template" if text is not None else "RETAG_TAG_TEMPLATE"
        raise CliError(f"{option}: {one_line(exc)}", EXIT_USAGE) from exc


def emit_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    for row in [list(headers), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# --------------------------------------------------------------------------------------------
# tag


def cmd_tag(args: argparse.Namespace, ctx: Context) -> int:
    repository = check_repository(args.repository)
    settings = ctx.settings()
    source_tag = check_tag(args.source_tag or settings.retag.source_tags[0])
    digest = check_digest(args.digest) if args.digest else None
    template = load_template(ctx, args.template, [source_tag])
    registry = ctx.registry()

    from retag.tagging import add_generated_tag

    if digest is None:
        with registry_step(f"reading tag {repository}:{source_tag}", "pull", ctx):
            info = registry.get_tag(repository, source_tag)
        digest, pushed_at, basis = info.digest, info.last_updated_on, "source tag lastUpdateTime"
    else:
        pushed_at, basis = datetime.now(UTC), "now (--digest)"
    new_tag = template.render(source_tag, pushed_at, digest)
    with registry_step(f"tagging {repository}@{short_digest(digest)} as {new_tag}", "push", ctx):
        # Exactly the Function's call: the template decides whether a read-before-write is needed.
        result = add_generated_tag(
            registry,
            repository,
            digest,
            new_tag,
            check_existing=template.needs_existing_check,
        )
    if args.json:
        emit_json(
            {
                "registry": ctx.login_server,
                "repository": repository,
                "source_tag": source_tag,
                "digest": digest,
                "tag": result,
                "timestamp": utc_iso(pushed_at, "seconds"),
                "timestamp_source": basis,
            }
        )
    else:
        print(result)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# list


def tag_kind(tag: str, source_tags: Sequence[str], template: TagTemplate) -> str:
    if tag in source_tags:
        return "source"
    if template.is_generated(tag):
        return "generated"
    return "other"


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    repository = check_repository(args.repository)
    settings = ctx.settings()
    template = load_template(ctx, args.template)
    registry = ctx.registry()
    with registry_step(f"listing tags of {repository}", "pull", ctx):
        tags: list[TagInfo] = list(registry.list_tags(repository))
    tags.sort(key=lambda t: (t.last_updated_on, t.name), reverse=True)
    source_tags = settings.retag.source_tags
    if args.json:
        emit_json(
            [
                {
                    "tag": t.name,
                    "digest": t.digest,
                    "created": utc_iso(t.created_on, "seconds"),
                    "last_updated": utc_iso(t.last_updated_on, "seconds"),
                    "kind": tag_kind(t.name, source_tags, template),
                    "locked": t.locked,
                    "can_delete": t.can_delete,
                    "can_write": t.can_write,
                }
                for t in tags
            ]
        )
        return EXIT_OK
    if not tags:
        print(f"{repository}: no tags")
        return EXIT_OK
    print_table(
        ["TAG", "DIGEST", "LAST UPDATED (UTC)", "KIND", "LOCKED"],
        [
            [
                t.name,
                short_digest(t.digest),
                utc_iso(t.last_updated_on, "seconds"),
                tag_kind(t.name, source_tags, template),
                "locked" if t.locked else "-",
            ]
            for t in tags
        ],
    )
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# replay


class _OutcomeLines(logging.Handler):
    """Collects the outcome lines handle_event logs (the Function's exact log line)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def cmd_replay(args: argparse.Namespace, ctx: Context) -> int:
    from retag.events import parse_payload
    from retag.on_push import handle_event
    from retag.registry import TransientRegistryError

    settings = ctx.settings()
    counts: dict[str, int] = {}
    records: list[dict[str, Any]] = []
    failed = False
    # A private logger (not in the logging tree): each outcome line is printed exactly once.
    collected = _OutcomeLines()
    log = logging.Logger("acr-retag.replay", logging.DEBUG)
    log.addHandler(collected)

    def registry() -> Registry:
        return ctx.registry()

    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            error(f"{name}: cannot read: {exc.strerror or one_line(exc)}")
            counts["unreadable"] = counts.get("unreadable", 0) + 1
            failed = True
            continue
        try:
            envelopes = parse_payload(data)
        except ValueError as exc:
            error(f"{name}: not an event file: {one_line(exc)}")
            counts["unreadable"] = counts.get("unreadable", 0) + 1
            failed = True
            continue
        for index, envelope in enumerate(envelopes):
            collected.lines.clear()
            record: dict[str, Any] = {"file": name, "index": index}
            try:
                outcome = handle_event(envelope, settings, registry, log=log)
            except TransientRegistryError as exc:
                status = "failed"
                record.update(status=status, retry=True, reason=one_line(exc))
            else:
                status = outcome.status
                record.update(outcome_dict(outcome))
            counts[status] = counts.get(status, 0) + 1
            failed = failed or status in ("failed", "rejected")
            record["line"] = " ".join(collected.lines)
            records.append(record)
            if not args.json:
                for line in collected.lines:
                    print(f"{name}[{index}]: {line}")
    if args.json:
        emit_json({"events": records, "counts": counts})
    else:
        total = sum(v for k, v in counts.items() if k != "unreadable")
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        print(f"replayed {total} event(s) from {len(args.files)} file(s): {summary or 'nothing'}")
    return EXIT_FAILED if failed else EXIT_OK


def outcome_dict(outcome: Any) -> dict[str, Any]:
    fields = (
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
    return {name: getattr(outcome, name, None) for name in fields}


# --------------------------------------------------------------------------------------------
# push-sample


def cmd_push_sample(args: argparse.Namespace, ctx: Context) -> int:
    from retag.sample import sample_image

    repository, tag = split_reference(args.reference)
    registry = ctx.registry()
    image = sample_image()
    with registry_step(f"pushing {repository}:{tag}", "push", ctx):
        digest = registry.push_image(repository, tag, image.config, image.layers)
    if args.json:
        emit_json(
            {"registry": ctx.login_server, "repository": repository, "tag": tag, "digest": digest}
        )
    else:
        print(digest)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# doctor


@dataclass
class Check:
    name: str
    status: Literal["OK", "FAIL", "SKIP", "INFO"]
    detail: str


@dataclass
class Doctor:
    ctx: Context
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Literal["OK", "FAIL", "SKIP", "INFO"], detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    def attempt(self, name: str, need: Need, action: Callable[[], str]) -> bool:
        """Run one registry check; a CliError becomes a FAIL line (with the role to grant)."""
        try:
            with registry_step(name, need, self.ctx):
                detail = action()
        except CliError as exc:
            self.add(name, "FAIL", exc.message.removeprefix(f"{name}: "))
            return False
        self.add(name, "OK", detail)
        return True

    @property
    def failed(self) -> bool:
        return any(c.status == "FAIL" for c in self.checks)


def cmd_doctor(args: argparse.Namespace, ctx: Context) -> int:
    doctor = Doctor(ctx)
    repository = check_repository(args.repository) if args.repository else None
    exit_code = run_doctor(doctor, repository)
    if args.json:
        emit_json(
            {
                "ok": not doctor.failed,
                "checks": [
                    {"name": c.name, "status": c.status, "detail": c.detail} for c in doctor.checks
                ],
            }
        )
    else:
        width = max(len(c.name) for c in doctor.checks)
        for c in doctor.checks:
            print(f"{c.status:<5} {c.name.ljust(width)}  {c.detail}")
    return exit_code


def run_doctor(doctor: Doctor, repository: str | None) -> int:
    ctx = doctor.ctx
    try:
        settings = ctx.settings()
    except CliError as exc:
        doctor.add("settings", "FAIL", exc.message)
        return exc.exit_code
    reg = settings.registry
    doctor.add(
        "settings",
        "OK",
        f"registry {reg.login_server}, credential {reg.credential}"
        + (f", CA bundle {reg.ca_bundle}" if reg.ca_bundle else ""),
    )

    # Credential: acquire an Entra token for the registry audience (never printed).
    from retag.acr.client import check_credential
    from retag.registry import PermissionDeniedError

    registry = ctx.registry()
    scope = reg.audience.rstrip("/") + "/.default"
    try:
        expires = check_credential(registry)
    except PermissionDeniedError as exc:
        doctor.add(
            "credential",
            "FAIL",
            f"{one_line(exc, 300)}; check `az login`, AZURE_CLIENT_ID or the managed "
            f"identity, see {DEPLOY_DOC}",
        )
        return EXIT_FAILED
    if expires is None:
        doctor.add("credential", "SKIP", "ACR_CREDENTIAL=anonymous: no Azure identity is used")
    else:
        minutes = max(0, int((expires - time.time()) // 60))
        doctor.add("credential", "OK", f"token acquired for {scope} (valid {minutes} min)")

    # Reachability: GET /v2/ must answer (200, or 401 with ACR's Bearer challenge).
    reachable, detail = probe_v2(reg.endpoint, reg.ca_bundle)
    doctor.add("reachable", "OK" if reachable else "FAIL", detail)
    if not reachable:
        return EXIT_FAILED

    def catalog() -> str:
        from itertools import islice

        seen = list(islice(registry.list_repositories(), 100))
        more = "100+" if len(seen) == 100 else str(len(seen))
        return f"can list repositories ({more} seen)"

    doctor.attempt("catalog", "catalog", catalog)

    if repository is None:
        doctor.add(
            "repository",
            "SKIP",
            "pass --repository REPO to check pull, push and delete with a scratch tag",
        )
        return EXIT_FAILED if doctor.failed else EXIT_OK

    check_repository_permissions(doctor, registry, repository)
    return EXIT_FAILED if doctor.failed else EXIT_OK


def check_repository_permissions(doctor: Doctor, registry: AcrRegistry, repository: str) -> None:
    """pull/push/delete on REPO via a scratch tag on a random image; removes only those."""
    from retag.registry import NotFoundError
    from retag.sample import sample_image

    existed: bool | None = None

    def read_tags() -> str:
        nonlocal existed
        try:
            count = sum(1 for _ in registry.list_tags(repository))
        except NotFoundError:
            existed = False
            return f"repository {repository} does not exist yet (the push check will create it)"
        existed = True
        return f"can list the {count} tag(s) of {repository}"

    doctor.attempt("pull (list tags)", "pull", read_tags)

    image = sample_image(description="doctor scratch")
    scratch = f"acr-retag-doctor-{image.marker[:12]}"
    pushed: dict[str, str] = {}

    def push() -> str:
        pushed["digest"] = registry.push_image(repository, scratch, image.config, image.layers)
        created = f"; this created repository {repository}" if existed is False else ""
        short = short_digest(pushed["digest"])
        return f"pushed scratch image {repository}:{scratch} ({short}){created}"

    if not doctor.attempt("push (scratch tag)", "push", push):
        return
    digest = pushed["digest"]

    def pull() -> str:
        manifest = registry.get_manifest(repository, digest)
        if manifest.digest != digest:
            raise CliError(f"got {manifest.digest} back for {digest}")
        return f"pulled the scratch manifest by digest ({len(manifest.raw)} bytes)"

    doctor.attempt("pull (manifest)", "pull", pull)

    def delete_tag() -> str:
        registry.delete_tag(repository, scratch)
        return f"deleted scratch tag {scratch}"

    if not doctor.attempt("delete (scratch tag)", "delete", delete_tag):
        doctor.add(
            "cleanup",
            "INFO",
            f"scratch tag {repository}:{scratch} is left behind; delete it with an identity "
            "that has AcrDelete",
        )
        return

    def delete_manifest() -> str:
        # The manifest is random content pushed a moment ago: delete it only if no tag (someone
        # else's) has appeared on it since.
        others = [t.name for t in registry.list_tags(repository, digest=digest)]
        if others:
            return f"kept the scratch manifest: tags {', '.join(others)} now point to it"
        registry.delete_manifest(repository, digest)
        note = f"; repository {repository} was created by this check" if existed is False else ""
        return f"deleted scratch manifest {short_digest(digest)}{note}"

    doctor.attempt("delete (scratch manifest)", "delete", delete_manifest)


def probe_v2(endpoint: str, ca_bundle: str | None, timeout: float = 5.0) -> tuple[bool, str]:
    """GET {endpoint}/v2/ without credentials: 200 or a 401 Bearer challenge means reachable."""
    import ssl
    import urllib.error
    import urllib.request

    url = endpoint.rstrip("/") + "/v2/"
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        return False, f"cannot load CA bundle {ca_bundle}: {one_line(exc)}"
    started = time.monotonic()
    # The URL is https:// + a validated login server: no file: or custom scheme can get here.
    headers = {"User-Agent": "acr-retag-doctor"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - https only, see above
    try:
        with urllib.request.urlopen(  # noqa: S310 - the https:// URL built above
            request, timeout=timeout, context=context
        ) as response:
            status = int(response.status)
            challenge = ""
    except urllib.error.HTTPError as exc:
        status = exc.code
        challenge = exc.headers.get("WWW-Authenticate", "") if exc.headers else ""
    except urllib.error.URLError as exc:
        hint = "check ACR_LOGIN_SERVER, DNS, firewall or private endpoint"
        return False, f"{url} unreachable: {one_line(exc.reason)} ({hint})"
    except (OSError, TimeoutError) as exc:
        return False, f"{url} unreachable: {one_line(exc)}"
    ms = (time.monotonic() - started) * 1000
    if status == 200:
        return True, f"{url} answered 200 in {ms:.0f} ms"
    if status == 401 and challenge.lower().startswith("bearer"):
        return True, f"{url} answered 401 with a Bearer challenge in {ms:.0f} ms"
    return False, f"{url} answered {status}: not an OCI registry endpoint?"


# --------------------------------------------------------------------------------------------
# Parser


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


def common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    add_settings_arguments(parent, suppress=True)
    return parent


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

exit codes: 0 ok, 1 operation failed, 2 usage or settings error.
Docs: docs/pipelines.md (push approach), docs/flux.md, docs/deploy.md (roles).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=MAIN_DESCRIPTION,
        epilog=MAIN_EPILOG,
        formatter_class=_Formatter,
    )
    add_settings_arguments(parser, suppress=False)
    from retag import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    common = common_options()

    def command(name: str, help_text: str, description: str, epilog: str) -> Parser:
        return sub.add_parser(
            name,
            help=help_text,
            description=description,
            epilog=epilog,
            formatter_class=_Formatter,
            parents=[common],
        )

    p = command(
        "tag",
        "add a generated tag to the digest a source tag points to (pipeline step)",
        "Resolve the source tag to its digest once, then add the generated tag to that digest\n"
        "with the same engine, template and 2-request re-tag as the Function. {timestamp} is\n"
        "the source tag's lastUpdateTime (its push time), so running it twice for one push\n"
        "gives the same tag; with --digest it is the current time. Prints the new tag.",
        "examples:\n"
        "  acr-retag tag myapp            # after docker push myregistry.azurecr.io/myapp:latest\n"
        "  acr-retag tag team/api --source-tag stable --json\n"
        "  acr-retag tag myapp --digest sha256:3f2a...  # tag this exact digest, timestamp now\n",
    )
    p.add_argument("repository", metavar="REPOSITORY")
    p.add_argument(
        "--source-tag",
        metavar="TAG",
        help="tag to resolve and {tag} in the template (default: first of RETAG_SOURCE_TAGS)",
    )
    p.add_argument("--digest", metavar="sha256:HEX", help="tag this digest instead of resolving")
    p.add_argument("--template", help="override RETAG_TAG_TEMPLATE, e.g. '{tag}-{timestamp}'")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(handler=cmd_tag)

    p = command(
        "list",
        "list a repository's tags: digest, last update, kind, lock",
        "List every tag of REPOSITORY, newest first: short digest, last update (UTC), kind\n"
        "(source = in RETAG_SOURCE_TAGS, generated = matches RETAG_TAG_TEMPLATE, other) and\n"
        "whether it is locked (write or delete disabled).",
        "examples:\n  acr-retag list myapp\n  acr-retag list team/api --json | jq '.[0]'\n",
    )
    p.add_argument("repository", metavar="REPOSITORY")
    p.add_argument("--template", help="classify with this template instead of RETAG_TAG_TEMPLATE")
    p.add_argument("--json", action="store_true", help="print a JSON array with full digests")
    p.set_defaults(handler=cmd_list)

    p = command(
        "replay",
        "feed event files through the on_image_pushed handler",
        "Read each FILE (one event or an array; Event Grid schema or CloudEvents; dead-lettered\n"
        "event blobs downloaded from storage) and run every event through exactly the handler\n"
        "of the on_image_pushed Function, with these settings. Prints one outcome per event.\n"
        "Exit 1 if any event was rejected or failed (ignored events are fine).",
        "examples:\n"
        "  acr-retag replay samples/events/image-pushed-latest.json\n"
        "  az storage blob download-batch -d deadletters -s deadletter ... && \\\n"
        "    acr-retag replay deadletters/**/*.json\n",
    )
    p.add_argument("files", metavar="FILE", nargs="+")
    p.add_argument("--json", action="store_true", help="print every outcome as JSON")
    p.set_defaults(handler=cmd_replay)

    p = command(
        "push-sample",
        "push a tiny random image (config + one layer)",
        "Push a tiny image with random content to REPOSITORY[:TAG] (default tag latest) with\n"
        "the SDK's blob upload and manifest PUT. Prints its digest. With a deployed Function,\n"
        "pushing to a source tag should make a generated tag appear within a second.",
        "examples:\n"
        "  acr-retag push-sample sandbox/retag-check\n"
        "  acr-retag push-sample sandbox/retag-check:latest --json\n",
    )
    p.add_argument("reference", metavar="REPOSITORY[:TAG]")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(handler=cmd_push_sample)

    p = command(
        "doctor",
        "check settings, credential, reachability and permissions",
        "Check the settings, that the credential yields a token, that the registry answers,\n"
        "that the catalog can be listed and, with --repository, pull/push/delete permission\n"
        "using a scratch tag acr-retag-doctor-<random> on a random image that it pushes and\n"
        "removes again. Nothing else is touched. Names the role to grant for each failure.",
        "examples:\n  acr-retag doctor\n  acr-retag doctor --repository myapp --json\n",
    )
    p.add_argument("--repository", metavar="REPO", help="repository for pull/push/delete checks")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(handler=cmd_doctor)

    add_engine_commands(sub)
    return parser


def add_engine_commands(sub: Any) -> None:
    """`prune` and `reconcile` are defined by `retag.cli.prune` and `retag.cli.reconcile` (flags
    mirror the settings): they add their own parser, we add the settings options and run them
    with this CLI's settings and registry, so .env, --registry and the error handling are the
    same for every command."""
    from retag.cli.prune import add_prune_parser
    from retag.cli.reconcile import add_reconcile_parser

    prune = add_prune_parser(sub, formatter_class=_Formatter)
    add_settings_arguments(prune, suppress=True)
    prune.set_defaults(handler=cmd_prune)

    reconcile = add_reconcile_parser(sub)
    add_settings_arguments(reconcile, suppress=True)
    reconcile.set_defaults(handler=cmd_reconcile)


def cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    from retag.cli.prune import run_prune

    settings = ctx.settings()
    registry = ctx.registry()
    with registry_step("pruning", "delete", ctx):
        return run_prune(args, settings=settings, registry=registry)


def cmd_reconcile(args: argparse.Namespace, ctx: Context) -> int:
    from retag.cli.reconcile import run_reconcile

    settings = ctx.settings()
    registry = ctx.registry()
    with registry_step("reconciling", "push", ctx):
        return run_reconcile(args, settings=settings, registry=registry)


# --------------------------------------------------------------------------------------------
# Entry point


def error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


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
        if isinstance(exc.code, int):
            return exc.code
        return EXIT_OK if exc.code is None else EXIT_USAGE
    handler: Callable[[argparse.Namespace, Context], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    ctx = Context(args, env, credential)
    try:
        return handler(args, ctx)
    except CliError as exc:
        error(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_FAILED
    finally:
        ctx.close()
