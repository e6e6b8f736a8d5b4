"""Differential tests of the /v2 distribution API: the emulator must answer like docker-registry.

Each test pushes the SAME content (same bytes, same digests) to every target, performs the same
raw HTTP requests and compares statuses, digests, key headers and error codes (`assert_same`).
Intended differences live in `differences.py`; beyond the comparison each test also asserts the
absolute behaviour of the reference, so a change in distribution itself is noticed too.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable

import pytest
import requests

from tests.differential.harness import (
    Observation,
    Target,
    assert_same,
    observe,
    observe_json,
    run_everywhere,
    unique_repository,
)
from tests.support import images
from tests.support.images import Image

pytestmark = pytest.mark.system

KINDS: dict[str, Callable[[], Image]] = {
    "docker-v2": images.docker_image,
    "oci-manifest": images.oci_image,
    "oci-index": images.oci_index,
    "docker-list": images.docker_manifest_list,
}

MANIFEST_FIELDS = (
    "status",
    "digest",
    "content_type",
    "content_length",
    "body_sha256",
    "api_version",
)
PUT_FIELDS = ("status", "digest", "location", "api_version")
ERROR_FIELDS = ("status", "errors", "error_content_type")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def push_parts(session: images.V2Session, repository: str, image: Image) -> None:
    """Everything `image` references (blobs, children, subject), but not the manifest itself."""
    if image.subject is not None:
        images.push_image(session.base_url, repository, image.subject, session=session, verify=True)
    for blob in image.blobs:
        session.upload_blob(repository, blob)
    for child in image.children:
        images.push_image(session.base_url, repository, child, session=session, verify=True)


# ------------------------------------------------------------------------------------------
# Manifests: push, get by tag and digest, head, re-tag with the same bytes, delete by digest


@pytest.mark.parametrize("kind", list(KINDS))
def test_manifest_lifecycle(targets: dict[str, Target], kind: str) -> None:
    image = KINDS[kind]()
    repository = unique_repository(kind)
    steps: dict[str, dict[str, Observation]] = {}

    def scenario(target: Target) -> Observation:
        with target.session() as session:
            push_parts(session, repository, image)
            seen: dict[str, Observation] = {}
            put = session.put_manifest(repository, "v1", image.raw, image.media_type)
            seen["manifest.put_by_tag"] = observe(put, *PUT_FIELDS)
            seen["manifest.get_by_tag"] = observe(
                session.get_manifest(repository, "v1"), *MANIFEST_FIELDS
            )
            seen["manifest.get_by_digest"] = observe(
                session.get_manifest(repository, image.digest), *MANIFEST_FIELDS
            )
            head = session.get_manifest(repository, "v1", method="HEAD")
            seen["manifest.head_by_tag"] = observe(head, *MANIFEST_FIELDS)
            seen["manifest.head_by_digest"] = observe(
                session.get_manifest(repository, image.digest, method="HEAD"), *MANIFEST_FIELDS
            )
            for child in image.children:
                seen[f"manifest.get_child_{child.platform}"] = observe(
                    session.get_manifest(repository, child.digest), *MANIFEST_FIELDS
                )
            # The re-tag: the same bytes under a new tag keep the digest.
            retag = session.put_manifest(repository, "v1-copy", image.raw, image.media_type)
            seen["manifest.put_same_bytes_new_tag"] = observe(retag, *PUT_FIELDS)
            seen["manifest.get_new_tag"] = observe(
                session.get_manifest(repository, "v1-copy"), *MANIFEST_FIELDS
            )
            seen["tags.list_two_tags"] = observe_json(
                session.request("GET", f"/v2/{repository}/tags/list")
            )
            delete = session.request("DELETE", f"/v2/{repository}/manifests/{image.digest}")
            seen["manifest.delete_by_digest"] = observe(delete, "status", "errors")
            for label, reference in (("tag", "v1"), ("tag2", "v1-copy"), ("digest", image.digest)):
                seen[f"manifest.get_after_delete:{label}"] = observe(
                    session.get_manifest(repository, reference), *ERROR_FIELDS
                )
            seen["tags.list_after_delete"] = observe_json(
                session.request("GET", f"/v2/{repository}/tags/list")
            )
            return seen

    for target_name, seen in run_everywhere(targets, scenario).items():
        for step, observation in seen.items():
            steps.setdefault(step, {})[target_name] = observation
    reference = {step: assert_same(step, observed) for step, observed in steps.items()}

    # Absolute behaviour (of the reference, and by equality of every target).
    assert reference["manifest.put_by_tag"] == {
        "status": 201,
        "digest": image.digest,
        "location": f"/v2/{repository}/manifests/{image.digest}",
        "api_version": "registry/2.0",
    }
    for step in ("manifest.get_by_tag", "manifest.get_by_digest", "manifest.get_new_tag"):
        assert reference[step] == {
            "status": 200,
            "digest": image.digest,
            "content_type": image.media_type,
            "content_length": str(image.size),
            "body_sha256": sha(image.raw),
            "api_version": "registry/2.0",
        }, step
    for step in ("manifest.head_by_tag", "manifest.head_by_digest"):
        assert reference[step]["status"] == 200
        assert reference[step]["content_length"] == str(image.size)
        assert reference[step]["body_sha256"] == sha(b"")
    assert reference["manifest.put_same_bytes_new_tag"]["digest"] == image.digest
    assert reference["tags.list_two_tags"]["json"] == {
        "name": repository,
        "tags": ["v1", "v1-copy"],
    }
    assert reference["manifest.delete_by_digest"]["status"] == 202
    for label in ("tag", "tag2", "digest"):
        after = reference[f"manifest.get_after_delete:{label}"]
        assert after["status"] == 404
        assert after["errors"] == ["MANIFEST_UNKNOWN"]


def test_referrer_with_subject(targets: dict[str, Target]) -> None:
    """An OCI manifest with `subject` is stored and served byte-exact like any other."""
    subject = images.oci_image()
    sbom = images.referrer(subject)
    repository = unique_repository("referrer")

    def scenario(target: Target) -> Observation:
        with target.session() as session:
            push_parts(session, repository, sbom)
            put = session.put_manifest(repository, sbom.digest, sbom.raw, sbom.media_type)
            get = session.get_manifest(repository, sbom.digest)
            return {"put": observe(put, *PUT_FIELDS), "get": observe(get, *MANIFEST_FIELDS)}

    seen = run_everywhere(targets, scenario)
    put = assert_same("referrer.put", {name: s["put"] for name, s in seen.items()})
    get = assert_same("referrer.get", {name: s["get"] for name, s in seen.items()})
    assert put["status"] == 201
    assert put["digest"] == sbom.digest
    assert get["body_sha256"] == sha(sbom.raw)
    assert get["content_type"] == images.OCI_MANIFEST


# ------------------------------------------------------------------------------------------
# Blobs


def test_blob_get_head_and_range(targets: dict[str, Target]) -> None:
    image = images.docker_image(layer_size=4096)
    layer = image.blobs[1]
    repository = unique_repository("blobs")
    missing = "sha256:" + "2" * 64

    def scenario(target: Target) -> dict[str, Observation]:
        with target.session() as session:
            images.push_image(
                target.endpoint, repository, image, "v1", session=session, verify=True
            )
            path = f"/v2/{repository}/blobs/{layer.digest}"
            fields = ("status", "digest", "content_length", "content_range", "body_sha256")
            return {
                "blob.get": observe(session.request("GET", path), *fields),
                "blob.head": observe(session.request("HEAD", path), *fields),
                "blob.get_range": observe(
                    session.request("GET", path, headers={"Range": "bytes=0-9"}), *fields
                ),
                "blob.get_range_tail": observe(
                    session.request("GET", path, headers={"Range": f"bytes=10-{layer.size - 1}"}),
                    *fields,
                ),
                "blob.get_unknown": observe(
                    session.request("GET", f"/v2/{repository}/blobs/{missing}"), *ERROR_FIELDS
                ),
                "blob.head_unknown": observe(
                    session.request("HEAD", f"/v2/{repository}/blobs/{missing}"), "status"
                ),
            }

    seen = run_everywhere(targets, scenario)
    reference = {
        step: assert_same(step, {name: s[step] for name, s in seen.items()})
        for step in seen["distribution"]
    }
    assert reference["blob.get"] == {
        "status": 200,
        "digest": layer.digest,
        "content_length": str(layer.size),
        "content_range": None,
        "body_sha256": sha(layer.data),
    }
    assert reference["blob.head"]["body_sha256"] == sha(b"")
    assert reference["blob.get_range"] == {
        "status": 206,
        "digest": layer.digest,
        "content_length": "10",
        "content_range": f"bytes 0-9/{layer.size}",
        "body_sha256": sha(layer.data[:10]),
    }
    assert reference["blob.get_range_tail"]["body_sha256"] == sha(layer.data[10:])
    assert reference["blob.get_unknown"]["errors"] == ["BLOB_UNKNOWN"]
    assert reference["blob.head_unknown"]["status"] == 404


def test_chunked_upload_and_cross_repository_mount(targets: dict[str, Target]) -> None:
    blob = images.random_layer(random.Random(), 3000)[0]
    source = unique_repository("chunked")
    destination = unique_repository("mounted")

    def scenario(target: Target) -> dict[str, Observation]:
        seen: dict[str, Observation] = {}
        with target.session() as session:
            started = session.request("POST", f"/v2/{source}/blobs/uploads/")
            seen["upload.start"] = observe(started, "status", "content_length")
            seen["upload.start"]["range"] = started.headers.get("Range")
            location = session.upload_location(started)
            first = session.request(
                "PATCH",
                location,
                data=blob.data[:1000],
                headers={"Content-Type": "application/octet-stream"},
            )
            seen["upload.patch"] = observe(first, "status")
            seen["upload.patch"]["range"] = first.headers.get("Range")
            location = session.upload_location(first)
            status = session.request("GET", location)
            seen["upload.status"] = observe(status, "status")
            seen["upload.status"]["range"] = status.headers.get("Range")
            second = session.request(
                "PATCH",
                session.upload_location(status),
                data=blob.data[1000:],
                headers={"Content-Type": "application/octet-stream"},
            )
            seen["upload.patch_rest"] = observe(second, "status")
            seen["upload.patch_rest"]["range"] = second.headers.get("Range")
            done = session.request(
                "PUT", session.upload_location(second) + f"&digest={blob.digest}"
            )
            seen["upload.finish"] = observe(done, "status", "digest", "location")
            mount = session.request(
                "POST", f"/v2/{destination}/blobs/uploads/?mount={blob.digest}&from={source}"
            )
            seen["upload.mount"] = observe(mount, "status", "digest", "location")
            seen["upload.mounted_blob"] = observe(
                session.request("GET", f"/v2/{destination}/blobs/{blob.digest}"),
                "status",
                "body_sha256",
            )
        return seen

    seen = run_everywhere(targets, scenario)
    reference = {
        step: assert_same(step, {name: s[step] for name, s in seen.items()})
        for step in seen["distribution"]
    }
    assert reference["upload.start"] == {"status": 202, "content_length": "0", "range": "0-0"}
    assert reference["upload.patch"] == {"status": 202, "range": "0-999"}
    assert reference["upload.status"] == {"status": 204, "range": "0-999"}
    assert reference["upload.patch_rest"] == {"status": 202, "range": f"0-{blob.size - 1}"}
    assert reference["upload.finish"] == {
        "status": 201,
        "digest": blob.digest,
        "location": f"/v2/{source}/blobs/{blob.digest}",
    }
    assert reference["upload.mount"] == {
        "status": 201,
        "digest": blob.digest,
        "location": f"/v2/{destination}/blobs/{blob.digest}",
    }
    assert reference["upload.mounted_blob"] == {"status": 200, "body_sha256": sha(blob.data)}


# ------------------------------------------------------------------------------------------
# Refused uploads: the registry's error codes


def _bad_manifest_put(
    repository: str, reference: str, body: bytes, media_type: str, prepare: Image | None = None
) -> Callable[[Target], Observation]:
    def scenario(target: Target) -> Observation:
        with target.session() as session:
            if prepare is not None:
                push_parts(session, repository, prepare)
            response = session.put_manifest(repository, reference, body, media_type)
            return observe(response, *ERROR_FIELDS)

    return scenario


def _error_cases() -> dict[str, tuple[Callable[[Target], Observation], int, list[str] | None]]:
    """step -> (scenario, reference status, reference error codes)."""
    image = images.docker_image(layers=2)
    index = images.oci_index()
    repo = unique_repository("errors")
    oversized = images.compact_json(
        {"schemaVersion": 2, "mediaType": images.OCI_MANIFEST, "padding": "a" * (4 * 1024 * 1024)}
    )
    only_blobs = Image(raw=b"", media_type="", blobs=tuple(index.all_blobs()))
    return {
        # Blobs of the manifest were never uploaded.
        "error.manifest_blob_unknown": (
            _bad_manifest_put(repo, "v1", image.raw, image.media_type),
            400,
            ["MANIFEST_BLOB_UNKNOWN"],
        ),
        # An index whose child manifests were never pushed (their blobs were).
        "error.index_child_unknown": (
            _bad_manifest_put(repo, "idx", index.raw, index.media_type, prepare=only_blobs),
            400,
            ["MANIFEST_BLOB_UNKNOWN"],
        ),
        # PUT by digest with a body that has another digest.
        "error.manifest_digest_mismatch": (
            _bad_manifest_put(repo, "sha256:" + "0" * 64, image.raw, image.media_type, image),
            400,
            ["DIGEST_INVALID"],
        ),
        "error.manifest_invalid_json": (
            _bad_manifest_put(repo, "v2", b"{not json", images.DOCKER_MANIFEST),
            400,
            ["MANIFEST_INVALID"],
        ),
        "error.manifest_content_type_mismatch": (
            _bad_manifest_put(repo, "v3", image.raw, "application/json", image),
            400,
            ["MANIFEST_INVALID"],
        ),
        "error.manifest_too_large": (
            _bad_manifest_put(repo, "big", oversized, images.OCI_MANIFEST),
            400,
            ["MANIFEST_INVALID"],
        ),
        # distribution's router does not match invalid names or tags: a plain-text 404.
        "error.name_invalid": (
            _bad_manifest_put("-bad/name", "v1", image.raw, image.media_type),
            404,
            None,
        ),
        "error.tag_invalid": (
            _bad_manifest_put(repo, "-bad-tag", image.raw, image.media_type, image),
            404,
            None,
        ),
        "error.blob_digest_mismatch": (_blob_digest_mismatch(repo), 400, ["DIGEST_INVALID"]),
        "error.manifest_unknown": (_get(f"/v2/{repo}/manifests/nope"), 404, ["MANIFEST_UNKNOWN"]),
        "error.repository_unknown_tags": (
            _get(f"/v2/{unique_repository('never')}/tags/list"),
            404,
            ["NAME_UNKNOWN"],
        ),
    }


def _blob_digest_mismatch(repository: str) -> Callable[[Target], Observation]:
    def scenario(target: Target) -> Observation:
        with target.session() as session:
            started = session.request("POST", f"/v2/{repository}/blobs/uploads/")
            location = session.upload_location(started)
            separator = "&" if "?" in location else "?"
            response = session.request(
                "PUT", f"{location}{separator}digest=sha256:{'3' * 64}", data=b"hello"
            )
            return observe(response, *ERROR_FIELDS)

    return scenario


def _get(path: str) -> Callable[[Target], Observation]:
    def scenario(target: Target) -> Observation:
        with target.session() as session:
            return observe(session.request("GET", path), *ERROR_FIELDS)

    return scenario


ERROR_CASES = _error_cases()


@pytest.mark.parametrize("step", list(ERROR_CASES))
def test_refused_requests(targets: dict[str, Target], step: str) -> None:
    scenario, status, codes = ERROR_CASES[step]
    reference = assert_same(step, run_everywhere(targets, scenario))
    assert reference["status"] == status
    assert reference["errors"] == codes


# ------------------------------------------------------------------------------------------
# Tags, deletion by tag, auth


def test_tags_list_order_and_page_size(targets: dict[str, Target]) -> None:
    image = images.oci_image()
    repository = unique_repository("tags")
    tags = ["b", "a", "c-1", "c"]

    def scenario(target: Target) -> dict[str, Observation]:
        with target.session() as session:
            for tag in tags:
                images.push_image(
                    target.endpoint, repository, image, tag, session=session, verify=True
                )
            return {
                "tags.list": observe_json(session.request("GET", f"/v2/{repository}/tags/list")),
                "tags.list_n": observe_json(
                    session.request("GET", f"/v2/{repository}/tags/list?n=2")
                ),
            }

    seen = run_everywhere(targets, scenario)
    listed = assert_same("tags.list", {name: s["tags.list"] for name, s in seen.items()})
    paged = assert_same("tags.list_n", {name: s["tags.list_n"] for name, s in seen.items()})
    assert listed == {
        "status": 200,
        "json": {"name": repository, "tags": sorted(tags)},
        "link": None,
    }
    # distribution 2.8 ignores `n` on tags/list (recorded in differences.py for the emulator).
    assert paged == listed


def test_delete_manifest_by_tag(targets: dict[str, Target]) -> None:
    image = images.docker_image()
    repository = unique_repository("delete-tag")

    def scenario(target: Target) -> dict[str, Observation]:
        with target.session() as session:
            images.push_image(
                target.endpoint, repository, image, "gone", session=session, verify=True
            )
            images.push_image(
                target.endpoint, repository, image, "kept", session=session, verify=True
            )
            delete = session.request("DELETE", f"/v2/{repository}/manifests/gone")
            return {
                "manifest.delete_by_tag": observe(delete, "status", "errors"),
                "manifest.get_deleted_tag": observe(
                    session.get_manifest(repository, "gone"), "status", "errors"
                ),
                "manifest.get_other_tag_after_tag_delete": observe(
                    session.get_manifest(repository, "kept"), "status", "digest"
                ),
            }

    seen = run_everywhere(targets, scenario)
    reference = {
        step: assert_same(step, {name: s[step] for name, s in seen.items()})
        for step in seen["distribution"]
    }
    # distribution refuses: a manifest can only be deleted by digest (see differences.py).
    assert reference["manifest.delete_by_tag"] == {"status": 400, "errors": ["DIGEST_INVALID"]}
    assert reference["manifest.get_deleted_tag"] == {"status": 200, "errors": None}
    assert reference["manifest.get_other_tag_after_tag_delete"]["digest"] == image.digest


def test_ping_without_credentials(targets: dict[str, Target]) -> None:
    def scenario(target: Target) -> Observation:
        response = requests.get(f"{target.endpoint}/v2/", verify=target.ca_bundle, timeout=10)
        observed = observe(response, "status", "api_version")
        observed["challenge"] = response.headers.get("WWW-Authenticate")
        return observed

    reference = assert_same("auth.ping_without_token", run_everywhere(targets, scenario))
    assert reference == {"status": 200, "api_version": "registry/2.0", "challenge": None}


def test_token_flow_is_used_only_where_challenged(targets: dict[str, Target]) -> None:
    image = images.oci_image()
    repository = unique_repository("auth")

    def scenario(target: Target) -> Observation:
        with target.session() as session:
            images.push_image(
                target.endpoint, repository, image, "v1", session=session, verify=True
            )
            fetched = session.get_manifest(repository, "v1")
            return {
                "status": fetched.status_code,
                "body": json.loads(fetched.content) == image.document,
                "token_requests": session.token_requests > 0,
            }

    reference = assert_same("auth.token_requests", run_everywhere(targets, scenario))
    assert reference == {"status": 200, "body": True, "token_requests": False}
