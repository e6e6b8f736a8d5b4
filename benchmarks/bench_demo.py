"""End to end, as in `make demo`: push to generated-tag-visible latency on loopback.

The whole chain is real: the SDK pushes `demo/app:latest` to the emulator over HTTPS; the
emulator delivers ImagePushed (Event Grid schema) to the Functions host stand-in over HTTP; the
host decodes it as the worker does and runs `on_image_pushed`, which GETs and PUTs the manifest;
the client polls the tags on the pushed digest (every 2 ms) until the generated tag is there.
The figure is from the end of the manifest PUT of the push to the first listing that shows the tag.
"""

from __future__ import annotations

import os

from benchmarks.common import median, percentile, report, table
from emulator import Emulator
from emulator.demo import configure_environment, push_app_image, wait_for_generated_tag
from emulator.functions_host import FunctionsHostServer

PUSHES = int(os.environ.get("BENCH_DEMO_PUSHES", "50"))
WARMUP = 3


def main() -> None:
    with Emulator() as acr:
        configure_environment(acr.login_server, acr.ca_bundle)
        import function_app
        from retag.acr.client import AcrRegistry

        registry = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
        with FunctionsHostServer(function_app.app) as host:
            acr.set_subscribers([host.webhook_url("on_image_pushed")])
            latencies = []
            for i in range(WARMUP + PUSHES):
                digest = push_app_image(registry)
                latency = wait_for_generated_tag(registry, digest) * 1000
                if i >= WARMUP:
                    latencies.append(latency)
    rows = [
        [
            PUSHES,
            f"{median(latencies):.1f}",
            f"{percentile(latencies, 95):.1f}",
            f"{max(latencies):.1f}",
        ]
    ]
    report(
        "End to end: push to generated tag visible (make demo, loopback)",
        table(["pushes", "p50 ms", "p95 ms", "max ms"], rows),
        "Emulator -> Event Grid delivery -> Functions host stand-in -> on_image_pushed -> "
        f"registry, all on loopback with no injected latency; {WARMUP} warm-up pushes not counted. "
        "The mission's goal is a new tag within a second of the push.",
    )


if __name__ == "__main__":
    main()
