"""Fault soak: every push to `latest` gets exactly one correct tag, whatever the network does.

1. Generate (faults off, no subscriber): pushes across 20 repositories, each a new digest or a
   re-push of a digest pushed before (a redeploy), one emulator-clock second apart so every push
   has its own timestamp. The events are the ones the emulator emitted (ACR's shape), including
   the untagged platform-manifest events of multi-arch pushes.
2. Deliver (under faults): every event once plus 50 % duplicates, shuffled, in batches of 1-3,
   through the Functions host decode path into `on_image_pushed`, by the Event Grid simulator
   (concurrent, redelivers every failed delivery with a compressed backoff, up to 30 attempts).
   Faults (token calls included): 10 ms latency, 10 % 503, 5 % 429 `TOOMANYREQUESTS` with
   `Retry-After`, 2 % connection resets; plus one 6 s outage (every request 503), so that Event
   Grid's redelivery is exercised in every run.
3. Check the final state exactly (see `test_soak`), and print the figures.

Size: `RETAG_SOAK_SIZE` = `ci` (default, what `make test` runs: the issue's 500 events),
`full` (`make soak`: 2000 events) or a number of events (>= 20). `RETAG_SOAK_SEED` varies the
pushes, the delivery order and the faults.
"""

from __future__ import annotations

import collections
import copy
import itertools
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from emulator import Emulator
from emulator.functions_host import DeliveryResult
from retag.acr.client import AcrRegistry
from retag.naming import TagTemplate
from tests.support.eventgrid import EventGridSimulator
from tests.support.function_app import loaded_function_app
from tests.support.images import Image, V2Session, docker_image, oci_image, oci_index, push_image

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
SOURCE_TAG = "latest"
TEMPLATE = "{tag}_{timestamp:ms}_{digest:.12}"  # the default RETAG_TAG_TEMPLATE, set explicitly
INVOCATION_LIMIT_MS = 25_000
SEED = int(os.environ.get("RETAG_SOAK_SEED", "20261129"))

FAULTS: dict[str, Any] = {
    "latency_ms": 10,
    "error_rate": 0.10,
    "error_status": 503,
    "reset_rate": 0.02,
    "throttle_rate": 0.05,
    "throttle_retry_after": 1,
    "include_auth": True,
}
OUTAGE_SECONDS = 6.0
"""One registry outage (every request 503) once a quarter of the batches have been sent: longer
than an invocation's in-call retries (~3 s of backoff), so the invocations in flight fail and
Event Grid's redelivery is exercised every run, not only when the random faults line up."""


@dataclass(frozen=True)
class Size:
    events: int
    repositories: int = 20


def soak_size() -> Size:
    value = os.environ.get("RETAG_SOAK_SIZE", "ci").strip().lower()
    if value == "ci":
        return Size(events=500)  # the spec: ~45-60 s on a loaded 2-core machine
    if value == "full":
        return Size(events=2000)
    if value.isdigit() and int(value) >= 20:
        return Size(events=int(value))
    raise pytest.UsageError(f"RETAG_SOAK_SIZE={value!r}: use ci, full or a number >= 20")


# --------------------------------------------------------------------------------------------
# 1. Generation


@dataclass
class Pushes:
    events: list[dict[str, Any]]
    """Every ImagePushed the emulator emitted (tagged and untagged), in push order."""
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def tagged(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["data"]["target"].get("tag") == SOURCE_TAG]


class PushSession(V2Session):
    """Sends the repository's push token up front (`V2Session` answers every 401 anew, which
    doubles the requests of the generation phase)."""

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        path = urlsplit(self.url(path_or_url)).path.removeprefix("/v2/")
        repository = re.split(r"/(?:manifests|blobs)/", path, maxsplit=1)[0]
        token = self._token(
            {
                "realm": f"{self.base_url}/oauth2/token",
                "service": urlsplit(self.base_url).netloc,
                "scope": f"repository:{repository}:pull,push",
            }
        )
        headers = {**(kwargs.pop("headers", None) or {}), "Authorization": f"Bearer {token}"}
        return super().request(method, path_or_url, headers=headers, **kwargs)


