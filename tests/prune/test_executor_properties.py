"""Property test of the executor on the emulator: for random repositories, dry-run reports exactly
what delete mode then deletes, the registry ends up as the plan says, and a second run deletes
nothing.

Images are pushed over /v2; the many tags, their times and locks go straight into the emulator's
store (its Python objects) to keep each example fast.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from emulator import Emulator
from emulator.store import TagRecord
from retag.acr.client import AcrRegistry
from retag.prune.job import prune_registry
from retag.prune.plan import PrunePolicy
from tests.prune.emulated import TEMPLATE, manifests_of, tags_of
from tests.support.images import V2Session, docker_image, oci_index, push_image

_names = itertools.count()


@pytest.fixture(scope="module")
def acr(module_acr: Emulator) -> Emulator:
    """One emulator per test module (the shared `module_acr`)."""
    return module_acr


@pytest.fixture(scope="module")
def registry(acr: Emulator) -> Iterator[AcrRegistry]:
    """Module-scoped (hypothesis reuses it across examples), so not the shared function one."""
    with AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle) as client:
        yield client


tag_specs = st.lists(
    st.tuples(
        st.sampled_from(["generated", "generated", "generated", "latest", "other"]),
        st.integers(0, 3),  # which image
        st.integers(0, 40 * 24),  # age in hours
        st.integers(0, 9),  # lock when 0
    ),
    max_size=12,
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=tag_specs,
    keep=st.integers(0, 3),
    untagged=st.booleans(),
    scope=st.sampled_from(["generated", "all"]),
    multi_tagged=st.booleans(),
)
def test_dry_run_equals_delete_and_the_registry_matches_the_plan(
    acr: Emulator,
    registry: AcrRegistry,
    specs: list[tuple[str, int, int, int]],
    keep: int,
    untagged: bool,
    scope: str,
    multi_tagged: bool,
) -> None:
    n = next(_names)
    repository = f"prop/r{n}"
    now = acr.now()
    images = [docker_image(seed=10_000 + n * 10 + i, layer_size=16) for i in range(3)]
    multi = oci_index(seed=20_000 + n, layer_size=16)
    acr.set_clock(now - timedelta(days=60))
    with V2Session(acr.endpoint, verify=acr.ca_bundle) as session:
        for image in images:
            push_image(acr.endpoint, repository, image, None, verify=acr.ca_bundle, session=session)
        push_image(
            acr.endpoint,
            repository,
            multi,
            "multi" if multi_tagged else None,
            verify=acr.ca_bundle,
            session=session,
        )
    acr.set_clock(now)
    targets = [*images, multi]
    store = acr.registry.store
    with store._lock:
        repo = store._repos[repository]
        for kind, which, hours, lock in specs:
            digest = targets[which].digest
            when = now - timedelta(hours=hours)
            name = {
                "generated": TEMPLATE.render("latest", when, digest),
                "latest": "latest",
                "other": f"v{hours}",
            }[kind]
            record = TagRecord(name, digest, when, when, next(store._seq))
            record.attrs.delete_enabled = lock != 0
            repo.tags[name] = record
    pol = PrunePolicy.for_scope(
        scope,  # type: ignore[arg-type]
        source_tags=["latest"],
        is_generated=TEMPLATE.is_generated,
        keep=keep,
        min_age=timedelta(days=7),
        untagged=untagged,
    )
    only = rf"prop/r{n}"
    before_tags, before_manifests = tags_of(acr, repository), manifests_of(acr, repository)

    dry = prune_registry(registry, pol, mode="dry-run", repositories=only, now=acr.now)
    assert tags_of(acr, repository) == before_tags
    real = prune_registry(registry, pol, mode="delete", repositories=only, now=acr.now)
    assert real.ok, real.render_table()
    (planned,) = dry.repositories
    (done,) = real.repositories
    assert done.deleted == planned.deleted
    assert sorted(done.kept, key=repr) == sorted(planned.kept, key=repr)

    gone_tags = {d.name for d in done.deleted if d.kind == "tag"}
    gone_manifests = {d.digest for d in done.deleted if d.kind == "manifest"}
    event(f"tags deleted: {min(len(gone_tags), 3)}+; manifests deleted: {bool(gone_manifests)}")
    assert set(tags_of(acr, repository)) == set(before_tags) - gone_tags
    assert manifests_of(acr, repository) == before_manifests - gone_manifests
    # Never a protected tag: source tags, tags on its digest, locked ones.
    source = before_tags.get("latest")
    for name in gone_tags:
        assert name != "latest"
        assert before_tags[name] != source
        assert repo.tags.get(name) is None
    # Multi-arch children stay while their index does.
    if multi.digest not in gone_manifests:
        assert {c.digest for c in multi.children} <= manifests_of(acr, repository)

    again = prune_registry(registry, pol, mode="delete", repositories=only, now=acr.now)
    assert again.totals()["deleted_tags"] == 0
    assert again.totals()["deleted_manifests"] == 0
