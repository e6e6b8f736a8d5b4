"""Issue 12's scenarios 1-5, end to end: pushes through /v2, the ImagePushed events the emulator
emitted for them, delivered (or not, twice, late, reordered) to `function_app` through the
Functions host stand-in (`EventGridEventInConverter.decode`, as the worker), the `reconcile_tags`
and `prune_tags` timers through the host, the CLI in-process, the real SDK listing the result.
After each step the invariant is checked with the Flux model reading docs/flux.md's ImagePolicy:
the tag Flux selects points to the digest `latest` points to.

Clock: the timers measure ages against the real clock, so each test starts the registry's clock
in the past (e.g. two hours): pushes are then that old for reconcile's grace and prune's min age.

Azure facts encoded here: Event Grid delivers at least once and unordered, retrying for 24 h
(Learn "Event Grid message delivery and retry", in /work/shared/design.md section 1); ACR
webhooks fire per geo-replica, with their own timestamps (Learn "container-registry-webhook",
design.md section 4); a push through a regional endpoint `<registry>.<region>.geo.azurecr.io`
carries that host in `data.request.host` (Learn "container registry endpoint reference",
design.md section 4).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from retag.reconcile.job import reconcile_registry
from tests.gitops.flux import ImagePolicy
from tests.gitops.world import POLICY, SOURCE, World, fresh_repository, replica_copy
from tests.support.function_app import emulator_settings, loaded_function_app
from tests.support.images import oci_image


@pytest.fixture
def world(
    request: pytest.FixtureRequest, shared_acr: Emulator, sdk: ContainerRegistryClient
) -> Iterator[World]:
    """A fresh repository, `function_app` loaded on the emulator (overrides from the test's
    `settings` marker), the registry clock two hours behind the real one."""
    marker = request.node.get_closest_marker("settings")
    overrides: dict[str, str] = dict(marker.kwargs) if marker else {}
    shared_acr.set_clock(datetime.now(UTC) - timedelta(hours=2))
    with (
        fresh_repository(shared_acr, sdk, request.node.name[:30].strip("_[]")) as repository,
        loaded_function_app(shared_acr, RETAG_REPOSITORIES=repository, **overrides) as app,
    ):
        yield World(shared_acr, app, repository, sdk)


def deliver_new(world: World, image_seed: int | None = None) -> tuple[str, dict[str, Any]]:
    """Push a new image, deliver its event; returns (digest, event)."""
    image = oci_image(seed=image_seed)
    event = world.push(image)
    world.deliver(event)
    world.assert_invariant()
    return image.digest, event


# -- 1. rollback ----------------------------------------------------------------------------------


def rollback_setup(world: World) -> tuple[Any, str, dict[str, Any]]:
    old = oci_image()
    world.deliver(world.push(old))
    world.assert_invariant()
    world.acr.advance_clock(60)
    deliver_new(world)
    world.acr.advance_clock(60)
    rollback_event = world.push(old)  # a re-import of the previous image: same digest
    old_tags = {n for n, d in world.generated().items() if d == old.digest}
    assert len(old_tags) == 1
    return old, old_tags.pop(), rollback_event


def test_1_a_rollback_gets_a_new_tag_that_sorts_newest(world: World) -> None:
    old, old_tag, rollback_event = rollback_setup(world)
    mark = world.mark()

    world.deliver(rollback_event)

    (put,) = world.written(mark)
    assert put["digest"] == old.digest
    assert put["tag"] != old_tag
    selected, digest = world.assert_invariant()
    assert (selected, digest) == (put["tag"], old.digest)


def test_1_a_lost_rollback_event_within_the_grace_period_is_left_to_the_event_path(
    world: World,
) -> None:
    old, _, _ = rollback_setup(world)  # the rollback's event is lost
    _, digest = world.selected()
    assert digest != old.digest  # Flux still deploys the image rolled back from (for now)
    mark = world.mark()

    report = reconcile_registry(
        world.app.module.registry(), world.app.module.settings(), now=world.acr.now()
    )

    assert world.manifest_puts(mark) == []
    (result,) = report.repositories
    # Today the repository is "in-sync" (the bug); once fixed it is "skipped" (within grace).
    assert result.status in ("in-sync", "skipped")


def test_1_a_lost_rollback_event_is_caught_up_by_the_reconcile_timer(world: World) -> None:
    old, _, _ = rollback_setup(world)  # the rollback's event is lost
    # The registry clock is two hours behind: the rollback is past RECONCILE_GRACE (15m).

    world.reconcile_timer()

    _, digest = world.assert_invariant()
    assert digest == old.digest


def test_1_a_rollback_whose_event_overtakes_the_previous_push_event(world: World) -> None:
    """Event Grid does not order deliveries: push A, push B (its event delayed), roll back to A
    (its event delivered at once: A carries the newest generated tag, nothing to write); then
    B's delayed event arrives, while `latest` points to A again."""
    old = oci_image()
    world.deliver(world.push(old))
    world.acr.advance_clock(60)
    delayed = world.push(oci_image())
    world.acr.advance_clock(60)
    world.deliver(world.push(old))
    world.assert_invariant()

    world.deliver(delayed)

    _, digest = world.assert_invariant()
    assert digest == old.digest


