"""`make demo`: the main job end to end, with no Azure account.

1. Start the ACR emulator (HTTPS, ACR token auth) and a stand-in Functions host serving
   `function_app.app` on loopback; the emulator's Event Grid delivery points at the host's webhook.
2. Push a small random "app image" to `demo/app:latest` through the real SDK.
3. The emulator delivers `ImagePushed`; the host decodes it exactly as the Python worker does and
   calls `on_image_pushed`, which adds `latest_<timestamp>_<digest>` on the same digest.
4. Push again: a second generated tag appears. Roll back: push the first image again; it gets a
   new generated tag that sorts newest, and the tag Flux selects (docs/flux.md's ImagePolicy,
   the tests' model) moves back to the old digest. Then a push whose event is lost, caught up by
   reconciliation; then pruning, first as a dry-run plan, then for real.
5. A platform team's loop: `RETAG_TAG_TEMPLATE=prod-{revision:.7}-{timestamp}` tags a push from
   the image's `org.opencontainers.image.revision` label, and a Flux generic-hmac Receiver
   (`emulator.flux_receiver`) is nudged with a signed POST; an image without the label is
   skipped with one WARNING line.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

REPOSITORY = "demo/app"
SOURCE_TAG = "latest"
TEAM_REPOSITORY = "demo/web"
TEAM_TEMPLATE = "prod-{revision:.7}-{timestamp}"


def run(out: TextIO = sys.stdout) -> int:
    from emulator import Emulator
    from emulator.functions_host import FunctionsHostServer

    _show_outcome_lines(out)
    started = time.monotonic()
    say = _printer(out)
    with Emulator() as acr:
        # The timers compare push times with the real clock: start the registry's clock in the
        # past, so "an hour ago" is an hour ago for everyone.
        acr.set_clock(datetime.now(UTC) - timedelta(hours=3))
        configure_environment(acr.login_server, acr.ca_bundle)
        import function_app
        from retag.acr.client import AcrRegistry

        registry = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
        with FunctionsHostServer(function_app.app) as host:
            acr.set_subscribers([host.webhook_url("on_image_pushed")])
            say(f"ACR emulator at {acr.endpoint}; Functions host at {host.url}")

            images: list[tuple[bytes, bytes]] = []
            for attempt in (1, 2):
                image = app_image()
                images.append(image)
                digest = push_app_image(registry, image)
                say(f"\npush #{attempt}: {REPOSITORY}:{SOURCE_TAG} -> {digest}")
                latency = wait_for_generated_tag(registry, digest)
                say(f"generated tag visible {latency * 1000:.0f} ms after the push")
                acr.wait_for_deliveries()
                _print_tags(registry, out)
                acr.advance_clock(3600)

            _rollback(registry, acr, images[0], say)
            _print_tags(registry, out)
            acr.advance_clock(1800)

            say("\npush #3 with Event Grid delivery switched off (a lost event):")
            acr.set_subscribers([])
            digest = push_app_image(registry)
            say(f"{REPOSITORY}:{SOURCE_TAG} -> {digest}; no generated tag on it")
            say("\nthe reconcile_tags timer runs (level-triggered catch-up):")
            host.host.run_timer("reconcile_tags")
            _print_tags(registry, out)

            _prune(out)
            _print_tags(registry, out)

        _platform_team(acr, registry, say, out)
    say(f"\ndemo finished in {time.monotonic() - started:.1f} s")
    return 0


def _platform_team(acr: Any, registry: Any, say: Callable[[str], None], out: TextIO) -> None:
    """A platform team's loop: tags `prod-<git sha7>-<timestamp>` from the image's revision label
    (the shape their Flux policies select), and a Flux Receiver nudged after each new tag."""
    import importlib

    import function_app
    from emulator.flux_receiver import FluxReceiver
    from emulator.functions_host import FunctionsHostServer

    token = secrets.token_hex(32)  # the Receiver's token: made up for this run, never printed
    with FluxReceiver(token) as receiver:
        os.environ.update(
            {
                "RETAG_TAG_TEMPLATE": TEAM_TEMPLATE,
                "FLUX_RECEIVER_URL": receiver.url,
                "FLUX_RECEIVER_TOKEN": token,
            }
        )
        app = importlib.reload(function_app).app  # a new worker with the team's settings
        with FunctionsHostServer(app) as host:
            acr.set_subscribers([host.webhook_url("on_image_pushed")])
            say(
                f"\nplatform team: RETAG_TAG_TEMPLATE={TEAM_TEMPLATE}, a Flux generic-hmac "
                f"Receiver at {receiver.url}"
            )
            revision = secrets.token_hex(20)
            say(f"push {TEAM_REPOSITORY}:{SOURCE_TAG} built from commit {revision}")
            digest = _push_labelled(registry, {"org.opencontainers.image.revision": revision})
            wait_for_generated_tag(registry, digest, repository=TEAM_REPOSITORY)
            acr.wait_for_deliveries()
            for nudge in receiver.nudges:
                say(
                    f"Flux Receiver: signature ok, {nudge.body['repository']}:"
                    f"{nudge.body['tag']} -> reconcile the ImageRepository now"
                )
            if not receiver.nudges:
                raise RuntimeError("the Flux Receiver was not nudged")
            say(f"\npush {TEAM_REPOSITORY}:{SOURCE_TAG} built without the revision label:")
            _push_labelled(registry, {})
            acr.wait_for_deliveries()
            _print_tags(registry, out, repository=TEAM_REPOSITORY)
            tags = [t.name for t in registry.list_tags(TEAM_REPOSITORY)]
            if f"prod-{revision[:7]}" not in " ".join(tags):
                raise RuntimeError(f"no prod-{revision[:7]}-<timestamp> tag on {TEAM_REPOSITORY}")


def _push_labelled(registry: Any, labels: dict[str, str]) -> str:
    import json

    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"build": secrets.token_hex(8), **labels}},
        }
    ).encode()
    digest: str = registry.push_image(
        TEAM_REPOSITORY, SOURCE_TAG, config, [secrets.token_bytes(512)]
    )
    return digest


def configure_environment(login_server: str, ca_bundle: str) -> None:
    os.environ.update(
        {
            "ACR_LOGIN_SERVER": login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": ca_bundle,
            "PRUNE_MODE": "delete",
            "PRUNE_KEEP": "1",
            "PRUNE_MIN_AGE": "30m",
            "RECONCILE_MODE": "apply",
            "RECONCILE_GRACE": "15m",
        }
    )


class _NotAuthLevelNoise(logging.Filter):
    """azure-functions warns that HTTP auth levels do not apply to an app without HTTP triggers
    (the worker logs the same); it says nothing about this demo."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Auth level is not applied")


