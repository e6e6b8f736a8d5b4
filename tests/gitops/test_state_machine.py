"""The GitOps invariant over random sequences (hypothesis.stateful), end to end on the emulator.

Rules: push a new digest, roll back to an old digest, re-push the identical image; deliver,
drop, duplicate (redeliver), delay (leave pending while other things happen) and reorder (any
pending event may go next) the ImagePushed events the emulator emitted; a geo-replica's copy of
an event with a later timestamp; the CLI `tag`; a reconcile run; a prune run (keep >= 1); the
registry clock moving on. Events go through the Functions host stand-in into `function_app`;
reconcile and prune run the product's engines (`reconcile_registry`, `prune_registry`, what the
timers call) with the registry's clock as `now`.

After every step where every event was delivered, or reconcile ran past the grace period since
an event was dropped ("settled"):
- the tag Flux selects (docs/flux.md's ImagePolicy, tests/gitops/flux.py) points to the digest
  `latest` points to;
- no digest carries more generated tags than it had pushes (no push gets two tags);
- a prune run never deleted the tag Flux selected before it;
and at every step: no generated tag is ever rewritten (a PUT to a tag already on that digest).

The main machine leaves out what the product does not do yet; each such part is a variant below,
`xfail(strict=True)`, whose `@initialize` walks its failing case first, so the variant fails
deterministically today and flips to a failure ("XPASS strict") the moment the product is fixed:
- `LostRollbacks`: any event may be dropped, a rollback's too (pending: reconcile's "in sync").
- `WithCli`: the CLI `tag` rule (pending: the CLI does not use `retag.tagging.tag_push`).
- `PruneByName`: prune must age a generated tag by the time in its name (pending).
- `StaleEvents`: a re-push while events are pending, and replica copies of superseded pushes
  (a product bug these tests found, see the report: an event of a push that `latest` has moved
  away from is still tagged, and may sort newest).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from azure.containerregistry import ContainerRegistryClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from emulator import Emulator
from retag.prune.job import prune_registry
from retag.prune.plan import KeepReason, PrunePolicy
from retag.reconcile.job import reconcile_registry
from retag.tagging import _RECENT
from tests.gitops.world import SOURCE, World, pushed_at, replica_copy
from tests.support.function_app import LoadedApp, loaded_function_app
from tests.support.images import Image, oci_image

GRACE = timedelta(minutes=15)  # RECONCILE_GRACE default
PRUNE_MIN_AGE = timedelta(hours=1)
REGIONS = ("westeurope", "japaneast", "brazilsouth")


class GitOpsMachine(RuleBasedStateMachine):
    acr: ClassVar[Emulator]
    app: ClassVar[LoadedApp]
    sdk: ClassVar[ContainerRegistryClient]
    examples: ClassVar[int] = 0
    settled_checks: ClassVar[int] = 0

    DROP_ANY: ClassVar[bool] = False
    WITH_CLI: ClassVar[bool] = False
    PRUNE_BY_NAME: ClassVar[bool] = False
    STALE_EVENTS: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        type(self).examples += 1
        _RECENT.clear()  # every example is a fresh Functions instance
        self.repository = f"gitops/machine-{type(self).__name__.lower()}-{self.examples}"
        self.world = World(self.acr, self.app, self.repository, self.sdk)
        self.images: list[Image] = []
        self.current: Image | None = None
        self.pushes: Counter[str] = Counter()
        self.pending: list[dict[str, Any]] = []
        self.delivered: list[dict[str, Any]] = []
        self.originals: list[tuple[dict[str, Any], Image]] = []
        self.lost = False
        self.last_push_at = self.acr.now()
        self.start = self.world.mark()

    def teardown(self) -> None:
        if self.images:
            self.sdk.delete_repository(self.repository)

    # -- state ------------------------------------------------------------------------------

    def settled(self) -> bool:
        return self.current is not None and not self.pending and not self.lost

    def is_latest(self, image: Image) -> bool:
        return self.current is not None and image.digest == self.current.digest

    # -- pushes -----------------------------------------------------------------------------

    def _push(self, image: Image, delivered: bool = False) -> None:
        """Push `image` as `latest`; its event is pending, or delivered at once (the usual case:
        Event Grid delivers within a second)."""
        event = self.world.push(image)
        self.pending.append(event)
        self.originals.append((event, image))
        self.pushes[image.digest] += 1
        self.current = image
        self.last_push_at = pushed_at(event)
        if delivered:
            self.deliver(len(self.pending) - 1)

    @rule(delivered=st.booleans())
    def push_new_digest(self, delivered: bool = False) -> None:
        image = oci_image(seed=len(self.images) + 1)
        self.images.append(image)
        self._push(image, delivered)

    def _may_repush(self) -> bool:
        return bool(self.images) and (self.STALE_EVENTS or not self.pending)

    @precondition(lambda self: self._may_repush() and len(self.images) >= 2)
    @rule(which=st.integers(min_value=0), delivered=st.booleans())
    def push_old_digest(self, which: int, delivered: bool = False) -> None:
        """A rollback: `latest` back to an image pushed before (the same bytes, same digest)."""
        older = [i for i in self.images if not self.is_latest(i)]
        self._push(older[which % len(older)], delivered)

    @precondition(lambda self: self._may_repush())
    @rule(delivered=st.booleans())
    def repush_identical(self, delivered: bool) -> None:
        assert self.current is not None
        self._push(self.current, delivered)

    # -- events -----------------------------------------------------------------------------

    @precondition(lambda self: bool(self.pending))
    @rule(which=st.integers(min_value=0))
    def deliver(self, which: int) -> None:
        """The next delivery: any pending event (a delayed one, or out of order)."""
        event = self.pending.pop(which % len(self.pending))
        self.world.deliver(event)
        self.delivered.append(event)

    def _droppable(self) -> list[int]:
        return [
            i
            for i, event in enumerate(self.pending)
            if self.DROP_ANY or self.pushes[event["data"]["target"]["digest"]] == 1
        ]

    @precondition(lambda self: bool(self.pending))
    @rule(order=st.randoms(use_true_random=False))
    def deliver_everything(self, order: random.Random) -> None:
        """Event Grid catches up: every pending event, in some order."""
        order.shuffle(self.pending)
        while self.pending:
            self.deliver(0)

    @precondition(lambda self: bool(self._droppable()))
    @rule(which=st.integers(min_value=0))
    def drop(self, which: int) -> None:
        """An event lost for good (subscription disabled, 24 h retries exhausted...)."""
        droppable = self._droppable()
        self.pending.pop(droppable[which % len(droppable)])
        self.lost = True

    @precondition(lambda self: bool(self.delivered))
    @rule(which=st.integers(min_value=0))
    def redeliver(self, which: int) -> None:
        """Event Grid's at-least-once delivery: the same event (same id) again."""
        event = self.delivered[which % len(self.delivered)]
        target = event["data"]["target"]
        tag = self.world.template.render(SOURCE, pushed_at(event), target["digest"])
        already = self.world.tags().get(tag) == target["digest"]
        mark = self.world.mark()
        self.world.deliver(event)
        if already:
            assert self.world.manifest_puts(mark) == [], "a redelivery wrote"

    @precondition(lambda self: bool(self.originals))
    @rule(
        which=st.integers(min_value=0),
        seconds=st.sampled_from([1, 30, 300]),
        region=st.sampled_from(REGIONS),
    )
    def replica_duplicate(self, which: int, seconds: int, region: str) -> None:
        """A geo-replica's event for a push, when its replication completes: a new id, a
        timestamp of that moment (later than the push, never later than now)."""
        candidates = (
            self.originals
            if self.STALE_EVENTS
            else [(e, i) for e, i in self.originals if e is self.originals[-1][0]]
        )
        event, _ = candidates[which % len(candidates)]
        self.acr.advance_clock(seconds)
        copy = replica_copy(event, later=self.acr.now() - pushed_at(event), region=region)
        if self.STALE_EVENTS:
            self.pending.append(copy)
        else:
            # Once, while its push is still the latest; redelivering it after a newer push is
            # the stale-event case (StaleEvents).
            self.world.deliver(copy)

    # -- operators and timers ---------------------------------------------------------------

    @precondition(lambda self: self.WITH_CLI and self.current is not None)
    @rule()
    def cli_tag(self) -> None:
        self._cli_tag()

    def _cli_tag(self) -> None:
        """The pipeline step `acr-retag tag REPO`: when `latest`'s digest already carries the tag
        Flux selects, it must write nothing."""
        tags = self.world.tags()
        tagged = (
            self.world.selected(tags)[1] == tags[SOURCE] if self.world.generated(tags) else False
        )
        mark = self.world.mark()
        assert self.world.cli_tag() == 0
        if tagged:
            assert self.world.written(mark) == [], "the CLI wrote for a push already tagged"

    @precondition(lambda self: self.current is not None)
    @rule()
    def reconcile(self) -> None:
        self._reconcile()

    def _reconcile(self) -> None:
        now = self.acr.now()
        report = reconcile_registry(
            self.app.module.registry(),
            self.app.module.settings(),
            repository_filter=re.compile(re.escape(self.repository)),
            now=now,
        )
        assert not report.failed, report
        if now - self.last_push_at >= GRACE:
            self.lost = False  # every source tag was looked at past its grace period

    @precondition(lambda self: self.lost)
    @rule()
    def reconcile_timer_after_the_grace_period(self) -> None:
        """The `reconcile_tags` timer's next run, 15 minutes (RECONCILE_GRACE) later."""
        self.acr.advance_clock((GRACE + timedelta(seconds=1)).total_seconds())
        self._reconcile()

    @precondition(lambda self: self.current is not None)
    @rule(keep=st.integers(min_value=1, max_value=3))
    def prune(self, keep: int) -> None:
        self._prune(keep)

    def _prune(self, keep: int) -> None:
        template = self.app.module.settings().retag.template
        policy = PrunePolicy.for_scope(
            "generated",
            source_tags=[SOURCE],
            is_generated=template.is_generated,
            keep=keep,
            min_age=PRUNE_MIN_AGE,
            untagged=False,
            pushed_at_of=template.pushed_at_of,  # as PrunePolicy.from_settings builds it
        )
        before = self.world.tags()
        selected = self.world.selected(before)[0] if self.world.generated(before) else None
        settled = self.settled()
        now = self.acr.now()
        report = prune_registry(
            self.app.module.registry(),
            policy,
            mode="delete",
            repositories=re.escape(self.repository),
            now=now,
        )
        assert report.ok, report
        after = self.world.tags()
        if settled and selected is not None:
            assert selected in after, f"prune deleted the selected tag {selected}"
        if self.PRUNE_BY_NAME:
            (result,) = report.repositories
            for kept in result.kept:
                when = template.pushed_at_of(kept.name)
                if kept.reason is KeepReason.TOO_YOUNG and when is not None:
                    assert now - when < PRUNE_MIN_AGE, f"{kept.name} kept as too young"

    @rule(seconds=st.sampled_from([1, 60, 600, 1200, 4000]))
    def clock_moves_on(self, seconds: int) -> None:
        self.acr.advance_clock(seconds)

    # -- the promise ------------------------------------------------------------------------

    @invariant()
    def never_rewrites(self) -> None:
        rewrites = [
            r
            for r in self.world.written(self.start)
            if r.get("previous_digest") == r.get("digest") and r.get("tag") != SOURCE
        ]
        assert rewrites == [], f"generated tags rewritten: {rewrites}"

    @invariant()
    def gitops_invariant(self) -> None:
        if not self.settled():
            return
        type(self).settled_checks += 1
        tags = self.world.tags()
        self.world.assert_invariant()
        on_digest = Counter(self.world.generated(tags).values())
        for digest, count in on_digest.items():
            assert count <= self.pushes[digest], (
                f"{digest[:19]} carries {count} generated tags from {self.pushes[digest]} "
                f"push(es): {self.world.generated(tags)}"
            )


