"""Every public method of the real azure-containerregistry client against the emulator.

Parametrised over anonymous access (credential=None) and a real TokenCredential, always over
HTTPS with the emulator's CA passed as `connection_verify`.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest
from azure.containerregistry import (
    ArtifactArchitecture,
    ArtifactManifestOrder,
    ArtifactOperatingSystem,
    ArtifactTagOrder,
    ContainerRegistryClient,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from emulator import Emulator
from tests.emulator.conftest import ClientFactory
from tests.emulator.helpers import StaticTokenCredential, push, raw, unique_repo
from tests.support import images


def _raw_manifest_response(client: ContainerRegistryClient, repo: str, ref: str) -> bytes:
    captured: dict[str, bytes] = {}

    def hook(response: Any) -> None:
        captured["raw"] = response.http_response.body()

    client.get_manifest(repo, ref, raw_response_hook=hook)
    return captured["raw"]


def test_blob_and_manifest_round_trip(
    acr: Emulator, make_client: ClientFactory, credential: StaticTokenCredential | None
) -> None:
    client = make_client(credential)
    repo = unique_repo("sdk")
    config = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {}}).encode()
    layer = bytes(range(256)) * 40
    config_digest, config_size = client.upload_blob(repo, io.BytesIO(config))
    layer_digest, layer_size = client.upload_blob(repo, io.BytesIO(layer))
    assert config_digest == "sha256:" + hashlib.sha256(config).hexdigest()
    assert (config_size, layer_size) == (len(config), len(layer))

    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": {"mediaType": images.OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": images.OCI_LAYER, "digest": layer_digest, "size": layer_size}],
    }
    digest = client.set_manifest(repo, manifest, tag="v1")
    assert digest == "sha256:" + hashlib.sha256(json.dumps(manifest).encode()).hexdigest()

    by_tag = client.get_manifest(repo, "v1")
    by_digest = client.get_manifest(repo, digest)
    assert by_tag.digest == by_digest.digest == digest
    assert by_tag.manifest == manifest
    assert by_tag.media_type == images.OCI_MANIFEST

    downloaded = b"".join(client.download_blob(repo, layer_digest))
    assert downloaded == layer

    props = client.get_manifest_properties(repo, "v1")
    assert props.digest == digest
    assert props.architecture == ArtifactArchitecture.ARM64
    assert props.operating_system == ArtifactOperatingSystem.LINUX
    assert props.tags == ["v1"]
    assert props.size_in_bytes == len(json.dumps(manifest)) + config_size + layer_size
    assert props.repository_name == repo

    client.delete_blob(repo, layer_digest)
    with pytest.raises(ResourceNotFoundError):
        b"".join(client.download_blob(repo, layer_digest))
    client.delete_blob(repo, layer_digest)  # 404 is success for delete_blob


def test_set_manifest_preserves_digest_of_raw_bytes(
    acr: Emulator, make_client: ClientFactory, credential: StaticTokenCredential | None
) -> None:
    """The retag recipe from design.md: raw bytes via raw_response_hook, PUT them under a tag."""
    repo = unique_repo("retag")
    image = images.docker_image(seed=7)
    push(acr, repo, image, "latest")
    client = make_client(credential)
    raw = _raw_manifest_response(client, repo, image.digest)
    assert raw == image.raw  # byte-exact, 3-space indentation kept
    new_digest = client.set_manifest(
        repo, io.BytesIO(raw), tag="latest_1", media_type=images.DOCKER_MANIFEST
    )
    assert new_digest == image.digest
    assert client.get_tag_properties(repo, "latest_1").digest == image.digest
    # the naive path (dict re-serialised by json.dumps) changes the digest
    parsed = client.get_manifest(repo, "latest").manifest
    assert (
        client.set_manifest(repo, parsed, tag="naive", media_type=images.DOCKER_MANIFEST)
        != image.digest
    )


def test_tags_repositories_and_properties(
    acr: Emulator, make_client: ClientFactory, credential: StaticTokenCredential | None
) -> None:
    client = make_client(credential)
    repo = unique_repo("props")
    image = images.oci_image(seed=11)
    push(acr, repo, image, "a")
    for tag in ("b", "c"):
        client.set_manifest(repo, io.BytesIO(image.raw), tag=tag, media_type=image.media_type)

    assert repo in set(client.list_repository_names())
    repo_props = client.get_repository_properties(repo)
    assert (repo_props.name, repo_props.manifest_count, repo_props.tag_count) == (repo, 1, 3)
    assert repo_props.can_delete
    assert repo_props.can_write

    tags = list(client.list_tag_properties(repo))
    assert [t.name for t in tags] == ["a", "b", "c"]
    assert {t.digest for t in tags} == {image.digest}
    newest_first = [
        t.name
        for t in client.list_tag_properties(
            repo, order_by=ArtifactTagOrder.LAST_UPDATED_ON_DESCENDING
        )
    ]
    assert newest_first == ["c", "b", "a"]
    oldest_first = [t.name for t in client.list_tag_properties(repo, order_by="timeasc")]
    assert oldest_first == ["a", "b", "c"]

    tag = client.get_tag_properties(repo, "b")
    assert (tag.name, tag.digest) == ("b", image.digest)
    assert tag.created_on <= tag.last_updated_on

    updated = client.update_tag_properties(repo, "b", can_delete=False)
    assert updated.can_delete is False
    assert updated.can_write is True
    assert client.get_tag_properties(repo, "b").can_delete is False
    client.update_tag_properties(repo, "b", can_delete=True)

    manifest = client.update_manifest_properties(repo, image.digest, can_write=False)
    assert manifest.can_write is False
    manifest = client.update_manifest_properties(repo, "a", can_write=True, can_list=True)
    assert manifest.can_write is True

    repo_props = client.update_repository_properties(repo, can_list=True, can_read=True)
    assert repo_props.can_list is True

    manifests = list(client.list_manifest_properties(repo))
    assert [m.digest for m in manifests] == [image.digest]
    assert sorted(manifests[0].tags) == ["a", "b", "c"]
    ordered = list(
        client.list_manifest_properties(
            repo, order_by=ArtifactManifestOrder.LAST_UPDATED_ON_DESCENDING
        )
    )
    assert [m.digest for m in ordered] == [image.digest]


def test_deletes(
    acr: Emulator, make_client: ClientFactory, credential: StaticTokenCredential | None
) -> None:
    client = make_client(credential)
    repo = unique_repo("del")
    first, second = images.oci_image(seed=1), images.docker_image(seed=2)
    push(acr, repo, first, "one")
    push(acr, repo, second, "two")
    client.set_manifest(repo, io.BytesIO(second.raw), tag="two-b", media_type=second.media_type)

    client.delete_tag(repo, "one")
    client.delete_tag(repo, "one")  # 404 is success for delete_tag
    assert [t.name for t in client.list_tag_properties(repo)] == ["two", "two-b"]
    # the manifest survives its last tag (untagged now)
    assert client.get_manifest(repo, first.digest).digest == first.digest

    client.delete_manifest(repo, "two")  # by tag: the SDK resolves the digest first
    assert list(client.list_tag_properties(repo)) == []
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, second.digest)
    client.delete_manifest(repo, first.digest)

    push(acr, repo, first, "again")
    client.delete_repository(repo)
    assert repo not in set(client.list_repository_names())
    with pytest.raises(ResourceNotFoundError):
        client.get_repository_properties(repo)
    client.delete_repository(repo)  # 404 is success for delete_repository


def test_index_listing_has_references_and_platforms(
    acr: Emulator, make_client: ClientFactory, credential: StaticTokenCredential | None
) -> None:
    client = make_client(credential)
    repo = unique_repo("multi")
    index = images.oci_index(seed=5)
    push(acr, repo, index, "latest")
    generated = list(client.list_manifest_properties(repo, cls=lambda objs: objs))
    by_digest = {m.digest: m for m in generated}
    assert set(by_digest) == {index.digest, *(c.digest for c in index.children)}
    top = by_digest[index.digest]
    assert top.additional_properties["mediaType"] == images.OCI_INDEX
    assert top.tags == ["latest"]
    assert top.related_artifacts is None  # like ACR: listings carry no references
    single = raw(
        acr,
        "GET",
        f"/acr/v1/{repo}/_manifests/{index.digest}",
        scope=f"repository:{repo}:metadata_read",
    ).json()["manifest"]
    references = {(r["digest"], r["architecture"], r["os"]) for r in single["references"]}
    assert references == {
        (c.digest, c.platform[1], c.platform[0]) for c in index.children if c.platform
    }
    for child in index.children:
        entry = by_digest[child.digest]
        assert entry.tags is None
        assert child.platform is not None
        assert (entry.operating_system, entry.architecture) == child.platform

    props = client.get_manifest_properties(repo, index.digest)
    assert props.tags == ["latest"]
    assert props.architecture is None
    assert props.operating_system is None
    assert client.get_manifest(repo, "latest").media_type == images.OCI_INDEX


def test_paging_walks_several_pages(
    acr: Emulator, make_client: ClientFactory, credential: StaticTokenCredential | None
) -> None:
    client = make_client(credential)
    repo = unique_repo("pages")
    image = images.oci_image(seed=3)
    push(acr, repo, image, "t0")
    names = [f"t{i}" for i in range(7)]
    for name in names[1:]:
        client.set_manifest(repo, io.BytesIO(image.raw), tag=name, media_type=image.media_type)
    acr.clear_requests()
    pages = list(client.list_tag_properties(repo, results_per_page=2).by_page())
    assert [[t.name for t in page] for page in pages] == [
        names[0:2],
        names[2:4],
        names[4:6],
        names[6:],
    ]
    tag_gets = [
        r for r in acr.requests() if r["path"] == f"/acr/v1/{repo}/_tags" and r["status"] == 200
    ]
    assert len(tag_gets) == 4
    assert all(r["query"].get("n") == "2" for r in tag_gets)

    descending = [
        t.name for t in client.list_tag_properties(repo, results_per_page=3, order_by="timedesc")
    ]
    assert descending == names[::-1]
    for child_seed in range(5):
        push(acr, repo, images.oci_image(seed=100 + child_seed))
    digests = [m.digest for m in client.list_manifest_properties(repo, results_per_page=2)]
    assert len(digests) == 6 == len(set(digests))
    assert digests == sorted(digests)
    many = [f"{repo}-{i}" for i in range(3)]
    for name in many:
        push(acr, name, image, "x")
    listed = list(client.list_repository_names(results_per_page=2))
    assert listed == sorted(listed)
    assert set(many) <= set(listed)


def test_errors_map_to_sdk_exceptions(
    acr: Emulator, make_client: ClientFactory, credential: StaticTokenCredential | None
) -> None:
    client = make_client(credential)
    repo = unique_repo("errors")
    with pytest.raises(ResourceNotFoundError):
        client.get_manifest(repo, "latest")
    with pytest.raises(ResourceNotFoundError):
        client.get_tag_properties(repo, "latest")
    push(acr, repo, images.oci_image(seed=9), "latest")
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_tag_properties(repo, "nope")
    assert missing.value.status_code == 404
    bad = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": {"mediaType": images.OCI_CONFIG, "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [],
    }
    with pytest.raises(HttpResponseError) as refused:
        client.set_manifest(repo, bad, tag="broken")
    assert refused.value.status_code == 400
    assert refused.value.model.errors[0].code == "MANIFEST_BLOB_UNKNOWN"


def test_client_as_context_manager(acr: Emulator, credential: StaticTokenCredential | None) -> None:
    repo = unique_repo("ctx")
    push(acr, repo, images.oci_image(seed=4), "v")
    with ContainerRegistryClient(
        acr.endpoint, credential, connection_verify=acr.ca_bundle
    ) as client:
        assert client.get_tag_properties(repo, "v").name == "v"


def test_credential_flow_uses_exchange(acr: Emulator, make_client: ClientFactory) -> None:
    credential = StaticTokenCredential()
    client = make_client(credential, audience="https://containerregistry.azure.net")
    repo = unique_repo("cred")
    push(acr, repo, images.oci_image(seed=12), "v")
    acr.clear_requests()
    client.get_tag_properties(repo, "v")
    paths = [(r["method"], r["path"], r["status"]) for r in acr.requests()]
    assert paths == [
        ("GET", f"/acr/v1/{repo}/_tags/v", 401),
        ("POST", "/oauth2/exchange", 200),
        ("POST", "/oauth2/token", 200),
        ("GET", f"/acr/v1/{repo}/_tags/v", 200),
    ]
    assert credential.calls == [("https://containerregistry.azure.net/.default",)]