# -- 2. redelivery ----------------------------------------------------------------------------


@pytest.mark.settings(PRUNE_MODE="delete", PRUNE_KEEP="1", PRUNE_MIN_AGE="7d")
def test_2_redelivery_writes_nothing_and_prune_still_ages_the_tag(world: World) -> None:
    world.acr.set_clock(datetime.now(UTC) - timedelta(days=10))
    first_digest, first = deliver_new(world)
    world.acr.advance_clock(60)
    _, second = deliver_new(world)
    world.acr.advance_clock(60)
    deliver_new(world)
    (first_tag,) = [n for n, d in world.generated().items() if d == first_digest]
    world.acr.set_clock(datetime.now(UTC) - timedelta(minutes=1))
    mark = world.mark()

    world.deliver(first)  # Event Grid redelivers (same event id), days later
    world.deliver(second, first)  # and again, in one batch, out of order

    assert world.manifest_puts(mark) == []  # no PUT: no lastUpdateTime moved, no ImagePushed
    world.assert_invariant()

    world.prune_timer()

    remaining = world.generated()
    assert first_tag not in remaining  # 10 days old: expired, the redelivery did not rejuvenate it
    assert len(remaining) == 2  # the newest (PRUNE_KEEP=1) and the one on latest's digest
    world.assert_invariant()


@pytest.mark.settings(PRUNE_MODE="delete", PRUNE_KEEP="1", PRUNE_MIN_AGE="1h")
def test_2_prune_ages_a_late_written_tag_by_the_push_time_in_its_name(world: World) -> None:
    """A push's event delivered three hours late (Event Grid retries for 24 h) writes a tag that
    is old by its name but young by `lastUpdateTime`: prune must age it by its name."""
    world.acr.set_clock(datetime.now(UTC) - timedelta(hours=3))
    late = world.push(oci_image())
    world.acr.set_clock(datetime.now(UTC) - timedelta(minutes=2))
    world.deliver(late)  # first delivery, three hours after the push (latest is still on it)
    late_tag = world.template.render(
        SOURCE,
        datetime.fromisoformat(late["data"]["timestamp"].replace("Z", "+00:00")),
        late["data"]["target"]["digest"],
    )
    assert late_tag in world.generated()
    world.assert_invariant()
    world.acr.advance_clock(1)
    deliver_new(world)  # a newer candidate (keep=1 keeps it by either ordering)
    world.acr.advance_clock(1)
    deliver_new(world)

    world.prune_timer()

    world.assert_invariant()
    assert late_tag not in world.generated()


# -- 3. geo-replicas and regional endpoints ----------------------------------------------------


