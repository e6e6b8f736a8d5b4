"""Prune throughput under ACR-style throttling, and peak memory planning a 100,000-tag registry.

1. Throughput: REPOS repositories x TAGS generated tags each (default 20 x 500), emulator at 10 ms
   latency per request and `rate_limit_per_second=100` (a token bucket answering 429 with a
   counting-down `Retry-After`, like ACR). One prune run in delete mode (PRUNE_KEEP=10,
   PRUNE_CONCURRENCY=8) through the real adapter and SDK. Per repository some tags are protected:
   the source tag, 5 generated tags on its digest, 5 young, 5 locked tags, and the 10 newest;
   they are checked afterwards. Reported: deletes/s against the limit, failed deletions, protected
   tags deleted, requests per deleted tag (listings, token calls and 429 retries included).
2. Memory: a registry of MEMORY_REPOS x MEMORY_TAGS (default 20 x 5,000 = 100,000 tags) is
   planned in dry-run by a child process (so the in-process emulator's own memory does not count)
   that prints its peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, and VmHWM): once as
   `python -m retag prune --json` (every item with its reason) and once as the timer.

Content is real (images pushed over /v2); the many tags are added straight into the emulator's
store (its Python objects) because pushing 100,000 tags over HTTP would only measure the seeding.

Usage: `python -m benchmarks.bench_prune [--repos N --tags N --memory-repos N --memory-tags N]`;
prints one markdown section (the format `python -m benchmarks` assembles).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import report, table
from emulator import Emulator
from emulator.store import TagRecord
from retag.acr.client import AcrRegistry
from retag.cli.prune import main as cli_main
from retag.naming import TagTemplate
from retag.prune.job import prune_registry, run_scheduled_prune
from retag.prune.plan import PrunePolicy
from retag.settings import load_settings
from tests.support.images import docker_image, push_image

ROOT = Path(__file__).resolve().parent.parent

TEMPLATE = TagTemplate.parse("{tag}_{timestamp}_{digest:.12}", ["latest"])
KEEP = 10
CONCURRENCY = 8
LATENCY_MS = 10
RATE_LIMIT = 100.0
IMAGES_PER_REPO = 5


def policy() -> PrunePolicy:
    return PrunePolicy.for_scope(
        "generated",
        source_tags=["latest"],
        is_generated=TEMPLATE.is_generated,
        keep=KEEP,
        min_age=timedelta(days=7),
        untagged=False,
    )


def seed_repository(acr: Emulator, name: str, tags: int, seed: int) -> set[str]:
    """Push IMAGES_PER_REPO real images (the first one is `latest`), then add `tags` generated
    tags spread over them, straight into the store. Returns the tags that must survive."""
    now = datetime.now(UTC)
    images = [docker_image(seed=seed * 1000 + i, layer_size=32) for i in range(IMAGES_PER_REPO)]
    for i, image in enumerate(images):
        push_image(acr.endpoint, name, image, "latest" if i == 0 else None, verify=acr.ca_bundle)
    store = acr.registry.store
    records = []
    for i in range(tags):
        # 5 tags on the source digest (protected), the rest spread over the other images.
        image = images[0] if i % 100 == 7 else images[1 + i % (IMAGES_PER_REPO - 1)]
        when = now - timedelta(days=30, minutes=tags - i)  # old, oldest first
        if i >= tags - 5:
            when = now - timedelta(hours=tags - i)  # the 5 newest are young
        records.append((TEMPLATE.render("latest", when, image.digest), image.digest, when))
    newest = sorted(records, key=lambda r: (r[2], r[0]))[-KEEP:]
    protected = {"latest"} | {tag for tag, _, _ in newest}
    protected |= {tag for tag, digest, _ in records if digest == images[0].digest}
    with store._lock:  # benchmark seeding: the emulator's own objects, no HTTP
        repo = store._repos[name]
        for n, (tag, digest, when) in enumerate(records):
            record = TagRecord(tag, digest, when, when, next(store._seq))
            if n % 100 == 42:  # 5 locked tags
                record.attrs.delete_enabled = False
                protected.add(tag)
            repo.tags[tag] = record
    return protected


def surviving(acr: Emulator, name: str) -> set[str]:
    store = acr.registry.store
    with store._lock:
        return set(store._repos[name].tags)


def throughput(repos: int, tags: int) -> dict[str, object]:
    with Emulator(anonymous=True) as acr:
        protected: dict[str, set[str]] = {}
        for r in range(repos):
            name = f"bench/app{r:02d}"
            protected[name] = seed_repository(acr, name, tags, r + 1)
        planned_total = sum(tags + 1 - len(p) for p in protected.values())
        with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as reg:
            acr.set_faults(latency_ms=LATENCY_MS, rate_limit_per_second=RATE_LIMIT)
            acr.clear_requests()
            started = time.perf_counter()
            outcome = prune_registry(
                reg, policy(), mode="delete", concurrency=CONCURRENCY, keep_items=False
            )
            elapsed = time.perf_counter() - started
            acr.clear_faults()
        log = acr.requests()
        lost = sum(len(p - surviving(acr, name)) for name, p in protected.items())
        totals = outcome.totals()
        deleted = totals["deleted_tags"]
        return {
            "repositories": repos,
            "tags": repos * (tags + 1),
            "planned": planned_total,
            "deleted": deleted,
            "failed": totals["failed"],
            "remaining": totals["remaining"],
            "protected_deleted": lost,
            "seconds": elapsed,
            "deletes_per_second": deleted / elapsed,
            "requests": len(log),
            "throttled_429": sum(1 for e in log if e["status"] == 429),
            "requests_per_deleted_tag": len(log) / max(1, deleted),
        }


class Child:
    """A prune process started before the benchmark grows: Linux keeps a process's RSS high-water
    mark across fork and exec, so a child forked later would inherit the emulator's."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_prune", "--child"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, login_server: str, ca_bundle: str) -> dict[str, object]:
        order = {
            "login_server": login_server,
            "ca_bundle": ca_bundle,
            "path": self.path,
        }
        out, _ = self.process.communicate(json.dumps(order) + "\n", timeout=1800)
        if self.process.returncode != 0:
            raise SystemExit(f"bench_prune: child failed with {self.process.returncode}")
        result: dict[str, object] = json.loads(out)
        return result