# -- the pending parts and the bug found: each variant walks its failing case first ------------


class LostRollbacks(GitOpsMachine):
    DROP_ANY = True

    @initialize()
    def a_rollback_whose_event_is_lost_then_reconcile(self) -> None:
        self.push_new_digest()
        self.deliver(0)
        self.acr.advance_clock(60)
        self.push_new_digest()
        self.deliver(0)
        self.acr.advance_clock(60)
        self.push_old_digest(0)
        self.drop(0)
        self.acr.advance_clock((GRACE + timedelta(minutes=1)).total_seconds())
        self._reconcile()


class WithCli(GitOpsMachine):
    WITH_CLI = True

    @initialize()
    def the_function_then_the_cli_tag_the_same_push(self) -> None:
        self.push_new_digest()
        self.deliver(0)
        self._cli_tag()


class PruneByName(GitOpsMachine):
    PRUNE_BY_NAME = True

    @initialize()
    def an_event_delivered_late_then_prune(self) -> None:
        self.push_new_digest()
        late = self.pending.pop()
        self.acr.advance_clock(2 * PRUNE_MIN_AGE.total_seconds())
        self.pending.append(late)
        self.deliver(0)  # tagged now, named two hours ago
        for _ in range(3):
            self.push_new_digest()
            self.deliver(0)
        self._prune(1)


