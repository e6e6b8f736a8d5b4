"""`retag.acr.client`: every `Registry` method of `AcrRegistry` (the real SDK, over TLS, against the
emulator), its constructor and `from_settings` / `registry_for`."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from retag.acr.client import AcrRegistry, registry_for
from retag.acr.wire import PAGE_SIZE
from retag.oci import OCI_MANIFEST
from retag.registry import (
    ConflictError,
    Manifest,
    NotFoundError,
    Registry,
    RegistryError,
    tally_requests,
)
from retag.settings import SettingsError, load_settings
from tests.acr.conftest import clear, logged, push
from tests.support import images


def test_acr_registry_satisfies_the_registry_protocol(registry: AcrRegistry) -> None:
    adapter: Registry = registry  # mypy checks the protocol; the asserts check it at runtime
    assert adapter.login_server == registry.login_server
    assert not hasattr(adapter, "requests_made")  # requests are counted by tally_requests()


@pytest.mark.parametrize(
    "build",
    [images.docker_image, images.oci_image, images.docker_manifest_list, images.oci_index],
    ids=["docker-v2-3-space", "oci-manifest", "docker-manifest-list", "oci-index"],
)
def test_retag_round_trip_is_byte_exact(
    acr: Emulator, registry: AcrRegistry, repo: str, build: Callable[..., images.Image]
) -> None:
    image = build(seed=7)
    push(acr, repo, image, "latest")
    if image.media_type == images.DOCKER_MANIFEST:
        assert b'\n   "' in image.raw  # 3-space indented, as docker pushes it

    manifest = registry.get_manifest(repo, image.digest)
    assert manifest.raw == image.raw
    assert manifest.digest == image.digest
    assert manifest.media_type == image.media_type

    new_digest = registry.put_manifest(repo, manifest, "latest_20261129230700_abc")
    assert new_digest == image.digest
    assert acr.tag_digest(repo, "latest_20261129230700_abc") == image.digest
    again = registry.get_manifest(repo, "latest_20261129230700_abc")
    assert again.raw == image.raw
    assert again.media_type == image.media_type
    # what json.dumps would have produced has another digest: nothing was re-serialised
    reserialised = json.dumps(json.loads(image.raw)).encode()
    assert "sha256:" + hashlib.sha256(reserialised).hexdigest() != new_digest


def test_get_manifest_by_tag_and_content_type_parameters_are_stripped(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    image = images.oci_image(seed=3)
    push(acr, repo, image, "v1")
    manifest = registry.get_manifest(repo, "v1")
    assert manifest == Manifest(image.raw, images.OCI_MANIFEST, image.digest)


def test_missing_manifest_repository_and_tag_are_not_found(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    push(acr, repo, images.oci_image(seed=4), "v1")
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFoundError, match="not found"):
        registry.get_manifest(repo, missing)
    with pytest.raises(NotFoundError):
        registry.get_manifest("nobody/here", "latest")
    with pytest.raises(NotFoundError):
        registry.get_tag(repo, "nope")
    with pytest.raises(NotFoundError):
        registry.get_manifest_info(repo, missing)
    with pytest.raises(NotFoundError):
        list(registry.list_tags("nobody/here"))


def test_get_tag_and_manifest_info(acr: Emulator, registry: AcrRegistry, repo: str) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    index = images.oci_index(seed=11)
    push(acr, repo, index, "latest")
    tag = registry.get_tag(repo, "latest")
    assert tag.name == "latest"
    assert tag.digest == index.digest
    assert tag.created_on.tzinfo == UTC
    assert tag.created_on >= before
    assert tag.can_delete
    assert tag.can_write
    assert not tag.locked

    info = registry.get_manifest_info(repo, index.digest)
    assert info.digest == index.digest
    assert info.media_type == images.OCI_INDEX
    assert info.tags == ("latest",)
    assert set(info.references) == {child.digest for child in index.children}
    assert not info.has_subject
    assert not info.locked


def test_list_manifests_shows_children_referrers_and_untagged(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    index = images.docker_manifest_list(seed=12)
    app = images.oci_image(seed=13)
    sbom = images.referrer(app, seed=14)
    push(acr, repo, index, "latest")
    push(acr, repo, app, "app")
    push(acr, repo, sbom)
    listed = {m.digest: m for m in registry.list_manifests(repo)}
    assert set(listed) == {index.digest, app.digest, sbom.digest} | {
        c.digest for c in index.children
    }
    # like ACR, the listing carries no references (get_manifest_info has them, above)
    assert listed[index.digest].references == ()
    assert listed[index.digest].media_type == images.DOCKER_MANIFEST_LIST
    assert listed[sbom.digest].has_subject
    assert listed[sbom.digest].tags == ()
    assert not listed[app.digest].has_subject
    assert listed[app.digest].tags == ("app",)
    for child in index.children:
        assert listed[child.digest].tags == ()
        size = listed[child.digest].size  # ACR's imageSize: manifest + config + layers
        assert size is not None
        assert size >= len(child.raw)


def test_listings_ask_for_pages_of_100(acr: Emulator, registry: AcrRegistry, repo: str) -> None:
    image = images.oci_image(seed=20)
    push(acr, repo, image, "latest")
    list(registry.list_tags(repo))  # warm the token
    clear(acr)
    assert [t.name for t in registry.list_tags(repo, digest=image.digest)] == ["latest"]
    assert [m.digest for m in registry.list_manifests(repo)] == [image.digest]
    assert list(registry.list_repositories()) == [repo]
    log = logged(acr, 3)
    queries = [e["query"] for e in log if e["status"] == 200]
    assert queries[0] == {"n": str(PAGE_SIZE), "digest": image.digest}
    assert queries[1] == {"n": str(PAGE_SIZE)}
    assert any(q.get("n") == str(PAGE_SIZE) for q in queries[2:])


def test_listing_follows_link_across_several_pages(acr: Emulator, repo: str) -> None:
    registry = AcrRegistry(
        acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, page_size=7
    )
    image = images.oci_image(seed=21)
    push(acr, repo, image, "latest")
    manifest = registry.get_manifest(repo, image.digest)
    names = {"latest"} | {f"t{i:03d}" for i in range(22)}
    for name in sorted(names - {"latest"}):
        registry.put_manifest(repo, manifest, name)
    # other manifests (same blobs, distinct annotations) for the manifests listing
    others = []
    for i in range(16):
        document = {**json.loads(image.raw), "annotations": {"n": str(i)}}
        raw = json.dumps(document, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        others.append(registry.put_manifest(repo, Manifest(raw, OCI_MANIFEST, digest), f"o{i}"))

    clear(acr)
    listed = [t.name for t in registry.list_tags(repo, digest=image.digest)]
    assert sorted(listed) == sorted(names)
    assert len(listed) == len(names)
    log = logged(acr, 6)  # 401 challenge, token, then 4 pages
    pages = [e for e in log if e["path"].endswith("/_tags") and e["status"] == 200]
    assert len(pages) == 4  # 23 tags on that digest, 7 per page
    assert pages[0]["query"] == {"n": "7", "digest": image.digest}

    all_tags = list(registry.list_tags(repo))
    assert len(all_tags) == len(names) + len(others)
    assert {t.digest for t in all_tags} == {image.digest, *others}

    clear(acr)
    manifests = list(registry.list_manifests(repo))
    assert sorted(m.digest for m in manifests) == sorted({image.digest, *others})
    log = logged(acr, 3)
    pages = [e for e in log if e["path"].endswith("/_manifests") and e["status"] == 200]
    assert len(pages) == 3
    assert pages[0]["query"] == {"n": "7"}
    registry.close()


def test_list_tags_digest_filter_returns_only_that_digest(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    one, two = images.oci_image(seed=31), images.oci_image(seed=32)
    push(acr, repo, one, "a")
    push(acr, repo, two, "b")
    registry.put_manifest(repo, registry.get_manifest(repo, "a"), "a2")
    assert sorted(t.name for t in registry.list_tags(repo, digest=one.digest)) == ["a", "a2"]
    assert [t.name for t in registry.list_tags(repo, digest=two.digest)] == ["b"]


def test_list_repositories(acr: Emulator, registry: AcrRegistry) -> None:
    for name in ("zeta/app", "alpha", "mid/dle/name"):
        push(acr, name, images.oci_image(seed=41), "latest")
    assert sorted(registry.list_repositories()) == ["alpha", "mid/dle/name", "zeta/app"]


def test_delete_tag_keeps_the_manifest_and_is_idempotent(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    image = images.oci_image(seed=51)
    push(acr, repo, image, "keep")
    registry.put_manifest(repo, registry.get_manifest(repo, "keep"), "drop")
    registry.delete_tag(repo, "drop")
    assert acr.tag_digest(repo, "drop") is None
    assert acr.tag_digest(repo, "keep") == image.digest
    registry.delete_tag(repo, "drop")  # already gone: no error
    assert registry.get_manifest(repo, image.digest).digest == image.digest


def test_delete_manifest_removes_it_and_its_tags(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    image, other = images.oci_image(seed=61), images.oci_image(seed=62)
    push(acr, repo, image, "one")
    push(acr, repo, other, "two")
    registry.delete_manifest(repo, image.digest)
    assert acr.tag_digest(repo, "one") is None
    with pytest.raises(NotFoundError):
        registry.get_manifest(repo, image.digest)
    assert [t.name for t in registry.list_tags(repo)] == ["two"]
    registry.delete_manifest(repo, image.digest)  # already gone: no error
    with pytest.raises(ValueError, match="digest"):
        registry.delete_manifest(repo, "two")


def test_locked_tag_is_never_overwritten_or_deleted(
    acr: Emulator, registry: AcrRegistry, sdk: ContainerRegistryClient, repo: str
) -> None:
    first, second = images.oci_image(seed=71), images.oci_image(seed=72)
    push(acr, repo, first, "locked")
    push(acr, repo, second, "other")
    # lock it with the SDK's own API (what `az acr repository update --write-enabled false` does)
    sdk.update_tag_properties(repo, "locked", can_write=False, can_delete=False)
    assert registry.get_tag(repo, "locked").locked
    with pytest.raises(ConflictError, match="locked"):
        registry.put_manifest(repo, registry.get_manifest(repo, "other"), "locked")
    with pytest.raises(ConflictError):
        registry.delete_tag(repo, "locked")
    assert acr.tag_digest(repo, "locked") == first.digest


def test_put_manifest_whose_bytes_do_not_match_the_digest_is_an_error(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    image = images.oci_image(seed=81)
    push(acr, repo, image, "v1")
    manifest = registry.get_manifest(repo, "v1")
    # The registry stores what we send; the returned digest tells the caller it differs.
    tampered = Manifest(manifest.raw + b" ", manifest.media_type, manifest.digest)
    assert registry.put_manifest(repo, tampered, "v2") != manifest.digest
    with pytest.raises(RegistryError):
        registry.put_manifest(repo, Manifest(b"not json", OCI_MANIFEST, manifest.digest), "v3")


def test_push_image_oci_and_docker(acr: Emulator, registry: AcrRegistry, repo: str) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    digest = registry.push_image(repo, "oci", config, [b"layer-one", b"layer-two"])
    assert acr.tag_digest(repo, "oci") == digest
    manifest = registry.get_manifest(repo, "oci")
    document = json.loads(manifest.raw)
    assert manifest.media_type == OCI_MANIFEST
    assert [layer["size"] for layer in document["layers"]] == [9, 9]

    docker = registry.push_image(
        repo, "docker", config, [b"x" * 5000], media_type=images.DOCKER_MANIFEST
    )
    raw = registry.get_manifest(repo, docker).raw
    assert raw.startswith(b'{\n   "schemaVersion": 2')
    with pytest.raises(ValueError, match="supports"):
        registry.push_image(repo, "bad", config, [], media_type="text/plain")


def test_from_settings_and_registry_for_build_one_adapter_per_settings(acr: Emulator) -> None:
    settings = load_settings(
        {
            "ACR_LOGIN_SERVER": acr.login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": acr.ca_bundle,
        }
    ).registry
    shared = registry_for(settings)
    assert registry_for(settings) is shared
    assert shared.login_server == acr.login_server
    push(acr, "cfg/app", images.oci_image(seed=91), "latest")
    assert shared.get_tag("cfg/app", "latest").name == "latest"
    own = AcrRegistry.from_settings(settings, read_timeout=1.0)
    assert own is not shared
    own.close()


# -- login server, redaction, constructor validation ----------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("myreg.azurecr.io", "myreg.azurecr.io"),
        ("127.0.0.1:5443", "127.0.0.1:5443"),
    ],
)
def test_login_server_is_taken_as_given(value: str, expected: str) -> None:
    assert AcrRegistry(value, credential="anonymous").login_server == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "not a valid login server"),
        ("http://myreg.azurecr.io", "drop 'http://'"),
        # Issue 11: one login-server rule for ACR_LOGIN_SERVER and the adapter (settings'). The
        # adapter used to strip `https://`, a trailing `/` and uppercase; now it refuses them
        # with the same message ACR_LOGIN_SERVER gives.
        ("https://MyReg.azurecr.io/", "drop 'https://'"),
        ("MyReg.azurecr.io", "must be lowercase"),
        ("myreg.azurecr.io/app", "has a path"),
        ("my reg", "not a valid login server"),
        ("u@myreg.io", "not a valid login server"),
    ],
)
def test_bad_login_servers_are_rejected_with_the_settings_rule(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match="login server") as caught:
        AcrRegistry(value, credential="anonymous")
    assert problem in str(caught.value)
    if value:  # (an empty ACR_LOGIN_SERVER is "required" instead)
        with pytest.raises(SettingsError, match=re.escape(problem)):
            load_settings({"ACR_LOGIN_SERVER": value})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"credential": "managed"}, "credential must be"),
        ({"credential": object()}, "credential must be"),
        ({"credential": "anonymous", "read_timeout": 0}, "read_timeout"),
        ({"credential": "anonymous", "deadline_seconds": -1}, "deadline_seconds"),
        ({"credential": "anonymous", "retry_total": -1}, "retry_total"),
        ({"credential": "anonymous", "page_size": 0}, "page_size"),
        ({"credential": "anonymous", "ca_bundle": "/no/such/ca.pem"}, "ca_bundle: .*existing file"),
    ],
)
def test_constructor_validates_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AcrRegistry("127.0.0.1:1", **kwargs)


def test_default_credential_is_built_without_network() -> None:
    from azure.identity import DefaultAzureCredential

    registry = AcrRegistry("myregistry.azurecr.io", credential="default")
    with tally_requests() as sent:
        assert isinstance(registry.authenticator.credential, DefaultAzureCredential)
    assert sent.count == 0
    assert registry.endpoint == "https://myregistry.azurecr.io"
    registry.close()
