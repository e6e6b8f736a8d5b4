"""No log record ever contains a token: every record of every logger, at DEBUG, over a
representative run of the product against two emulators.

The run covers what production does: the Function re-tags pushes through the host decode path
(anonymous tokens), a transient failure the host logs with its traceback then a redelivery;
an `AcrRegistry` with a Microsoft Entra credential (AAD token -> refresh token -> access tokens)
pushes, re-tags through `handle_event`, lists like the CLI, deletes like pruning, renews expired
access and refresh tokens, and meets 401s: a pull-only anonymous identity whose fresh token the
registry refuses, an identity that cannot get an Entra token, faults on the token endpoints.
Captured: the root logger at DEBUG (azure-core's HTTP logging policy, urllib3, the emulator,
the host stand-in, `retag`), formatted with their tracebacks, plus the tracebacks of every
exception the product raised (the Functions host logs those in full).

Searched: every token the emulators issued (`issued_tokens()`: refresh and access tokens) and
every AAD token the credentials handed out, whole and by their JWT payload and signature.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.on_push import handle_event
from retag.settings import load_settings
from retag.tagging import add_generated_tag
from tests.support.clock import FakeClock
from tests.support.credentials import FailingCredential, StaticTokenCredential
from tests.support.function_app import emulator_settings, loaded_function_app
from tests.support.images import oci_image, push_image

REPO = "secure/app"
IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"


class CaptureAll(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.texts: list[str] = []
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))  # message, args, exc_info and stack_info
        self.names.append(record.name)


@contextmanager
def capture_all_logs() -> Iterator[CaptureAll]:
    handler = CaptureAll()
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("azure", "urllib3", "retag", "emulator")]
    saved = [(logger, logger.level) for logger in (root, *noisy)]
    root.addHandler(handler)
    for logger, _ in saved:
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for logger, level in saved:
            logger.setLevel(level)


def pushed_event(acr: Emulator, repository: str, image: Any, tag: str = "latest") -> dict[str, Any]:
    before = len(acr.events())
    push_image(acr.endpoint, repository, image, tag=tag, verify=acr.ca_bundle)
    return next(
        e
        for e in reversed(acr.events()[before:])
        if e["eventType"] == IMAGE_PUSHED and e["data"]["target"].get("tag") == tag
    )


def log_failure(call: Callable[[], object]) -> BaseException | None:
    """Run a product call that may fail; log its exception with the traceback, as a host would."""
    try:
        call()
    except Exception as error:
        logging.getLogger("host").error("invocation failed", exc_info=error)
        return error
    return None


def function_app_run(acr: Emulator) -> None:
    """The Function, through the host decode path: re-tag, duplicate, a failure, redelivery; with
    the SDK's debug logging switched on (`RETAG_SDK_LOG_LEVEL`), which logs every request."""
    with loaded_function_app(acr, RETAG_SDK_LOG_LEVEL="debug") as app:
        first = pushed_event(acr, REPO, oci_image())
        assert (
            app.host.deliver_event_grid(
                "on_image_pushed", f"[{_json(first)}, {_json(first)}]".encode(), "Notification"
            )
            .invocations[0]
            .ok
        )
        acr.advance_clock(2)
        second = pushed_event(acr, REPO, oci_image())
        acr.set_faults(error_rate=1.0, error_status=503, include_auth=True)
        failed = app.deliver(f"[{_json(second)}]".encode())
        acr.clear_faults()
        assert failed.status == 500
        assert app.deliver(f"[{_json(second)}]".encode()).status == 200
        # The raised error itself, with its traceback (the real host logs it in full).
        acr.set_faults(error_rate=1.0, error_status=429, include_auth=True)
        settings = load_settings(emulator_settings(acr))
        assert log_failure(lambda: handle_event(second, settings, app.module.registry))
        acr.clear_faults()


def _json(event: dict[str, Any]) -> str:
    import json

    return json.dumps(event)