class StaleEvents(GitOpsMachine):
    STALE_EVENTS = True

    @initialize()
    def a_rollback_overtakes_the_previous_push_event(self) -> None:
        self.push_new_digest()
        self.deliver(0)
        self.push_new_digest()  # its event is delayed
        self.push_old_digest(0)  # the rollback to the first image, delivered at once
        self.deliver(1)
        self.deliver(0)  # the delayed event of the superseded push


@pytest.fixture(scope="module")
def machine_world(shared_acr: Emulator, sdk: ContainerRegistryClient) -> Any:
    with loaded_function_app(shared_acr) as app:
        GitOpsMachine.acr, GitOpsMachine.app, GitOpsMachine.sdk = shared_acr, app, sdk
        yield


MAIN = settings(
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
VARIANT = settings(MAIN, max_examples=1, phases=[Phase.generate])


@pytest.mark.usefixtures("machine_world")
def test_the_invariant_holds_over_random_sequences() -> None:
    GitOpsMachine.settled_checks = 0
    run_state_machine_as_test(GitOpsMachine, settings=MAIN)
    assert GitOpsMachine.settled_checks >= 20  # not vacuous: the promise was checked often


@pytest.mark.usefixtures("machine_world")
@pytest.mark.parametrize(
    "machine",
    [
        pytest.param(LostRollbacks, id="lost-rollbacks"),
        pytest.param(WithCli, id="cli"),
        pytest.param(PruneByName, id="prune-by-name"),
        pytest.param(StaleEvents, id="stale-events"),
    ],
)
def test_pending_parts(machine: type[GitOpsMachine]) -> None:
    run_state_machine_as_test(machine, settings=VARIANT)