@pytest.mark.parametrize("later", [timedelta(seconds=5), timedelta(minutes=10)])
def test_3_a_replica_duplicate_with_a_later_timestamp_writes_nothing(
    world: World, later: timedelta
) -> None:
    digest, event = deliver_new(world)
    mark = world.mark()

    world.deliver(replica_copy(event, later=later, region="westeurope"))
    world.deliver(replica_copy(event, later=later * 2, region="japaneast"))

    assert world.manifest_puts(mark) == []
    assert len([d for d in world.generated().values() if d == digest]) == 1
    world.assert_invariant()


def test_3_a_replica_copy_arriving_before_the_original_event_gives_one_tag(world: World) -> None:
    image = oci_image()
    event = world.push(image)
    world.deliver(replica_copy(event, later=timedelta(seconds=3), region="westeurope"))
    mark = world.mark()

    world.deliver(event)

    assert world.manifest_puts(mark) == []
    assert list(world.generated().values()) == [image.digest]
    world.assert_invariant()


def test_3_a_replica_copy_of_a_superseded_push_arriving_late_writes_nothing(
    world: World,
) -> None:
    """Replication completes per region at its own pace: the copy of push A can arrive after
    `latest` moved on to B, stamped after B's push."""
    _, event = deliver_new(world)
    world.acr.advance_clock(30)
    deliver_new(world)
    mark = world.mark()

    world.deliver(replica_copy(event, later=timedelta(seconds=90), region="westeurope"))

    world.assert_invariant()
    assert world.manifest_puts(mark) == []


REGISTRY = "myreg.azurecr.io"
REGIONAL = "myreg.westeurope.geo.azurecr.io"


@pytest.fixture
def regional_world(shared_acr: Emulator, sdk: ContainerRegistryClient) -> Iterator[World]:
    """`function_app` configured for `myreg.azurecr.io`, whose registry calls reach the emulator.

    The emulator's login server `127.0.0.1:PORT` has no regional form, and `myreg.azurecr.io`
    must not be resolved or dialled from a test. So the Function runs with
    `ACR_LOGIN_SERVER=myreg.azurecr.io` (what it accepts events for) while its registry factory
    (`function_app.registry`, the one seam between trigger and adapter) hands out the product's
    own adapter (`retag.acr.client.registry_for`) for the emulator: decode path, settings,
    `handle_event`, `tag_push`, adapter and SDK are all real. (A loopback HTTPS proxy answering
    for `myreg.azurecr.io` was tried first: the adapter's token requests ignore `HTTPS_PROXY`,
    see the report.)"""
    from retag.acr.client import registry_for
    from retag.settings import load_settings

    shared_acr.set_clock(datetime.now(UTC) - timedelta(hours=2))
    emulator_registry = registry_for(load_settings(emulator_settings(shared_acr)).registry)
    with (
        fresh_repository(shared_acr, sdk, "regional") as repository,
        loaded_function_app(
            shared_acr, ACR_LOGIN_SERVER=REGISTRY, RETAG_REPOSITORIES=repository
        ) as app,
        pytest.MonkeyPatch.context() as patch,
    ):
        assert app.module.settings().registry.login_server == REGISTRY
        patch.setattr(app.module, "registry", lambda: emulator_registry)
        yield World(shared_acr, app, repository, sdk)


def with_host(event: dict[str, Any], host: str) -> dict[str, Any]:
    """The event as ACR sends it for a push through `host` (`data.request.host` is the Host
    header the client used). The emulator always writes its own login server there."""
    changed: dict[str, Any] = json.loads(json.dumps(event))
    changed["data"]["request"]["host"] = host
    return changed


def test_3_a_push_through_a_regional_endpoint_is_tagged_at_once(regional_world: World) -> None:
    world = regional_world
    image = oci_image()
    event = world.push(image)
    mark = world.mark()

    world.deliver(with_host(event, REGIONAL))

    (put,) = world.written(mark)
    assert put["digest"] == image.digest
    world.assert_invariant()

    # The global login server's copy of the same push: a duplicate, nothing written.
    mark = world.mark()
    world.deliver(
        with_host(replica_copy(event, later=timedelta(seconds=2), region="eastus"), REGISTRY)
    )
    assert world.manifest_puts(mark) == []
    world.assert_invariant()


