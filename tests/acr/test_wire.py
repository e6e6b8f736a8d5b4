"""`retag.acr.wire`: ACR listing JSON -> `TagInfo`/`ManifestInfo`, paging via `Link`.

`AcrRegistry.list_tags` reads `_tags` pages as raw JSON (not through the SDK's deserializer).
Wire shapes: ACR data-plane API 2021-07-01 (design.md §1; the `_tags`/`_manifests` entries of
azure-sdk-for-python `sdk/containerregistry/azure-containerregistry/tests/recordings/`).

Differential: every listing is compared with what the SDK's own `list_tag_properties` returns for
the same registry state (the real SDK, over TLS, against the emulator), so the fast path cannot
drift from the SDK's meaning of a tag.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.acr.wire import manifest_info_from_json, next_link, tag_info_from_json
from retag.registry import NotFoundError, RegistryError, TagInfo, tally_requests
from tests.acr.conftest import clear, logged, push
from tests.support import images

DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def small_pages(acr: Emulator) -> Iterator[AcrRegistry]:
    adapter = AcrRegistry(
        acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, page_size=3
    )
    yield adapter
    adapter.close()


def sdk_tags(sdk: ContainerRegistryClient, repo: str, **kwargs: Any) -> list[TagInfo]:
    """The same listing through the SDK's `list_tag_properties` (what `list_tags` used to do)."""
    return [
        TagInfo(
            name=p.name,
            digest=p.digest,
            created_on=p.created_on,
            last_updated_on=p.last_updated_on,
            can_delete=p.can_delete is not False,
            can_write=p.can_write is not False,
        )
        for p in sdk.list_tag_properties(repo, results_per_page=3, **kwargs)
    ]


def test_digest_filter_over_several_pages_matches_the_sdk(
    acr: Emulator, small_pages: AcrRegistry, sdk: ContainerRegistryClient, repo: str
) -> None:
    one, two = images.oci_image(seed=101), images.docker_image(seed=102)
    push(acr, repo, one, "one")
    push(acr, repo, two, "two")
    first = small_pages.get_manifest(repo, one.digest)
    second = small_pages.get_manifest(repo, two.digest)
    on_one = {"one"} | {f"a{i:02d}" for i in range(9)}  # 10 tags: pages of 3, 3, 3, 1
    for name in sorted(on_one - {"one"}):
        small_pages.put_manifest(repo, first, name)
    for i in range(4):
        small_pages.put_manifest(repo, second, f"b{i}")
    # one locked tag on the filtered digest: the flags must come through the raw JSON
    sdk.update_tag_properties(repo, "a03", can_delete=False, can_write=False)

    list(small_pages.list_tags(repo, digest=DIGEST))  # warm the token: no 401 below
    clear(acr)
    listed = list(small_pages.list_tags(repo, digest=one.digest))
    log = logged(acr, 4)
    pages = [e for e in log if e["path"] == f"/acr/v1/{repo}/_tags"]
    assert [e["status"] for e in pages] == [200, 200, 200, 200]
    assert pages[0]["query"] == {"n": "3", "digest": one.digest}
    for page in pages[1:]:  # followed from Link: the filter and page size are kept
        assert page["query"]["digest"] == one.digest
        assert page["query"]["n"] == "3"
        assert page["query"]["last"]
    assert sorted(t.name for t in listed) == sorted(on_one)
    assert len(listed) == len(on_one)
    assert {t.digest for t in listed} == {one.digest}
    locked = {t.name for t in listed if t.locked}
    assert locked == {"a03"}
    assert next(t for t in listed if t.name == "a03").can_write is False

    assert listed == sdk_tags(sdk, repo, digest=one.digest)
    everything = list(small_pages.list_tags(repo))
    assert everything == sdk_tags(sdk, repo)
    assert len(everything) == len(on_one) + 5
    for tag in everything:
        assert tag.created_on.tzinfo is not None
        assert tag.created_on.utcoffset() is not None
        assert tag.last_updated_on >= tag.created_on


def test_list_tags_streams_one_page_at_a_time(
    acr: Emulator, small_pages: AcrRegistry, repo: str
) -> None:
    image = images.oci_image(seed=103)
    push(acr, repo, image, "latest")
    manifest = small_pages.get_manifest(repo, image.digest)
    for i in range(8):
        small_pages.put_manifest(repo, manifest, f"t{i}")
    list(small_pages.list_tags(repo))  # warm the token
    with tally_requests() as sent:
        tags = small_pages.list_tags(repo)
        assert sent.count == 0  # a generator: nothing sent yet
        [next(tags) for _ in range(3)]
        assert sent.count == 1  # one page so far
        next(tags)
        assert sent.count == 2
        assert len(list(tags)) == 5
        assert sent.count == 3


