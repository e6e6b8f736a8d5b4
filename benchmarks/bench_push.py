"""The GitOps invariant's cost (issue 12): requests and latency of `tag_push` per new tag and per
duplicate, a cold re-tag, and the pipeline re-tag as a whole process, `acr-retag tag` vs
`skopeo copy` (what a pipeline would run instead), on the emulator at 20 ms injected latency.

- new tag: a fresh image is pushed to `latest` (not measured), then `tag_push` (measured): the tags
  on the digest and the manifest read at once, then the PUT;
- duplicate: the same push again (a redelivery) from the same process: the tags on the digest;
- cold: a new adapter and an empty memory per push (a new Functions instance, a CLI process);
- process: `python -m retag tag REPO` and `skopeo copy docker://R:latest docker://R:<new>`, each a
  fresh process (imports, TLS handshakes, token flow), wall time and the emulator's requests.

Requests are counted from the emulator's request log. skopeo is skipped (with the reason printed)
when it is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import median, percentile, report, table
from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.naming import DEFAULT_TEMPLATE, TagTemplate
from retag.tagging import _RECENT, Push, tag_push
from tests.support.images import oci_image, push_image

N = int(os.environ.get("BENCH_PUSHES", "40"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "8"))
LATENCY_MS = 20
REPOSITORY = "bench/push"
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = TagTemplate.parse(DEFAULT_TEMPLATE, ["latest"])


def _push(acr: Emulator) -> Push:
    image = oci_image()
    acr.clear_faults()
    push_image(acr.endpoint, REPOSITORY, image, tag="latest", verify=acr.ca_bundle)
    acr.set_faults(latency_ms=LATENCY_MS)
    return Push(REPOSITORY, "latest", image.digest, datetime.now(UTC))


def _timed(acr: Emulator, call: Callable[[], object]) -> tuple[int, float]:
    acr.clear_requests()
    started = time.perf_counter()
    call()
    elapsed = (time.perf_counter() - started) * 1000
    return len(acr.requests()), elapsed


def engine_rows(acr: Emulator) -> list[list[object]]:
    warm = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
    tag_push(warm, TEMPLATE, _push(acr))  # the repository's token
    new: list[tuple[int, float]] = []
    duplicate: list[tuple[int, float]] = []
    cold: list[tuple[int, float]] = []
    for _ in range(N):
        push = _push(acr)
        new.append(_timed(acr, lambda push=push: tag_push(warm, TEMPLATE, push)))  # type: ignore[misc]
        duplicate.append(_timed(acr, lambda push=push: tag_push(warm, TEMPLATE, push)))  # type: ignore[misc]
    for _ in range(max(4, N // 4)):
        push = _push(acr)
        _RECENT.clear()
        fresh = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
        cold.append(_timed(acr, lambda: tag_push(fresh, TEMPLATE, push)))  # noqa: B023
        fresh.close()
    warm.close()
    rows = []
    for name, samples, target in (
        ("new tag (warm)", new, "<= 3 requests; p50 <= 52 ms"),
        ("duplicate / redelivery", duplicate, "1 request, no PUT"),
        ("cold (new instance, anonymous)", cold, "<= 5 requests"),
    ):
        counts = [c for c, _ in samples]
        times = [t for _, t in samples]
        rows.append(
            [
                name,
                f"{sum(counts) / len(counts):.2f}",
                f"{median(times):.1f}",
                f"{percentile(times, 95):.1f}",
                target,
            ]
        )
    return rows


def _process(acr: Emulator, argv: list[str], env: dict[str, str]) -> tuple[int, float]:
    acr.clear_requests()
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip()[:300]}")
    return len(acr.requests()), elapsed


def process_rows(acr: Emulator) -> list[list[object]]:
    env = {
        **os.environ,
        "ACR_LOGIN_SERVER": acr.login_server,
        "ACR_CREDENTIAL": "anonymous",
        "ACR_CA_BUNDLE": acr.ca_bundle,
    }
    rows: list[list[object]] = []
    ours = []
    for _ in range(PROCESSES):
        _push(acr)
        ours.append(_process(acr, [sys.executable, "-m", "retag", "tag", REPOSITORY], env))
    rows.append(_row("acr-retag tag (python -m retag)", ours))
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        print("skopeo not installed: its row is skipped")
        return rows
    with tempfile.TemporaryDirectory() as home:
        certs = Path(home) / "certs"
        certs.mkdir()
        shutil.copy(acr.ca_bundle, certs / "ca.crt")
        skopeo_env = {**env, "HOME": home, "XDG_RUNTIME_DIR": home, "XDG_CONFIG_HOME": home}
        theirs = []
        for i in range(PROCESSES):
            _push(acr)
            source = f"docker://{acr.login_server}/{REPOSITORY}:latest"
            target = f"docker://{acr.login_server}/{REPOSITORY}:skopeo-{i}-{time.time_ns()}"
            argv = [skopeo, "copy", "--src-cert-dir", str(certs), "--dest-cert-dir", str(certs)]
            theirs.append(_process(acr, [*argv, source, target], skopeo_env))
        rows.append(_row("skopeo copy (registry to registry)", theirs))
    return rows


def _row(name: str, samples: list[tuple[int, float]]) -> list[object]:
    counts = [c for c, _ in samples]
    times = [t for _, t in samples]
    return [name, f"{sum(counts) / len(counts):.1f}", f"{median(times):.3f}", f"{min(times):.3f}"]


def main() -> None:
    with Emulator() as acr:
        engine = engine_rows(acr)
        processes = process_rows(acr)
    report(
        "GitOps invariant: requests and latency per push (tag_push)",
        table(["case", "requests", "p50 ms", "p95 ms", "target (issue 12)"], engine),
        f"{N} pushes of a new image to `latest` at {LATENCY_MS} ms injected latency per request; "
        "each is tagged, then tagged again (a redelivery in the same process). Cold: a new "
        "adapter and an empty memory per push. Requests counted by the emulator.",
    )
    report(
        "Pipeline re-tag as a whole process: acr-retag tag vs skopeo copy",
        table(["command", "requests", "wall s (median)", "wall s (min)"], processes),
        f"{PROCESSES} runs each, one fresh process per run, at {LATENCY_MS} ms injected latency; "
        "a new image is pushed to `latest` before each run (not timed). skopeo copies the "
        "manifest (its blobs already exist: HEADs only) under a new tag.",
    )


if __name__ == "__main__":
    main()
