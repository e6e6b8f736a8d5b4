"""Reconciliation with a label template (issue 14 item 1): a lost push gets its
`prod-<sha7>-<ts>` tag through the event path's engine; an image without the label is reported
`skipped` once per run (WARNING, the run stays ok) and its config is not read again."""

from __future__ import annotations

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.naming import REVISION_LABEL
from retag.reconcile.job import reconcile_registry
from retag.tagging import _LABELS, _RECENT
from tests.reconcile.conftest import Pusher, make_settings, tags_of
from tests.support.images import oci_image

HOUR = 3600
ENV = {"RETAG_TAG_TEMPLATE": "prod-{revision:.7}-{timestamp}"}


def test_lost_pushes_with_and_without_the_label(
    acr: Emulator, registry: AcrRegistry, pusher: Pusher
) -> None:
    _RECENT.clear()
    _LABELS.clear()
    labelled = pusher.push("team/web", image=oci_image(seed=41, labels={REVISION_LABEL: "ab" * 20}))
    bare = pusher.push("team/api", image=oci_image(seed=42))
    pushed_at = registry.get_tag("team/web", "latest").last_updated_on
    acr.advance_clock(HOUR)
    settings = make_settings(acr, **ENV)

    report = reconcile_registry(registry, settings, now=acr.now())

    by_repo = {r.repository: r for r in report.repositories}
    stamp = pushed_at.strftime("%Y%m%d%H%M%S")
    assert tags_of(acr, registry, "team/web") == {
        "latest": labelled,
        f"prod-abababa-{stamp}": labelled,
    }
    assert by_repo["team/web"].status == "tagged"
    assert by_repo["team/api"].status == "skipped"
    assert "image has no org.opencontainers.image.revision label" in by_repo["team/api"].reason
    assert tags_of(acr, registry, "team/api") == {"latest": bare}
    assert report.ok  # the image's problem, not the run's: no alert storm every 15 minutes

    acr.clear_requests()
    again = reconcile_registry(registry, settings, now=acr.now())
    assert {r.repository: r.status for r in again.repositories}["team/api"] == "skipped"
    assert not any("/blobs/" in r["path"] for r in acr.requests())  # labels cached per digest
