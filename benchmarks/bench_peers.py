"""Requests per re-tag: `crane tag` (go-containerregistry v0.22.1) vs acr-retag.

Both add a tag to an existing manifest against the same emulator (anonymous pull/push, like the
demo), over HTTPS, counted from the emulator's request log:

- `crane tag <repo>:latest <new>`: one process per tag (as a pipeline step would run it); it
  pings, fetches a token per scope set and moves the manifest with one GET + one PUT;
- acr-retag, warm: `add_generated_tag` through one `AcrRegistry` (tokens cached per scope), the
  steady state of a Function instance;
- acr-retag, cold: a new `AcrRegistry` per tag (a cold Function instance: token dance included).

Neither moves a layer (0 blob requests). crane is built by tests/support/gotools.py (needs `go`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

from benchmarks.common import median, report, table, timed_calls
from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.tagging import add_generated_tag
from tests.support.gotools import CRANE, build
from tests.support.images import docker_image, push_image

N = int(os.environ.get("BENCH_PEER_TAGS", "20"))
REPOSITORY = "bench/peers"


def counts(log: list[dict[str, Any]]) -> tuple[float, float, float, float, float]:
    """Per tag: all requests, 401 challenges, token calls, manifest requests answered 2xx, blobs."""
    challenged = sum(r["status"] == 401 for r in log)
    tokens = sum(r["path"].startswith("/oauth2/") for r in log)
    manifest = sum("/manifests/" in r["path"] and 200 <= r["status"] < 300 for r in log)
    blob = sum("/blobs/" in r["path"] for r in log)
    return len(log) / N, challenged / N, tokens / N, manifest / N, blob / N


def measure(acr: Emulator, tag: Callable[[str], None]) -> tuple[list[float], list[float]]:
    log, latencies = timed_calls(acr, tag, N)
    return list(counts(log)), latencies


def main() -> None:
    crane_binary = build(CRANE)
    rows = []
    with Emulator() as acr:
        image = docker_image(layers=3)
        digest = push_image(acr.endpoint, REPOSITORY, image, tag="latest", verify=acr.ca_bundle)
        env = {**os.environ, "SSL_CERT_FILE": acr.ca_bundle, "DOCKER_CONFIG": "/nonexistent"}

        def crane_tag(tag: str) -> None:
            subprocess.run(
                [str(crane_binary), "tag", f"{acr.login_server}/{REPOSITORY}:latest", tag],
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            assert acr.tag_digest(REPOSITORY, tag) == digest

        warm = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)

        def retag_warm(tag: str) -> None:
            add_generated_tag(warm, REPOSITORY, digest, tag, check_existing=False)

        def retag_cold(tag: str) -> None:
            cold = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
            add_generated_tag(cold, REPOSITORY, digest, tag, check_existing=False)

        for name, tag in (
            (f"crane tag ({CRANE.version}, one process per tag)", crane_tag),
            ("acr-retag, warm (token cache)", retag_warm),
            ("acr-retag, cold (new client per tag)", retag_cold),
        ):
            per_tag, latencies = measure(acr, tag)
            rows.append([name, *(f"{v:.2f}" for v in per_tag), f"{median(latencies):.1f}"])
    report(
        "Peers: requests per added tag, crane tag vs acr-retag",
        table(
            ["client", "requests / tag", "401s", "token calls", "manifest 2xx", "blob", "p50 ms"],
            rows,
        ),
        f"{N} tags added to one manifest (3 layers) after one warm-up, anonymous access, no "
        "injected latency; requests counted by the emulator. crane's p50 includes starting the "
        "process. Both move the manifest with one GET + one PUT and no blob request.",
    )


if __name__ == "__main__":
    main()
