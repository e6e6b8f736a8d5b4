"""HTTP attempts behind one failing registry call, per retry layer (issue 11: never stacked).

Every count is taken from the far side: the emulator's request log (503 on every request) or, for
TLS, the TCP connections a counting TLS listener accepted (its certificate is signed by a CA the
client does not trust). The adapter is warm (tokens cached) before faults are switched on, and
every back-off is shrunk to milliseconds, so what is counted is attempts, not waiting.

Rows:
- adapter `list_tags` / `list_repositories`: one call of `retag.acr.client.AcrRegistry`;
- prune, a repository's tag listing failing: `prune_registry` (the fault is switched on once the
  catalog page has arrived, by the repository filter);
- prune / reconcile, the catalog listing failing: `prune_registry` / `reconcile_registry`;
- TLS: one adapter call and one prune run against a registry whose certificate is not trusted.

Runs against any checkout (`PYTHONPATH=<tree> python -m benchmarks.bench_retry_layers`): it only
uses the adapter's constructor, its listings and the engines' entry points.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import trustme

from benchmarks.common import report, table
from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.naming import TagTemplate
from retag.prune.job import prune_registry
from retag.prune.plan import PrunePolicy
from retag.reconcile.job import reconcile_registry
from retag.registry import RegistryError
from retag.settings import load_settings
from tests.acr.tls import CountingTlsServer
from tests.support.images import oci_image, push_image

Row = tuple[str, int, str, float]


def policy() -> PrunePolicy:
    template = TagTemplate.parse("{tag}_{timestamp}_{digest:.12}", ("latest",))
    return PrunePolicy(
        source_tags=frozenset({"latest"}),
        is_candidate=template.is_generated,
        keep=1,
        min_age=timedelta(0),
        untagged=False,
    )


def settled(acr: Emulator) -> int:
    """The number of logged requests once the log stops growing."""
    count = -1
    while count != len(acr.requests()):
        count = len(acr.requests())
        time.sleep(0.1)
    return count


def failing(acr: Emulator, registry: AcrRegistry, call: Callable[[], object]) -> tuple[int, str]:
    acr.clear_requests()
    acr.set_faults(error_rate=1.0, error_status=503)
    try:
        call()
        outcome = "no error"
    except RegistryError as exc:
        outcome = type(exc).__name__
    count = settled(acr)
    acr.clear_faults()
    return count, outcome


def engine_row(acr: Emulator, name: str, fault_first: bool, run: Callable[[], object]) -> Row:
    """One engine run's attempts; what it returned (`ok` when its report has one)."""
    acr.clear_requests()
    if fault_first:
        acr.set_faults(error_rate=1.0, error_status=503)
    started = time.perf_counter()
    try:
        report = run()
        ok = getattr(report, "ok", None)
        outcome = "report" if ok is None else f"report ok={str(ok).lower()}"
    except Exception as exc:  # an engine not yet ported to this adapter: say so, keep going
        outcome = f"crashed: {type(exc).__name__}"
    elapsed = time.perf_counter() - started
    count = settled(acr)
    acr.clear_faults()
    return name, count, outcome, elapsed


def emulator_rows() -> list[Row]:
    rows: list[Row] = []
    with Emulator() as acr:
        push_image(acr.endpoint, "bench/app", oci_image(seed=1), "latest", verify=acr.ca_bundle)
        registry = AcrRegistry(
            acr.login_server,
            credential="anonymous",
            ca_bundle=acr.ca_bundle,
            retry_backoff_factor=0.001,
            retry_backoff_max=0.01,
        )
        list(registry.list_tags("bench/app"))
        list(registry.list_repositories())
        for name, call in (
            ("adapter list_tags (one page)", lambda: list(registry.list_tags("bench/app"))),
            ("adapter list_repositories", lambda: list(registry.list_repositories())),
        ):
            started = time.perf_counter()
            count, outcome = failing(acr, registry, call)
            rows.append((name, count, outcome, time.perf_counter() - started))

        def fault_after_catalog(repository: str) -> bool:
            acr.set_faults(error_rate=1.0, error_status=503)
            return True

        settings = load_settings(
            {
                "ACR_LOGIN_SERVER": acr.login_server,
                "ACR_CREDENTIAL": "anonymous",
                "ACR_CA_BUNDLE": acr.ca_bundle,
            }
        )
        runs: list[tuple[str, bool, Callable[[], object]]] = [
            (
                "prune: a repository's tag listing",
                False,
                lambda: prune_registry(
                    registry,
                    policy(),
                    mode="dry-run",
                    repositories=fault_after_catalog,
                    sleep=lambda _: None,
                    concurrency=1,
                ),
            ),
            (
                "prune: the catalog listing",
                True,
                lambda: prune_registry(
                    registry, policy(), mode="dry-run", sleep=lambda _: None, concurrency=1
                ),
            ),
            (
                "reconcile: the catalog listing",
                True,
                lambda: reconcile_registry(
                    registry, settings, retry_delay=0.001, max_retry_delay=0.01, concurrency=1
                ),
            ),
        ]
        for name, fault_first, run in runs:
            rows.append(engine_row(acr, name, fault_first, run))
        registry.close()
    return rows


def tls_rows() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder, CountingTlsServer() as server:
        other_ca = Path(folder, "other-ca.pem")
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        registry = AcrRegistry(
            server.login_server,
            credential="anonymous",
            ca_bundle=str(other_ca),
            retry_backoff_factor=0.001,
            retry_backoff_max=0.01,
        )
        started = time.perf_counter()
        try:
            list(registry.list_tags("bench/app"))
            outcome = "no error"
        except RegistryError as exc:
            outcome = type(exc).__name__
        rows.append(
            ("TLS: adapter list_tags", server.accepted, outcome, time.perf_counter() - started)
        )
        before = server.accepted
        started = time.perf_counter()
        try:
            report = prune_registry(
                registry, policy(), mode="dry-run", sleep=lambda _: None, concurrency=1
            )
            ok = getattr(report, "ok", None)
            outcome = "report" if ok is None else f"report ok={str(ok).lower()}"
        except Exception as exc:  # see engine_row
            outcome = f"crashed: {type(exc).__name__}"
        elapsed = time.perf_counter() - started
        rows.append(("TLS: prune run (catalog)", server.accepted - before, outcome, elapsed))
        registry.close()
    return rows


def main() -> None:
    rows = emulator_rows() + tls_rows()
    report(
        "Retry layers: HTTP attempts behind one failing call",
        table(
            ["failing call", "HTTP attempts", "raised", "s"],
            [(name, count, outcome, f"{seconds:.2f}") for name, count, outcome, seconds in rows],
        ),
        "Every request answered 503 (or every TLS handshake refused). Adapter defaults "
        "(`retry_total=3`), sweep default (`max_attempts=2`: one requeue of a repository); "
        "back-off shrunk to milliseconds.",
    )


if __name__ == "__main__":
    main()