def generate(acr: Emulator, size: Size, rng: random.Random) -> Pushes:
    repositories = [f"soak/app{n:02d}" for n in range(size.repositories)]
    history: dict[str, list[Image]] = {repo: [] for repo in repositories}
    kinds: collections.Counter[str] = collections.Counter()
    with PushSession(acr.endpoint, verify=acr.ca_bundle) as session:
        for number in range(size.events):
            index = number if number < len(repositories) else rng.randrange(len(repositories))
            repo = repositories[index]
            acr.advance_clock(1)  # one push per emulator second: distinct timestamps
            pushed = history[repo]
            if pushed and rng.random() < 0.4:
                image = rng.choice(pushed)  # the same digest pushed again later (a redeploy)
                kinds["re-push"] += 1
                answer = session.put_manifest(repo, SOURCE_TAG, image.raw, image.media_type)
                assert answer.status_code == 201, answer.text
                continue
            draw = rng.random()
            if draw < 0.7:  # shares the repository's blobs: only the manifest is new
                image = oci_image(
                    seed=SEED + index,
                    annotations={"org.opencontainers.image.revision": f"push-{number}"},
                )
                kinds["oci"] += 1
            elif draw < 0.85:
                image = docker_image(seed=rng.getrandbits(64))
                kinds["docker"] += 1
            else:
                image = oci_index(seed=rng.getrandbits(64))
                kinds["oci-index"] += 1
            push_image(acr.endpoint, repo, image, SOURCE_TAG, verify=acr.ca_bundle, session=session)
            pushed.append(image)
    events = [copy.deepcopy(e) for e in acr.events() if e["eventType"] == IMAGE_PUSHED]
    return Pushes(events=events, kinds=kinds)


# --------------------------------------------------------------------------------------------
# 2. Delivery under faults


class FaultProfiles:
    """Drives the emulator's faults over time: the soak profile (FAULTS), and one outage (503 to
    everything, token calls included) started by `outage()`."""

    def __init__(self, acr: Emulator, seed: int) -> None:
        self.acr = acr
        self.seed = seed
        self.switches = 0
        self._started = time.monotonic()
        self._outage: tuple[float, float] | None = None
        self._current: str | None = None
        self._lock = threading.Lock()
        self._applying = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)

    def outage(self, seconds: float) -> None:
        """The registry fails every request for `seconds`, from now (once; later calls no-op)."""
        with self._lock:
            if self._outage is None:
                now = time.monotonic()
                self._outage = (now, now + seconds)
        self._apply()

    def _profile(self) -> str:
        now = time.monotonic()
        with self._lock:
            outage = self._outage
        if outage is not None and outage[0] <= now < outage[1]:
            return "outage"
        return "base"

    def _apply(self) -> None:
        with self._applying:
            profile = self._profile()
            if profile == self._current:
                return
            self._current = profile
            self.switches += 1
            seed = self.seed + self.switches
            if profile == "outage":
                self.acr.set_faults(error_rate=1.0, error_status=503, include_auth=True, seed=seed)
            else:
                self.acr.set_faults(**FAULTS, seed=seed)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._apply()

    def __enter__(self) -> FaultProfiles:
        self._apply()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.acr.clear_faults()


