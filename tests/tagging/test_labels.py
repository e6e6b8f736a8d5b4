"""Label fields (`{revision}`, `{created}`) through `tag_push`, the real adapter and SDK, against
the emulator (issue 14 item 1): Docker and OCI images, an index, a missing label, hostile values.

What each test pins: the tag written (`prod-<sha7>-<ts>`, HMCTS's shape), the requests it cost
(the image config is read only when the template renders a label, and only when a write is
decided), and that the config download's redirect to storage never carries the registry token.
ACR answers blob GETs with 307 to storage (Learn, "container registry endpoint reference":
https://learn.microsoft.com/azure/container-registry/container-registry-dedicated-data-endpoints;
the emulator's storage listener refuses a request that carries `Authorization`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator import Emulator
from retag.naming import DEFAULT_TEMPLATE, REVISION_LABEL, TagTemplate
from retag.on_push import handle_event
from retag.settings import load_settings
from retag.tagging import _LABELS, _RECENT, Push, tag_push
from tests.support.images import (
    Image,
    docker_image,
    docker_manifest_list,
    oci_image,
    oci_index,
    push_image,
)

REPO = "team/web"
SHA = "8ba37f7c0ffee1234567890abcdef0123456789a"
HMCTS = TagTemplate.parse("prod-{revision:.7}-{timestamp}", ["latest"])
T0 = datetime(2026, 12, 1, 9, 30, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _forget() -> None:
    _RECENT.clear()  # each test starts as a new Functions instance
    _LABELS.clear()


def pushed(acr: Emulator, image: Image, tag: str = "latest") -> str:
    return push_image(acr.endpoint, REPO, image, tag=tag, verify=acr.ca_bundle)


def writes(acr: Emulator) -> list[str]:
    return [r["path"] for r in acr.requests() if r["method"] in ("PUT", "DELETE")]


def calls(acr: Emulator) -> list[str]:
    """`METHOD path` of every request but token calls, storage marked `storage`."""
    out = []
    for entry in acr.requests():
        if entry["path"].startswith("/oauth2/"):
            continue
        where = "storage " if entry.get("endpoint") == "storage" else ""
        out.append(f"{where}{entry['method']} {entry['path'].split('?')[0]}")
    return out


def storage_requests(acr: Emulator) -> list[dict[str, Any]]:
    return [r for r in acr.requests() if r.get("endpoint") == "storage"]


@pytest.mark.parametrize("build", [oci_image, docker_image], ids=["oci", "docker"])
def test_revision_label_gives_the_hmcts_tag(acr: Emulator, registry: Any, build: Any) -> None:
    digest = pushed(acr, build(seed=11, labels={REVISION_LABEL: SHA}))
    acr.clear_requests()

    result = tag_push(registry, HMCTS, Push(REPO, "latest", digest, T0))

    sent = calls(acr)
    assert result.written
    assert result.tag == "prod-8ba37f7-20261201093000"
    assert registry.get_tag(REPO, result.tag).digest == digest
    # tags on the digest || manifest, then the config (307 + storage), the existence check
    # (no {digest} in the template: a same-named tag could exist), the PUT.
    assert sorted(sent[:2]) == sorted(
        [f"GET /acr/v1/{REPO}/_tags", f"GET /v2/{REPO}/manifests/{digest}"]
    )
    assert sent[2].startswith(f"GET /v2/{REPO}/blobs/sha256:")
    assert sent[3].startswith("storage GET ")
    assert sent[4:] == [
        f"GET /acr/v1/{REPO}/_tags/{result.tag}",
        f"PUT /v2/{REPO}/manifests/{result.tag}",
    ]
    # The SDK's download_blob reads in ranges: one 206 for a small config.
    assert [r["status"] for r in storage_requests(acr)] == [206]
    assert all(r["authorization"] is False for r in storage_requests(acr))


def test_templates_without_label_fields_never_read_the_config(acr: Emulator, registry: Any) -> None:
    digest = pushed(acr, oci_image(seed=12, labels={REVISION_LABEL: SHA}))
    acr.clear_requests()
    template = TagTemplate.parse(DEFAULT_TEMPLATE, ["latest"])
    assert tag_push(registry, template, Push(REPO, "latest", digest, T0)).written
    assert not any("/blobs/" in c or c.startswith("storage") for c in calls(acr))


@pytest.mark.parametrize(
    ("build", "attestation"),
    [(oci_index, False), (oci_index, True), (docker_manifest_list, False)],
    ids=["oci-index", "oci-index-attestation-first", "docker-manifest-list"],
)
def test_an_index_takes_the_labels_of_its_first_platform_manifest(
    acr: Emulator, registry: Any, build: Any, attestation: bool
) -> None:
    """The index's own digest is tagged; the labels are its first platform manifest's
    (linux/amd64 here; a buildx attestation manifest, platform unknown/unknown, is skipped)."""
    template = TagTemplate.parse("{tag}-{revision:.12}-{timestamp}-p", ["latest"])
    options = {"attestation_first": True} if attestation else {}
    index = build(seed=13, labels={REVISION_LABEL: SHA}, **options)
    digest = pushed(acr, index)
    acr.clear_requests()

    result = tag_push(registry, template, Push(REPO, "latest", digest, T0))

    assert result.written
    assert result.tag == "latest-8ba37f7c0ffe-20261201093000-p"
    assert registry.get_tag(REPO, result.tag).digest == digest  # the index, not a child
    platform = index.children[1 if attestation else 0]
    assert f"GET /v2/{REPO}/manifests/{platform.digest}" in calls(acr)
    assert writes(acr) == [f"/v2/{REPO}/manifests/{result.tag}"]


def test_created_label_renders_utc_seconds(acr: Emulator, registry: Any) -> None:
    template = TagTemplate.parse("{tag}_{created}_{timestamp:ms}_{digest:.12}", ["latest"])
    labels = {"org.opencontainers.image.created": "2026-12-01T10:29:59.987654321+01:00"}
    digest = pushed(acr, oci_image(seed=14, labels=labels))
    result = tag_push(registry, template, Push(REPO, "latest", digest, T0))
    short = digest.removeprefix("sha256:")[:12]
    assert result.tag == f"latest_20261201092959_20261201093000000_{short}"


def test_an_image_without_the_label_is_skipped_and_nothing_is_written(
    acr: Emulator, registry: Any
) -> None:
    digest = pushed(acr, oci_image(seed=15))
    acr.clear_requests()
    result = tag_push(registry, HMCTS, Push(REPO, "latest", digest, T0))
    assert result.skipped
    assert not result.written
    assert result.reason == "image has no org.opencontainers.image.revision label"
    assert writes(acr) == []
    # The digest's labels are cached (content-addressed): asking again reads no config.
    acr.clear_requests()
    assert tag_push(registry, HMCTS, Push(REPO, "latest", digest, T0)).skipped
    assert not any("/blobs/" in c for c in calls(acr))


HOSTILE = [
    "$(curl evil)",
    "abc\ndef",
    "../../etc",
    "-rf",
    "a b",
    "sha:abc",
    "8ba37f7\u200b",  # zero-width space
    "\uff21\uff22\uff23",  # fullwidth letters
    "x" * 200,
]


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v)[:20] for v in HOSTILE])
def test_a_hostile_label_value_is_rejected_and_never_reaches_a_tag(
    acr: Emulator, registry: Any, value: str
) -> None:
    digest = pushed(acr, oci_image(seed=16, labels={REVISION_LABEL: value}))
    acr.clear_requests()
    result = tag_push(registry, HMCTS, Push(REPO, "latest", digest, T0))
    assert result.skipped
    assert not result.written
    assert "org.opencontainers.image.revision" in result.reason
    assert writes(acr) == []
    assert [t.name for t in registry.list_tags(REPO)] == ["latest"]


def test_a_redelivered_push_reads_no_config(acr: Emulator, registry: Any) -> None:
    digest = pushed(acr, oci_image(seed=17, labels={REVISION_LABEL: SHA}))
    first = tag_push(registry, HMCTS, Push(REPO, "latest", digest, T0))
    _RECENT.clear()  # another instance gets the redelivery
    _LABELS.clear()
    acr.clear_requests()
    again = tag_push(registry, HMCTS, Push(REPO, "latest", digest, T0))
    assert not again.written
    assert again.tag == first.tag
    assert writes(acr) == []
    assert not any("/blobs/" in c for c in calls(acr))


def test_a_rollback_gets_a_new_tag_that_sorts_newest(acr: Emulator, registry: Any) -> None:
    """Same labels (old image), later push time: the timestamp orders, not the labels."""
    old = pushed(acr, oci_image(seed=18, labels={REVISION_LABEL: "1111111aaaa"}))
    tag_push(registry, HMCTS, Push(REPO, "latest", old, T0))
    new = pushed(acr, oci_image(seed=19, labels={REVISION_LABEL: "2222222bbbb"}))
    tag_push(registry, HMCTS, Push(REPO, "latest", new, T0 + timedelta(minutes=5)))
    pushed(acr, oci_image(seed=18, labels={REVISION_LABEL: "1111111aaaa"}))  # roll back
    back = tag_push(registry, HMCTS, Push(REPO, "latest", old, T0 + timedelta(minutes=9)))
    assert back.written
    assert back.tag == "prod-1111111-20261201093900"
    names = [t.name for t in registry.list_tags(REPO) if HMCTS.is_generated(t.name)]
    assert max(names, key=lambda n: HMCTS.order_key(n) or ()) == back.tag


def event_for(acr: Emulator, digest: str, tag: str = "latest") -> dict[str, Any]:
    return {
        "id": "evt-labels",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2026-12-01T09:30:00.5Z",
        "data": {
            "timestamp": "2026-12-01T09:30:00.1234567Z",
            "action": "push",
            "target": {"repository": REPO, "tag": tag, "digest": digest},
            "request": {"host": acr.login_server, "method": "PUT"},
        },
    }


def test_event_path_logs_one_warning_line_for_a_missing_label(
    acr: Emulator, registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        {
            "ACR_LOGIN_SERVER": acr.login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": acr.ca_bundle,
            "RETAG_TAG_TEMPLATE": "prod-{revision:.7}-{timestamp}",
        }
    )
    digest = pushed(acr, oci_image(seed=20))
    with caplog.at_level(logging.INFO, logger="acr-retag"):
        outcome = handle_event(event_for(acr, digest), settings, lambda: registry)
    assert outcome.status == "skipped"
    assert "image has no org.opencontainers.image.revision label" in outcome.reason
    records = [r for r in caplog.records if r.name == "acr-retag"]
    assert [r.levelno for r in records] == [logging.WARNING]
    assert "outcome=skipped" in records[0].getMessage()
    assert 'new_tag="prod-<revision:.7>-20261201093000"' in records[0].getMessage()

    # With the label, the same event path writes; our own tag's event is recognised and ignored.
    labelled = pushed(acr, oci_image(seed=21, labels={REVISION_LABEL: SHA}))
    done = handle_event(event_for(acr, labelled), settings, lambda: registry)
    assert done.status == "retagged"
    assert done.new_tag == "prod-8ba37f7-20261201093000"
    own = handle_event(event_for(acr, labelled, tag=done.new_tag), settings, lambda: registry)
    assert own.status == "ignored"
    assert "generated tag" in own.reason
