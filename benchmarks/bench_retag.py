"""Requests and latency per re-tag: acr-retag vs the plain SDK vs raw HTTP (the physical minimum).

All three re-tag the same manifest (GET by digest, PUT the same bytes under a new tag) against the
emulator over HTTPS, at 0 ms and 20 ms injected latency per request (token calls included):

- acr-retag: `retag.tagging.add_generated_tag` through `retag.acr.client.AcrRegistry` (token cache);
- plain SDK: `ContainerRegistryClient.get_manifest` (raw bytes captured with `raw_response_hook`)
  + `set_manifest`, as the SDK ships: it re-runs the 401 challenge and both token calls per call;
- raw HTTP: `requests` GET + PUT with one access token fetched beforehand: 2 requests, no SDK.

Requests are counted from the emulator's own request log. Warm-up re-tags are not measured.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import requests
from azure.containerregistry import ContainerRegistryClient

from benchmarks.common import median, percentile, report, table, timed_calls
from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.tagging import add_generated_tag
from tests.support.images import docker_image, push_image

N = int(os.environ.get("BENCH_RETAGS", "100"))
WARMUP = 3
REPOSITORY = "bench/app"


def measure(acr: Emulator, retag: Callable[[str], None]) -> tuple[float, list[float]]:
    """(requests per re-tag, latencies in ms) over N re-tags after WARMUP."""
    log, latencies = timed_calls(acr, retag, N, WARMUP)
    return len(log) / N, latencies


def acr_retag(acr: Emulator, digest: str) -> Callable[[str], None]:
    registry = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)

    def retag(tag: str) -> None:
        add_generated_tag(registry, REPOSITORY, digest, tag, check_existing=False)

    return retag


def plain_sdk(acr: Emulator, digest: str) -> Callable[[str], None]:
    client = ContainerRegistryClient(
        acr.endpoint,
        credential=None,
        audience="https://containerregistry.azure.net",
        connection_verify=acr.ca_bundle,
    )

    def retag(tag: str) -> None:
        captured: list[tuple[bytes, str]] = []

        def hook(response: Any) -> None:
            http = response.http_response
            captured.append((http.body(), http.headers["Content-Type"].split(";")[0]))

        client.get_manifest(REPOSITORY, digest, raw_response_hook=hook)
        raw, media_type = captured[-1]
        new = client.set_manifest(REPOSITORY, io.BytesIO(raw), tag=tag, media_type=media_type)
        assert new == digest, "plain SDK changed the digest"

    return retag


def raw_http(acr: Emulator, digest: str) -> Callable[[str], None]:
    session = requests.Session()
    verify = (
        acr.ca_bundle
    )  # per request: REQUESTS_CA_BUNDLE in the environment beats session.verify
    scope = f"repository:{REPOSITORY}:pull,push"
    token = session.post(
        f"{acr.endpoint}/oauth2/token",
        data={"grant_type": "password", "service": acr.login_server, "scope": scope},
        verify=verify,
        timeout=10,
    ).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    accept = "application/vnd.docker.distribution.manifest.v2+json"

    def retag(tag: str) -> None:
        got = session.get(
            f"{acr.endpoint}/v2/{REPOSITORY}/manifests/{digest}",
            headers={"Accept": accept},
            verify=verify,
            timeout=10,
        )
        got.raise_for_status()
        put = session.put(
            f"{acr.endpoint}/v2/{REPOSITORY}/manifests/{tag}",
            data=got.content,
            headers={"Content-Type": got.headers["Content-Type"]},
            verify=verify,
            timeout=10,
        )
        put.raise_for_status()
        assert put.headers["Docker-Content-Digest"] == digest

    return retag


def main() -> None:
    rows = []
    for latency_ms in (0, 20):
        with Emulator() as acr:
            image = docker_image()
            push_image(acr.endpoint, REPOSITORY, image, tag="latest", verify=acr.ca_bundle)
            acr.set_faults(latency_ms=latency_ms)
            for name, make in (
                ("acr-retag", acr_retag),
                ("plain SDK (no token cache)", plain_sdk),
                ("raw HTTP GET+PUT (minimum)", raw_http),
            ):
                per_retag, latencies = measure(acr, make(acr, image.digest))
                rows.append(
                    [
                        name,
                        latency_ms,
                        f"{per_retag:.2f}",
                        f"{median(latencies):.1f}",
                        f"{percentile(latencies, 95):.1f}",
                    ]
                )
    report(
        "Re-tag: requests and latency per re-tag",
        table(["client", "injected latency ms", "requests / re-tag", "p50 ms", "p95 ms"], rows),
        f"{N} re-tags of one repository after {WARMUP} warm-up re-tags; requests counted by the "
        "emulator. Targets: exactly 2 requests per re-tag in steady state; p50 <= 2.5 x 20 ms = "
        "50 ms at 20 ms injected latency.",
    )


if __name__ == "__main__":
    main()