def batches_of(events: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """Every event once plus a copy of half of them, shuffled, in batches of 1 to 3."""
    items = [copy.deepcopy(e) for e in events]
    items += [copy.deepcopy(e) for e in rng.sample(events, len(events) // 2)]
    rng.shuffle(items)
    batches: list[list[dict[str, Any]]] = []
    while items:
        size = rng.choice((1, 1, 1, 2, 3))
        batches.append(items[:size])
        items = items[size:]
    return batches


class OutcomeLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("acr-retag outcome="):
            with self._guard:
                self.lines.append(message)


@pytest.fixture
def outcome_lines() -> Iterator[OutcomeLines]:
    handler = OutcomeLines()
    logger = logging.getLogger("acr-retag")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


# --------------------------------------------------------------------------------------------
# 3. Checks


def expected_tags(pushes: Pushes) -> dict[str, dict[str, str]]:
    """repository -> {tag: digest}: the source tag on the last push, and the tag each push WOULD
    get (a push is only tagged when its digest did not already carry the newest generated tag
    when its event was handled, which depends on delivery order: see `assert_invariant`)."""
    template = TagTemplate.parse(TEMPLATE, [SOURCE_TAG])
    expected: dict[str, dict[str, str]] = collections.defaultdict(dict)
    for event in pushes.tagged:
        target = event["data"]["target"]
        pushed_at = datetime.fromisoformat(event["data"]["timestamp"].replace("Z", "+00:00"))
        tag = template.render(SOURCE_TAG, pushed_at, target["digest"])
        repo = expected[target["repository"]]
        assert tag not in repo, f"two pushes render the same tag {tag}: timestamps not distinct"
        repo[tag] = target["digest"]
        repo[SOURCE_TAG] = target["digest"]  # pushes are in order: the last one wins
    return expected


def assert_invariant(final: dict[str, dict[str, str]], expected: dict[str, dict[str, str]]) -> None:
    """Issue 12's promise, per repository: the source tag is where the last push put it; every
    generated tag is the tag of one real push and points to that push's digest (none invented,
    none moved, so no push has two); and the newest generated tag (Flux's choice under the
    documented policy) points to the digest the source tag points to."""
    template = TagTemplate.parse(TEMPLATE, [SOURCE_TAG])
    assert set(final) == set(expected)
    for repository, tags in final.items():
        wanted = expected[repository]
        assert tags[SOURCE_TAG] == wanted[SOURCE_TAG], repository
        generated = {name: digest for name, digest in tags.items() if name != SOURCE_TAG}
        assert generated, repository
        for name, digest in generated.items():
            assert wanted.get(name) == digest, (repository, name)
        newest = max(generated, key=lambda name: template.order_key(name) or ())
        assert generated[newest] == tags[SOURCE_TAG], (repository, newest)


def actual_tags(acr: Emulator) -> dict[str, dict[str, str]]:
    with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as reg:
        return {
            repo: {t.name: t.digest for t in reg.list_tags(repo)}
            for repo in reg.list_repositories()
        }


def test_soak(outcome_lines: OutcomeLines) -> None:
    size = soak_size()
    rng = random.Random(SEED)
    with Emulator() as acr:
        started = time.monotonic()
        pushes = generate(acr, size, rng)
        generated_in = time.monotonic() - started
        assert len(pushes.tagged) == size.events
        assert acr.subscribers() == []
        expected = expected_tags(pushes)
        acr.clear_requests()

        with loaded_function_app(acr, RETAG_TAG_TEMPLATE=TEMPLATE) as app:
            batches = batches_of(pushes.events, rng)
            posts = itertools.count(1)
            profiles = FaultProfiles(acr, SEED)

            def subscriber(body: bytes) -> DeliveryResult:
                if next(posts) == len(batches) // 4:
                    profiles.outage(OUTAGE_SECONDS)
                return app.deliver(body)

            grid = EventGridSimulator(subscriber, concurrency=8)
            started = time.monotonic()
            with profiles:
                deliveries = grid.deliver_all(batches)
            delivered_in = time.monotonic() - started

        log = acr.requests()
        final = actual_tags(acr)

    stats = grid.stats()
    invocations = [
        invocation
        for delivery in deliveries
        for attempt in delivery.attempts
        if attempt.answer is not None
        for invocation in attempt.answer.invocations
    ]
    faults = collections.Counter(entry.get("fault", "none") for entry in log)
    statuses = collections.Counter(entry["status"] for entry in log)
    retry_after = sum(1 for entry in log if entry.get("fault") == "throttled")
    print(
        f"\nsoak: {size.events} pushes to {len(expected)} repositories "
        f"({dict(pushes.kinds)}), {len(pushes.events)} ImagePushed events "
        f"({len(pushes.events) - size.events} untagged), generated in {generated_in:.1f} s"
        f"\nsoak: {sum(len(b) for b in batches)} event deliveries in {stats['batches']} batches, "
        f"{stats['attempts']} webhook POSTs, {stats['retries']} Event Grid retries "
        f"({stats['redelivered_batches']} batches redelivered, max {stats['max_attempts_used']} "
        f"attempts), {len(invocations)} invocations "
        f"({sum(1 for i in invocations if not i.ok)} failed), max invocation "
        f"{max(i.duration_ms for i in invocations):.0f} ms"
        f"\nsoak: {len(log)} registry requests: {faults['error']} x 503, {retry_after} x 429 "
        f"with Retry-After, {faults['reset']} resets, one {OUTAGE_SECONDS:g} s outage "
        f"({profiles.switches} fault profile "
        f"switches); statuses {dict(sorted(statuses.items()))}; delivered in {delivered_in:.1f} s"
    )

    # The outage made Event Grid redeliver; every delivery eventually succeeded.
    assert stats["retries"] > 0
    assert stats["dead_lettered"] == 0, [d for d in deliveries if d.dead_lettered][:3]
    assert all(d.delivered for d in deliveries)
    # No invocation came near Event Grid's 30 s response timeout.
    assert max(i.duration_ms for i in invocations) < INVOCATION_LIMIT_MS
    # Exactly one outcome line per invocation (failed attempts included), and together they
    # account for every request the registry saw (each line counts its own event's only).
    assert len(outcome_lines.lines) == len(invocations)
    counted = sum(int(re.search(r" requests=(\d+) ", line)[1]) for line in outcome_lines.lines)
    assert counted == len(log)
    # The faults really happened.
    assert faults["error"] > 0
    assert faults["reset"] > 0
    assert retry_after > 0

    # Final state: the invariant (Flux selects the digest the source tag points to, every
    # generated tag is one real push's).
    assert_invariant(final, expected)

    # Nothing but generated-tag PUTs was written, and no tag ever moved.
    writes = [e for e in log if e["method"] != "GET" and not e["path"].startswith("/oauth2/")]
    assert {e["method"] for e in writes} <= {"PUT"}, collections.Counter(
        (e["method"], e["path"]) for e in writes
    )
    for entry in writes:
        if entry["status"] != 201:
            continue
        repo = entry["path"].removeprefix("/v2/").rsplit("/manifests/", 1)[0]
        assert entry["tag"] != SOURCE_TAG, entry
        assert expected[repo].get(entry["tag"]) == entry["digest"], entry
        assert entry["previous_digest"] in (None, entry["digest"]), f"tag overwritten: {entry}"