def test_repository_name_with_slashes_is_one_encoded_path_segment(
    acr: Emulator,
    registry: AcrRegistry,
    sdk: ContainerRegistryClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = "team/sub/app"
    image = images.oci_image(seed=104)
    push(acr, repo, image, "v1")
    push(acr, "team/sub", images.oci_image(seed=105), "other")
    with caplog.at_level(logging.INFO, logger="azure.core.pipeline.policies.http_logging_policy"):
        tags = list(registry.list_tags(repo, digest=image.digest))
    assert [(t.name, t.digest) for t in tags] == [("v1", image.digest)]
    assert [t.name for t in registry.list_tags("team/sub")] == ["other"]
    urls = [r.getMessage() for r in caplog.records if "Request URL" in r.getMessage()]
    assert urls
    # like the SDK (`quote(name, safe="")`): slashes of the name are %2F in the path
    assert all("/acr/v1/team%2Fsub%2Fapp/_tags?" in url for url in urls)
    assert tags == sdk_tags(sdk, repo, digest=image.digest)


def test_missing_repository_is_not_found_and_a_bad_filter_is_an_error(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    with pytest.raises(NotFoundError, match=r"metadata_read nobody/here on .*not found"):
        list(registry.list_tags("nobody/here"))
    with pytest.raises(NotFoundError, match="not found"):
        list(registry.list_tags("nobody/here", digest=DIGEST))
    push(acr, repo, images.oci_image(seed=106), "latest")
    # an unknown digest filters everything out; a malformed one is refused by the registry
    assert list(registry.list_tags(repo, digest=DIGEST)) == []
    with pytest.raises(RegistryError, match="HTTP 400"):
        list(registry.list_tags(repo, digest="sha256:nothex"))


# -- the JSON mapping (pure) ----------------------------------------------------------------------
def test_tag_info_from_json_full_entry() -> None:
    info = tag_info_from_json(
        {
            "name": "latest",
            "digest": DIGEST,
            "createdTime": "2026-11-29T23:07:00.1234567Z",
            "lastUpdateTime": "2026-11-30T00:00:00.0000000Z",
            "signed": False,
            "changeableAttributes": {
                "deleteEnabled": False,
                "writeEnabled": True,
                "readEnabled": True,
                "listEnabled": True,
            },
        }
    )
    assert info.name == "latest"
    assert info.digest == DIGEST
    assert info.created_on.isoformat() == "2026-11-29T23:07:00.123456+00:00"
    assert info.last_updated_on.isoformat() == "2026-11-30T00:00:00+00:00"
    assert info.can_delete is False
    assert info.can_write is True
    assert info.locked


@pytest.mark.parametrize(
    "attributes",
    [None, {}, {"readEnabled": False}, {"deleteEnabled": None, "writeEnabled": None}],
    ids=["missing", "empty", "other-flags-only", "nulls"],
)
def test_missing_changeable_attributes_default_to_enabled(
    attributes: dict[str, Any] | None,
) -> None:
    entry: dict[str, Any] = {
        "name": "v1",
        "digest": DIGEST,
        "createdTime": "2026-01-01T00:00:00Z",
        "lastUpdateTime": "2026-01-01T00:00:00Z",
    }
    if attributes is not None:
        entry["changeableAttributes"] = attributes
    info = tag_info_from_json(entry)
    assert info.can_delete is True
    assert info.can_write is True
    assert not info.locked


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(True, True), (False, False), ("true", True), ("False", False), (1, True), (0, False)],
)
def test_flags_in_the_forms_the_sdk_accepts(value: object, enabled: bool) -> None:
    info = tag_info_from_json(
        {
            "name": "v1",
            "digest": DIGEST,
            "createdTime": "2026-01-01T00:00:00Z",
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "changeableAttributes": {"deleteEnabled": value, "writeEnabled": value},
        }
    )
    assert info.can_delete is enabled
    assert info.can_write is enabled