def memory(repos: int, tags: int, children: list[Child]) -> dict[str, object]:
    with Emulator(anonymous=True) as acr:
        for r in range(repos):
            seed_repository(acr, f"mem/app{r:03d}", tags, 500 + r)
        out: dict[str, object] = {"tags": repos * (tags + 1)}
        for child in children:
            out[child.path] = child.run(acr.login_server, acr.ca_bundle)
        return out


def _vm_hwm_mb() -> float | None:
    """Peak RSS of this process's own address space (VmHWM), Linux only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def child() -> None:
    """The measured process: wait for the registry, then run the product path on all of it
    (`python -m retag prune --json` or the `prune_tags` timer) in dry-run; print peak RSS."""
    line = sys.stdin.readline()
    if not line:  # the benchmark stopped before needing this child
        return
    order = json.loads(line)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    env = {
        "ACR_LOGIN_SERVER": order["login_server"],
        "ACR_CREDENTIAL": "anonymous",
        "ACR_CA_BUNDLE": order["ca_bundle"],
        "PRUNE_MODE": "dry-run",
        "PRUNE_KEEP": str(KEEP),
        "PRUNE_MAX_DURATION": "1h",
    }
    started = time.perf_counter()
    if order["path"] == "cli-json":
        with open(os.devnull, "w") as sink:
            code = cli_main(["--json"], env=env, stdout=sink, stderr=sys.stderr)
        assert code == 0, code
        planned = None
    else:
        lines: list[str] = []
        with AcrRegistry(
            order["login_server"], credential="anonymous", ca_bundle=order["ca_bundle"]
        ) as reg:
            result = run_scheduled_prune(load_settings(env), reg, past_due=False, log=lines.append)
        planned = result.totals()["deleted_tags"]
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "vm_hwm_mb": _vm_hwm_mb(),
                "baseline_rss_mb": baseline,
                "planned_deletions": planned,
                "seconds": elapsed,
            }
        )
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--tags", type=int, default=500)
    parser.add_argument("--memory-repos", type=int, default=20)
    parser.add_argument(
        "--memory-tags",
        default="500,5000",
        help="generated tags per repository for each memory measurement (comma-separated)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child()
        return 0

    sizes = [int(size) for size in args.memory_tags.split(",")]
    measured = []
    for size in sizes:
        children = [Child("cli-json"), Child("timer")]  # started before anything grows
        measured.append(memory(args.memory_repos, size, children))
    t = throughput(args.repos, args.tags)
    rate = float(t["deletes_per_second"])  # type: ignore[arg-type]
    rows: list[list[object]] = [
        [
            f"throughput: {t['repositories']} repos x {args.tags} generated tags, "
            f"{LATENCY_MS} ms latency, limit {RATE_LIMIT:g}/s, concurrency {CONCURRENCY}",
            f"{rate:.1f} deletes/s = {100 * rate / RATE_LIMIT:.0f}% of the limit "
            f"({t['deleted']} deleted in {float(t['seconds']):.1f} s)",  # type: ignore[arg-type]
            ">= 90%",
        ],
        ["failed deletions", t["failed"], "0"],
        ["protected tags deleted", t["protected_deleted"], "0"],
        [
            "requests per deleted tag",
            f"{float(t['requests_per_deleted_tag']):.3f} ({t['requests']} requests, "  # type: ignore[arg-type]
            f"{t['throttled_429']} answered 429)",
            "~1",
        ],
    ]
    for m in measured:
        items, summaries = m["cli-json"], m["timer"]
        assert isinstance(items, dict)
        assert isinstance(summaries, dict)
        rows += [
            [
                f"peak RSS, `python -m retag prune --json` (dry-run) over {m['tags']:,} tags "
                f"({args.memory_repos} repos), every item with its reason",
                f"{float(items['peak_rss_mb']):.0f} MB (VmHWM {items['vm_hwm_mb']:.0f} MB; after "  # type: ignore[arg-type, str-format]
                f"imports {float(items['baseline_rss_mb']):.0f} MB; "  # type: ignore[arg-type]
                f"planned in {float(items['seconds']):.1f} s)",  # type: ignore[arg-type]
                "< 150 MB",
            ],
            [
                f"peak RSS, {m['tags']:,} tags, the `prune_tags` timer (`run_scheduled_prune`)",
                f"{float(summaries['peak_rss_mb']):.0f} MB (VmHWM {summaries['vm_hwm_mb']:.0f} MB)",  # type: ignore[arg-type, str-format]
                "< 150 MB",
            ],
        ]
    report(
        "Prune",
        table(["measure", "result", "target"], rows),
        "One run in delete mode through `retag.acr.AcrRegistry` against the emulator's token "
        "bucket; throttled deletions are retried (the transport honours `Retry-After`, the "
        "sweep backs off and requeues the repository), never failed. Requests are counted by "
        "the emulator (listing pages, token calls and 429 answers included). Memory is measured "
        "in a child process that only runs the prune, planning up to PRUNE_CONCURRENCY "
        "repositories at once.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
