"""`retag.tagging.tag_push` against the emulator, real adapter and SDK: issue 12's scenarios.

Each test asserts what is written (the emulator's request log: no PUT for a duplicate) and that
the newest generated tag (Flux's choice under docs/flux.md's policy) is on the source tag's
digest. The invariant across random sequences is in tests/gitops/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator import Emulator
from retag.naming import DEFAULT_TEMPLATE, TagTemplate
from retag.tagging import _RECENT, Push, tag_push
from tests.support.images import Image, oci_image, push_image

REPO = "gitops/app"
TEMPLATE = TagTemplate.parse(DEFAULT_TEMPLATE, ["latest"])
T0 = datetime(2026, 11, 29, 23, 7, 0, 123000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _forget() -> None:
    _RECENT.clear()  # each test starts as a new Functions instance


def pushed(acr: Emulator, image: Image) -> Image:
    push_image(acr.endpoint, REPO, image, tag="latest", verify=acr.ca_bundle)
    return image


def generated(registry: Any) -> dict[str, str]:
    return {
        t.name: t.digest
        for t in registry.list_tags(REPO)
        if TEMPLATE.is_generated(t.name, "latest")
    }


def newest(registry: Any) -> str:
    tags = generated(registry)
    return tags[max(tags, key=lambda name: TEMPLATE.order_key(name) or ())]


def puts(acr: Emulator) -> list[str]:
    return [r["path"] for r in acr.requests() if r["method"] == "PUT"]


def test_a_new_push_gets_one_tag_in_three_requests(acr: Emulator, registry: Any) -> None:
    image = pushed(acr, oci_image())
    tag_push(registry, TEMPLATE, Push(REPO, "latest", image.digest, T0 - timedelta(days=1)))
    second = pushed(acr, oci_image())
    acr.clear_requests()

    result = tag_push(registry, TEMPLATE, Push(REPO, "latest", second.digest, T0))

    assert result.written
    assert result.tag == TEMPLATE.render("latest", T0, second.digest)
    assert len([r for r in acr.requests() if not r["path"].startswith("/oauth2")]) == 3
    assert newest(registry) == second.digest


def test_redelivery_writes_nothing_and_costs_one_request(acr: Emulator, registry: Any) -> None:
    image = pushed(acr, oci_image())
    push = Push(REPO, "latest", image.digest, T0)
    first = tag_push(registry, TEMPLATE, push)
    acr.clear_requests()

    again = tag_push(registry, TEMPLATE, push)

    assert not again.written
    assert again.tag == first.tag
    assert puts(acr) == []
    assert [(r["method"], r["path"]) for r in acr.requests()] == [("GET", f"/acr/v1/{REPO}/_tags")]


def test_a_new_instance_sees_a_redelivery_without_the_memory(acr: Emulator, registry: Any) -> None:
    image = pushed(acr, oci_image())
    push = Push(REPO, "latest", image.digest, T0)
    tag_push(registry, TEMPLATE, push)
    _RECENT.clear()
    acr.clear_requests()

    assert not tag_push(registry, TEMPLATE, push).written
    assert puts(acr) == []


def test_a_replica_duplicate_with_a_later_timestamp_writes_nothing(
    acr: Emulator, registry: Any
) -> None:
    """ACR geo-replication: "a single push results in events from the receiving geo-replica
    plus events from each geo-replica as replication completes" (Learn, container-registry-
    webhook; docs say to deduplicate). The replica's event carries a later timestamp."""
    image = pushed(acr, oci_image())
    tag_push(registry, TEMPLATE, Push(REPO, "latest", image.digest, T0))
    _RECENT.clear()
    acr.clear_requests()

    late = tag_push(
        registry, TEMPLATE, Push(REPO, "latest", image.digest, T0 + timedelta(seconds=40))
    )

    assert not late.written
    assert puts(acr) == []
    assert len(generated(registry)) == 1


def test_a_rollback_gets_a_new_newest_tag(acr: Emulator, registry: Any) -> None:
    old, new = pushed(acr, oci_image()), oci_image()
    tag_push(registry, TEMPLATE, Push(REPO, "latest", old.digest, T0))
    pushed(acr, new)
    tag_push(registry, TEMPLATE, Push(REPO, "latest", new.digest, T0 + timedelta(minutes=5)))
    pushed(acr, old)  # latest moves back: a re-import of the previous image

    back = tag_push(registry, TEMPLATE, Push(REPO, "latest", old.digest, T0 + timedelta(hours=1)))

    assert back.written
    assert newest(registry) == old.digest == acr.tag_digest(REPO, "latest")
    # ...and a redelivery of the rolled-back-from push does not undo it.
    tag_push(registry, TEMPLATE, Push(REPO, "latest", new.digest, T0 + timedelta(minutes=5)))
    assert newest(registry) == old.digest


def test_a_late_event_of_an_older_push_does_not_win(acr: Emulator, registry: Any) -> None:
    first, second = oci_image(), oci_image()
    pushed(acr, first)
    pushed(acr, second)
    tag_push(registry, TEMPLATE, Push(REPO, "latest", second.digest, T0 + timedelta(seconds=1)))

    tag_push(registry, TEMPLATE, Push(REPO, "latest", first.digest, T0))  # delivered late

    assert newest(registry) == second.digest


def test_two_pushes_in_the_same_second_sort_in_push_order(acr: Emulator, registry: Any) -> None:
    first, second = oci_image(), oci_image()
    pushed(acr, first)
    tag_push(registry, TEMPLATE, Push(REPO, "latest", first.digest, T0))
    pushed(acr, second)  # 250 ms later, within the same second
    later = T0 + timedelta(milliseconds=250)
    tag_push(registry, TEMPLATE, Push(REPO, "latest", second.digest, later))

    names = sorted(generated(registry))  # Flux: alphabetical on the stamp
    assert [generated(registry)[n] for n in names] == [first.digest, second.digest]
    assert names[0][:21] == names[1][:21]  # the same second: only the milliseconds tell


def test_an_event_of_a_push_the_source_tag_moved_on_from_writes_nothing(
    acr: Emulator, registry: Any
) -> None:
    """A late, reordered or replica event for a digest `latest` no longer points to: a tag there
    would sort newest and make Flux deploy the wrong image (found by tests/gitops)."""
    first, second = oci_image(), oci_image()
    pushed(acr, first)
    pushed(acr, second)
    acr.clear_requests()

    late = tag_push(registry, TEMPLATE, Push(REPO, "latest", first.digest, T0 + timedelta(hours=1)))

    assert late.superseded
    assert not late.written
    assert puts(acr) == []
    assert generated(registry) == {}


def test_cli_and_function_tagging_the_same_push_give_one_tag(acr: Emulator, registry: Any) -> None:
    """The pipeline CLI stamps with the source tag's lastUpdateTime; the Function with the
    event's `data.timestamp`, a little different: one tag either way round."""
    image = pushed(acr, oci_image())
    updated = registry.get_tag(REPO, "latest").last_updated_on
    cli = tag_push(registry, TEMPLATE, Push(REPO, "latest", image.digest, updated))
    _RECENT.clear()
    function = tag_push(
        registry, TEMPLATE, Push(REPO, "latest", image.digest, updated + timedelta(milliseconds=3))
    )

    assert cli.written
    assert not function.written
    assert function.tag == cli.tag
    assert len(generated(registry)) == 1