def test_an_unreadable_flag_counts_as_a_lock() -> None:
    info = tag_info_from_json(
        {
            "name": "v1",
            "digest": DIGEST,
            "createdTime": "2026-01-01T00:00:00Z",
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "changeableAttributes": {"deleteEnabled": "maybe"},
        }
    )
    assert info.can_delete is False
    assert info.locked


@pytest.mark.parametrize(
    "entry",
    [
        {"digest": DIGEST, "createdTime": "2026-01-01T00:00:00Z"},
        {"name": "", "digest": DIGEST},
        {"name": "v1", "createdTime": "2026-01-01T00:00:00Z"},
        {"name": "v1", "digest": DIGEST, "lastUpdateTime": "2026-01-01T00:00:00Z"},
        {"name": "v1", "digest": DIGEST, "createdTime": "2026-01-01T00:00:00Z"},
        {"name": "v1", "digest": DIGEST, "createdTime": "soon", "lastUpdateTime": "later"},
    ],
    ids=["no-name", "empty-name", "no-digest", "no-created", "no-updated", "bad-times"],
)
def test_malformed_tag_entries_raise_registry_error(entry: dict[str, Any]) -> None:
    with pytest.raises(RegistryError, match="registry listing has"):
        tag_info_from_json(entry)


def test_bare_link_is_followed_like_the_sdk() -> None:
    assert next_link("</acr/v1/a/_tags?last=x&n=3>") == "/acr/v1/a/_tags?last=x&n=3"
    assert next_link("</acr/v1/a/_tags?last=x&n=3>;") == "/acr/v1/a/_tags?last=x&n=3"
    assert next_link('</acr/v1/a/_tags?last=x&n=3>; rel="prev"') is None


# -- listings -------------------------------------------------------------------------------------
CHILD = "sha256:" + "b" * 64


def test_manifest_info_from_acr_listing_entry() -> None:
    info = manifest_info_from_json(
        {
            "digest": DIGEST,
            "imageSize": 1234,
            "createdTime": "2026-01-02T03:04:05.1234567Z",
            "lastUpdateTime": "2026-01-03T00:00:00Z",
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "tags": ["latest", "v1"],
            "references": [{"digest": CHILD, "architecture": "amd64", "os": "linux"}],
            "changeableAttributes": {"deleteEnabled": False, "writeEnabled": True},
        }
    )
    assert info.digest == DIGEST
    assert info.size == 1234
    assert info.tags == ("latest", "v1")
    assert info.references == (CHILD,)
    assert info.media_type == "application/vnd.oci.image.index.v1+json"
    assert info.created_on == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert info.last_updated_on.tzinfo == UTC
    assert not info.can_delete
    assert info.can_write
    assert info.locked
    assert not info.has_subject


def test_manifest_info_subject_and_defaults() -> None:
    info = manifest_info_from_json(
        {
            "digest": DIGEST,
            "createdTime": "2026-01-02T03:04:05",
            "lastUpdateTime": "2026-01-02T03:04:05",
            "subject": {"digest": CHILD},
            "tags": None,
            "references": "nonsense",
            "imageSize": True,
        }
    )
    assert info.has_subject
    assert info.tags == ()
    assert info.references == ()
    assert info.size is None
    assert info.media_type is None
    assert info.can_delete
    assert info.can_write
    assert not info.locked
    assert info.created_on.tzinfo == UTC


@pytest.mark.parametrize(
    "entry",
    [
        {"createdTime": "2026-01-01T00:00:00Z", "lastUpdateTime": "2026-01-01T00:00:00Z"},
        {"digest": DIGEST, "lastUpdateTime": "2026-01-01T00:00:00Z"},
        {"digest": DIGEST, "createdTime": "yesterday", "lastUpdateTime": "2026-01-01T00:00:00Z"},
    ],
)
def test_malformed_listing_entries_raise_registry_error(entry: dict[str, Any]) -> None:
    with pytest.raises(RegistryError):
        manifest_info_from_json(entry)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ('</acr/v1/a/_tags?last=x&n=100>; rel="next"', "/acr/v1/a/_tags?last=x&n=100"),
        ("</acr/v1/a/_tags?last=x&n=100>; rel=next", "/acr/v1/a/_tags?last=x&n=100"),
        ('<https://r/x?n=1>; rel="prev", <https://r/y?n=1>; rel="next"', "https://r/y?n=1"),
        ('<https://r/x?n=1>; rel="prev"', None),
    ],
)
def test_next_link(header: str | None, expected: str | None) -> None:
    assert next_link(header) == expected