def _show_outcome_lines(out: TextIO) -> None:
    """Print the Function's outcome lines (logger `acr-retag`) as the host would log them."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("  [%(levelname)s] %(message)s"))
    handler.addFilter(_NotAuthLevelNoise())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("acr-retag").setLevel(logging.INFO)


def _printer(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(line, file=out, flush=True)

    return say


def app_image() -> tuple[bytes, bytes]:
    """A small random image: (config, layer)."""
    config = (
        b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},'
        b'"config":{"Labels":{"build":"' + secrets.token_hex(8).encode() + b'"}}}'
    )
    return config, secrets.token_bytes(512)


def push_app_image(registry: Any, image: tuple[bytes, bytes] | None = None) -> str:
    config, layer = image if image is not None else app_image()
    digest: str = registry.push_image(REPOSITORY, SOURCE_TAG, config, [layer])
    return digest


def flux_selection(registry: Any) -> tuple[str, str]:
    """(tag, digest) Flux selects under docs/flux.md's ImagePolicy: the same model the tests
    use (tests/gitops/flux.py reads the policy from the doc and orders tags as Flux does)."""
    from tests.gitops.flux import ImagePolicy

    tags = {t.name: t.digest for t in registry.list_tags(REPOSITORY)}
    return ImagePolicy.documented().select_digest(tags)


def _rollback(
    registry: Any, acr: Any, image: tuple[bytes, bytes], say: Callable[[str], None]
) -> None:
    """Push #1's image to `latest` again (a re-import of the previous image): it gets a NEW
    generated tag that sorts newest, so Flux deploys the old digest again."""
    from retag.oci import short_digest

    tag, digest = flux_selection(registry)
    say(f"\nFlux (docs/flux.md ImagePolicy) selects {tag} -> {short_digest(digest)}")
    known = {t.name for t in registry.list_tags(REPOSITORY)}
    rolled_back = push_app_image(registry, image)
    say(f"\nrollback: push #1's image to {REPOSITORY}:{SOURCE_TAG} again -> {rolled_back}")
    wait_for_new_tag(registry, rolled_back, known)
    acr.wait_for_deliveries()
    tag, digest = flux_selection(registry)
    if digest != rolled_back:
        raise RuntimeError(f"Flux would select {tag} on {digest}, not the rolled-back image")
    say(f"Flux now selects {tag} -> {short_digest(digest)}: the rollback is deployed")


def wait_for_generated_tag(
    registry: Any, digest: str, timeout: float = 10.0, *, repository: str = REPOSITORY
) -> float:
    """Seconds until a tag other than the source tag is on `digest` (polled every 2 ms)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        tags = [t.name for t in registry.list_tags(repository, digest=digest)]
        if any(name != SOURCE_TAG for name in tags):
            return time.perf_counter() - started
        time.sleep(0.002)
    raise RuntimeError(f"no generated tag appeared on {digest} within {timeout} s")


def wait_for_new_tag(registry: Any, digest: str, known: set[str], timeout: float = 10.0) -> None:
    """Wait until a generated tag not in `known` is on `digest`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        tags = {t.name for t in registry.list_tags(REPOSITORY, digest=digest)}
        if tags - known - {SOURCE_TAG}:
            return
        time.sleep(0.002)
    raise RuntimeError(f"no new generated tag appeared on {digest} within {timeout} s")


def _print_tags(registry: Any, out: TextIO, *, repository: str = REPOSITORY) -> None:
    from retag.oci import short_digest

    tags = sorted(registry.list_tags(repository), key=lambda t: (t.last_updated_on, t.name))
    width = max([36, *(len(t.name) for t in tags)])  # 17-digit stamps make 38-character tags
    print(f"\n  {'TAG':<{width}} {'DIGEST':<20} UPDATED (UTC)", file=out)
    for tag in tags:
        when = tag.last_updated_on.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"  {tag.name:<{width}} {short_digest(tag.digest):<20} {when}", file=out)


def _prune(out: TextIO) -> None:
    """`python -m retag prune` as an operator would run it: the plan first, then for real."""
    from retag.cli.main import main as retag_cli

    policy = ["--keep", "1", "--min-age", "30m"]
    print("\n$ python -m retag prune --keep 1 --min-age 30m        # dry run: the plan", file=out)
    if retag_cli(["prune", *policy]) != 0:
        raise RuntimeError("prune dry run failed")
    print("\n$ python -m retag prune --keep 1 --min-age 30m --mode delete", file=out)
    if retag_cli(["prune", *policy, "--mode", "delete"]) != 0:
        raise RuntimeError("prune failed")