def credential_run(acr: Emulator) -> list[str]:
    """An Entra identity on a registry whose anonymous access is pull-only; returns AAD tokens."""
    credential = StaticTokenCredential()
    clock = FakeClock()
    settings = load_settings(emulator_settings(acr))
    with AcrRegistry(
        acr.login_server,
        credential=credential,
        ca_bundle=acr.ca_bundle,
        clock=clock,
        retry_backoff_factor=0.01,
    ) as registry:
        digest = registry.push_image(REPO, "latest", b'{"architecture":"amd64"}', [b"layer-1"])
        event = next(e for e in reversed(acr.events()) if e["eventType"] == IMAGE_PUSHED)
        assert handle_event(event, settings, lambda: registry).status == "retagged"
        add_generated_tag(registry, REPO, digest, "copy", check_existing=True)
        # Like the CLI: listings and properties.
        assert REPO in list(registry.list_repositories())
        tags = list(registry.list_tags(REPO))
        list(registry.list_tags(REPO, digest=digest))
        list(registry.list_manifests(REPO))
        registry.get_tag(REPO, "copy")
        registry.get_manifest_info(REPO, digest)
        # Expiry: access tokens (75 min), then the refresh token (3 h) too.
        clock.advance(80 * 60)
        registry.get_manifest(REPO, digest)
        clock.advance(3 * 60 * 60)
        registry.get_tag(REPO, "latest")
        # Like pruning: delete a generated tag, then an older manifest.
        generated = next(t.name for t in tags if t.name.startswith("latest_"))
        registry.delete_tag(REPO, generated)
        old = registry.push_image(REPO, "old", b'{"architecture":"arm64"}', [b"layer-2"])
        registry.delete_manifest(REPO, old)
        # Faults on every endpoint, the token endpoints included: retries and failures.
        acr.set_faults(error_rate=0.4, reset_rate=0.1, include_auth=True, seed=7)
        clock.advance(80 * 60)
        for _ in range(5):
            log_failure(lambda: list(registry.list_tags(REPO)))
            log_failure(lambda: registry.get_manifest(REPO, digest))
        acr.clear_faults()
        log_failure(lambda: registry.get_manifest(REPO, "sha256:" + "0" * 64))

    # 401s: anonymous may pull but not push; the fresh push token is refused.
    with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as anon:
        manifest = anon.get_manifest(REPO, "latest")
        assert log_failure(lambda: anon.put_manifest(REPO, manifest, "anonymous-push"))
        event = next(
            e
            for e in reversed(acr.events())
            if e["eventType"] == IMAGE_PUSHED and e["data"]["target"].get("tag") == "latest"
        )
        assert log_failure(lambda: handle_event(event, settings, lambda: anon))
    # An identity that cannot get an Entra token at all.
    with AcrRegistry(
        acr.login_server, credential=FailingCredential(), ca_bundle=acr.ca_bundle
    ) as nobody:
        assert log_failure(lambda: nobody.get_tag(REPO, "latest"))
    return credential.issued


def secrets_in(token: str) -> list[str]:
    parts = token.split(".")
    pieces = [token]
    if len(parts) == 3:  # JWT: the payload and the signature are secret on their own
        pieces += [part for part in parts[1:] if len(part) >= 16]
    if token.startswith("aad-"):
        pieces.append(token.removeprefix("aad-"))
    return pieces


def test_no_log_record_contains_a_token() -> None:
    with (
        capture_all_logs() as captured,
        Emulator() as open_acr,
        Emulator(anonymous_actions={"pull", "metadata_read"}) as pull_only,
    ):
        function_app_run(open_acr)
        aad_tokens = credential_run(pull_only)
        issued = open_acr.issued_tokens() + pull_only.issued_tokens()

    # The run was representative and the capture saw it.
    assert len(aad_tokens) >= 2, "the credential should have been asked twice (refresh expiry)"
    assert len(issued) >= 10
    names = set(captured.names)
    assert "azure.core.pipeline.policies.http_logging_policy" in names
    assert any(name.startswith("urllib3") for name in names)
    text = "\n".join(captured.texts)
    for expected in (
        "Request URL",
        "outcome=retagged",
        "retry=true",
        "Executed 'Functions.on_image_pushed' (Failed)",
        "Traceback (most recent call last)",
        "permission denied",
        "Microsoft Entra",
        "/oauth2/exchange",
        "/oauth2/token",
    ):
        assert expected in text, f"the captured logs never mention {expected!r}"

    print(
        f"\nchecked {len(issued)} registry tokens and {len(aad_tokens)} AAD tokens against "
        f"{len(captured.texts)} log records from {len(names)} loggers"
    )
    leaks = [
        (piece[:12] + "...", line[:200])
        for token in issued + aad_tokens
        for piece in secrets_in(token)
        for line in captured.texts
        if piece in line
    ]
    assert leaks == []


def test_the_search_would_find_a_leak() -> None:
    """The check above is not vacuous: a token that does reach a log line is found."""
    with capture_all_logs() as captured, Emulator() as acr:
        with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as r:
            list(r.list_repositories())
        token = acr.issued_tokens()[0]
        logging.getLogger("careless").debug("header Authorization: Bearer %s", token)
        logging.getLogger("careless").debug("%s", traceback.format_stack(limit=1)[0])
    assert any(token in line for line in captured.texts)
    assert any(token.split(".")[2] in line for line in captured.texts)
