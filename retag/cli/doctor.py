"""`acr-retag doctor [--repository REPO]`: settings, credential, reachability, permissions;
names the role to grant for each failure."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from retag.cli.args import check_repository, json_argument
from retag.cli.errors import DEPLOY_DOC, EXIT_FAILED, EXIT_OK, CliError, print_error
from retag.cli.output import emit, print_table
from retag.logline import one_line
from retag.oci import short_digest
from retag.registry import required_role

if TYPE_CHECKING:
    from retag.acr.client import AcrRegistry
    from retag.cli.env import Context
    from retag.registry import Need

HELP = "check settings, credential, reachability and permissions"
DESCRIPTION = """\
Check the settings, that the credential yields a token, that the registry answers,
that the catalog can be listed and, with --repository, pull/push/delete permission
using a scratch tag acr-retag-doctor-<random> on a random image that it pushes and
removes again. Nothing else is touched. Names the role to grant for each failure."""
EPILOG = """\
examples:
  acr-retag doctor
  acr-retag doctor --repository myapp --json
"""
STATUSES = ("OK", "FAIL", "SKIP", "INFO")
Status = Literal["OK", "FAIL", "SKIP", "INFO"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repository",
        metavar="REPO",
        help="one repository (a plain name, which full-matches itself) for the pull, push and "
        "delete checks",
    )
    json_argument(parser)


@dataclass
class Check:
    name: str
    status: Status
    detail: str


@dataclass
class Doctor:
    ctx: Context
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    def attempt(self, name: str, need: Need, action: Callable[[], str]) -> bool:
        """Run one registry check; a CliError becomes a FAIL line (with the role to grant)."""
        try:
            with self.ctx.step(name, need):
                detail = action()
        except CliError as exc:
            self.add(name, "FAIL", exc.message.removeprefix(f"{name}: "))
            return False
        self.add(name, "OK", detail)
        return True

    @property
    def failed(self) -> bool:
        return any(c.status == "FAIL" for c in self.checks)


def run(args: argparse.Namespace, ctx: Context) -> int:
    doctor = Doctor(ctx)
    repository = check_repository(args.repository) if args.repository else None
    exit_code = run_doctor(doctor, repository)
    failed = [c.name for c in doctor.checks if c.status == "FAIL"]
    error = f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else None
    if args.json:
        counts = {s.lower(): sum(1 for c in doctor.checks if c.status == s) for s in STATUSES}
        checks = [{"name": c.name, "status": c.status, "detail": c.detail} for c in doctor.checks]
        emit("doctor", {"counts": counts, "checks": checks}, ok=not failed, error=error)
    else:
        print_table(None, [[c.status, c.name, c.detail] for c in doctor.checks])
    if error is not None:
        print_error(f"doctor: {error}")
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
            f"that has {required_role('delete')}",
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