@pytest.mark.parametrize(
    "host",
    [
        "other.westeurope.geo.azurecr.io",
        "myreg.westeurope.geo.azurecr.io.evil.example",
        "myreg.westeurope.data.azurecr.io",
        "myreg.azurecr.io.evil.example",
        "evilmyreg.azurecr.io",
    ],
)
def test_3_events_from_other_hosts_are_still_rejected(regional_world: World, host: str) -> None:
    world = regional_world
    event = world.push(oci_image())
    mark = world.mark()

    world.deliver(with_host(event, host))

    assert world.manifest_puts(mark) == []
    assert world.generated() == {}


# -- 4. two pushes in the same second ----------------------------------------------------------


def test_4_two_pushes_in_the_same_second_delivered_in_reverse_order(world: World) -> None:
    second_start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=100_000)
    world.acr.set_clock(second_start)
    first_image, second_image = oci_image(), oci_image()
    first = world.push(first_image)
    second = world.push(second_image)
    stamps = [e["data"]["timestamp"] for e in (first, second)]
    assert stamps[0][:19] == stamps[1][:19], stamps  # the same second
    assert stamps[0] < stamps[1]

    world.deliver(second)
    world.assert_invariant()
    world.deliver(first)  # the older push's event comes last: superseded, nothing written

    _, digest = world.assert_invariant()
    assert digest == second_image.digest
    assert sorted(world.generated().values()) == [second_image.digest]


def test_4_two_pushes_in_the_same_second_delivered_in_order_sort_in_push_order(
    world: World,
) -> None:
    world.acr.set_clock((datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=100_000))
    first_image, second_image = oci_image(), oci_image()
    world.deliver(world.push(first_image))
    world.deliver(world.push(second_image))  # the same second, a few milliseconds later

    _, digest = world.assert_invariant()
    assert digest == second_image.digest
    assert sorted(world.generated().values()) == sorted([first_image.digest, second_image.digest])


def test_4_why_milliseconds_seconds_only_stamps_collide_and_the_lexical_last_wins() -> None:
    """With `{timestamp}` (seconds) both pushes extract the same value: Flux keeps the tag
    listed last (lexically: the larger digest prefix), whichever was pushed last."""
    older, newer = "latest_20261129230700_ffff00000000", "latest_20261129230700_0000ffffffff"
    assert POLICY.select(sorted([older, newer])) == older  # the OLDER push wins
    seconds_policy = ImagePolicy(
        kind="numerical", pattern=r"^latest_(?P<ts>[0-9]{14})_[a-f0-9]{12}$", extract="$ts"
    )
    assert seconds_policy.select(sorted([older, newer])) == older
    ms_older, ms_newer = (
        "latest_20261129230700100_ffff00000000",
        "latest_20261129230700101_0000ffffffff",
    )
    assert POLICY.select(sorted([ms_older, ms_newer])) == ms_newer


# -- 5. the CLI and the Function tag the same push ----------------------------------------------


def test_5_cli_first_then_the_function_gives_one_tag(world: World) -> None:
    image = oci_image()
    event = world.push(image)
    assert world.cli_tag() == 0
    world.assert_invariant()
    mark = world.mark()

    world.deliver(event)

    assert world.manifest_puts(mark) == []
    assert list(world.generated().values()) == [image.digest]
    world.assert_invariant()


def test_5_cli_tags_a_rollback_whose_event_is_lost(world: World) -> None:
    old, _, rollback_event = rollback_setup(world)
    assert world.cli_tag() == 0  # the pipeline step after the re-import
    _, digest = world.assert_invariant()
    assert digest == old.digest
    mark = world.mark()

    world.deliver(rollback_event)  # the event turns up after all

    assert world.manifest_puts(mark) == []
    world.assert_invariant()


def test_5_the_function_first_then_the_cli_writes_nothing(world: World) -> None:
    image = oci_image()
    world.deliver(world.push(image))
    mark = world.mark()

    assert world.cli_tag() == 0

    world.assert_invariant()
    assert list(world.generated().values()) == [image.digest]
    assert world.manifest_puts(mark) == []
