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
from pathlib import Path

import pytest
import requests

from emulator import Emulator
from tests.differential.differences import KNOWN_EMULATOR_BUGS
from tests.differential.harness import (
    Observation,
    Target,
    assert_same,
    error_codes,
    observe,
    observe_json,
    run_everywhere,
    unique_repository,
)
from tests.support import images
from tests.support.distribution import start_distribution
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
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
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
                seen[
                    f"manifest.get_child:{child.platform[0]}/{child.platform[1]}"
                    if child.platform
                    else "manifest.get_child"
                ] = observe(session.get_manifest(repository, child.digest), *MANIFEST_FIELDS)
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
    for child in image.children:
        assert child.platform is not None
        child_get = reference[f"manifest.get_child:{child.platform[0]}/{child.platform[1]}"]
        assert child_get["body_sha256"] == sha(child.raw)
        assert child_get["content_type"] == child.media_type
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


@pytest.mark.parametrize("kind", ["docker-v2", "oci-manifest"])
def test_get_manifest_without_accept_header(targets: dict[str, Target], kind: str) -> None:
    image = KINDS[kind]()
    repository = unique_repository("no-accept")

    def scenario(target: Target) -> Observation:
        with target.session() as session:
            images.push_image(
                target.endpoint, repository, image, "v1", session=session, verify=True
            )
            response = session.request("GET", f"/v2/{repository}/manifests/v1")
            return {
                "status": response.status_code,
                "content_type": response.headers.get("Content-Type"),
                "same_bytes": response.content == image.raw,
                "same_digest": response.headers.get("Docker-Content-Digest") == image.digest,
                "errors": error_codes(response) if response.status_code >= 400 else None,
            }

    step = (
        "manifest.get_docker_without_accept"
        if kind == "docker-v2"
        else "manifest.get_oci_without_accept"
    )
    reference = assert_same(step, run_everywhere(targets, scenario))
    if kind == "docker-v2":  # converted to schema 1
        assert reference["status"] == 200
        assert not reference["same_bytes"]
    else:  # refused
        assert reference["status"] == 404
        assert reference["errors"] == ["MANIFEST_UNKNOWN"]


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
            single = images.random_layer(random.Random(), 100)[0]
            monolithic = session.request(
                "POST",
                f"/v2/{source}/blobs/uploads/?digest={single.digest}",
                data=single.data,
                headers={"Content-Type": "application/octet-stream"},
            )
            seen["upload.monolithic_post"] = {
                "status": monolithic.status_code,
                "completed": monolithic.headers.get("Docker-Content-Digest") == single.digest,
            }
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
    assert reference["upload.monolithic_post"] == {"status": 202, "completed": False}


# ------------------------------------------------------------------------------------------
# Refused uploads: the registry's error codes


def _bad_manifest_put(
    repository: str,
    reference: str,
    body: bytes,
    media_type: str | None,
    prepare: Image | None = None,
) -> Callable[[Target], Observation]:
    """PUT `body` as a manifest (media_type None: no Content-Type header at all)."""

    def scenario(target: Target) -> Observation:
        with target.session() as session:
            if prepare is not None:
                push_parts(session, repository, prepare)
            headers = {"Content-Type": media_type} if media_type else {}
            response = session.request(
                "PUT", f"/v2/{repository}/manifests/{reference}", data=body, headers=headers
            )
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
    schema_v3 = images.compact_json({"schemaVersion": 3, "mediaType": images.OCI_MANIFEST})
    schema_v1 = images.compact_json(
        {"schemaVersion": 1, "name": repo, "tag": "v5", "fsLayers": [], "history": []}
    )
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
        "error.name_uppercase": (
            _bad_manifest_put("upper/Case", "v1", image.raw, image.media_type),
            404,
            None,
        ),
        "error.tag_too_long": (
            _bad_manifest_put(repo, "t" * 129, image.raw, image.media_type, image),
            404,
            None,
        ),
        "error.manifest_schema_version_3": (
            _bad_manifest_put(repo, "v4", schema_v3, images.OCI_MANIFEST),
            500,
            ["UNKNOWN"],
        ),
        "error.manifest_schema1": (
            _bad_manifest_put(repo, "v5", schema_v1, SCHEMA1),
            400,
            ["MANIFEST_INVALID"],
        ),
        "error.manifest_json_array": (
            _bad_manifest_put(repo, "v6", b"[]", images.OCI_MANIFEST),
            400,
            ["MANIFEST_INVALID"],
        ),
        "error.manifest_empty_body": (
            _bad_manifest_put(repo, "v7", b"", images.OCI_MANIFEST),
            400,
            ["MANIFEST_INVALID"],
        ),
        # A Docker manifest sent with the OCI Content-Type.
        "error.manifest_wrong_content_type": (
            _bad_manifest_put(repo, "v8", image.raw, images.OCI_MANIFEST, image),
            400,
            ["MANIFEST_INVALID"],
        ),
        "error.manifest_no_content_type": (
            _bad_manifest_put(repo, "v9", image.raw, None, image),
            400,
            ["MANIFEST_INVALID"],
        ),
        "error.blob_digest_mismatch": (_blob_digest_mismatch(repo), 400, ["DIGEST_INVALID"]),
        "error.upload_cancelled": (_cancelled_upload(repo), 404, ["BLOB_UPLOAD_UNKNOWN"]),
        "error.manifest_digest_malformed": (
            _get(f"/v2/{repo}/manifests/sha256:xyz"),
            500,
            ["UNKNOWN"],
        ),
        "error.delete_unknown_manifest": (
            _request("DELETE", f"/v2/{repo}/manifests/sha256:{'4' * 64}"),
            404,
            ["MANIFEST_UNKNOWN"],
        ),
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


def _cancelled_upload(repository: str) -> Callable[[Target], Observation]:
    def scenario(target: Target) -> Observation:
        with target.session() as session:
            started = session.request("POST", f"/v2/{repository}/blobs/uploads/")
            location = session.upload_location(started)
            cancelled = session.request("DELETE", location)
            assert cancelled.status_code == 204, cancelled.text
            return observe(session.request("GET", location), *ERROR_FIELDS)

    return scenario


def _request(method: str, path: str) -> Callable[[Target], Observation]:
    def scenario(target: Target) -> Observation:
        with target.session() as session:
            return observe(session.request(method, path), *ERROR_FIELDS)

    return scenario


def _get(path: str) -> Callable[[Target], Observation]:
    return _request("GET", path)


ERROR_CASES = _error_cases()


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(
            step,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_EMULATOR_BUGS[step])]
            if step in KNOWN_EMULATOR_BUGS
            else [],
        )
        for step in ERROR_CASES
    ],
)
def test_refused_requests(targets: dict[str, Target], step: str) -> None:
    scenario, status, codes = ERROR_CASES[step]
    reference = assert_same(step, run_everywhere(targets, scenario))
    assert reference["status"] == status
    assert reference["errors"] == codes


def test_every_missing_blob_is_reported(targets: dict[str, Target]) -> None:
    image = images.docker_image(layers=2)
    repository = unique_repository("missing-blobs")

    def scenario(target: Target) -> Observation:
        with target.session() as session:
            response = session.put_manifest(repository, "v1", image.raw, image.media_type)
            entries = response.json()["errors"]
            return {
                "status": response.status_code,
                "entries": sorted((entry["code"], str(entry.get("detail"))) for entry in entries),
            }

    reference = assert_same(
        "error.manifest_blob_unknown_details", run_everywhere(targets, scenario)
    )
    assert reference == {
        "status": 400,
        "entries": sorted(("MANIFEST_BLOB_UNKNOWN", blob.digest) for blob in image.blobs),
    }


# ------------------------------------------------------------------------------------------
# Tags, deletion by tag, auth


def test_tags_list_order_and_paging(targets: dict[str, Target]) -> None:
    image = images.oci_image()
    repository = unique_repository("tags")
    tags = ["b", "a", "c-1", "c"]

    def scenario(target: Target) -> dict[str, Observation]:
        with target.session() as session:
            for tag in tags:
                images.push_image(
                    target.endpoint, repository, image, tag, session=session, verify=True
                )
            path = f"/v2/{repository}/tags/list"
            return {
                "tags.list": observe_json(session.request("GET", path), repository),
                "tags.list_n": observe_json(session.request("GET", f"{path}?n=2"), repository),
                "tags.list_last": observe_json(
                    session.request("GET", f"{path}?last=b"), repository
                ),
            }

    seen = run_everywhere(targets, scenario)
    reference = {
        step: assert_same(step, {name: s[step] for name, s in seen.items()})
        for step in seen["distribution"]
    }
    listed = {"status": 200, "json": {"name": "<repo>", "tags": sorted(tags)}, "link": None}
    assert reference["tags.list"] == listed
    # distribution 2.8 ignores `n` and `last` (the emulator's paging is in differences.py).
    assert reference["tags.list_n"] == listed
    assert reference["tags.list_last"] == listed


def test_delete_by_tag(targets: dict[str, Target]) -> None:
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
            acr_delete = session.request("DELETE", f"/acr/v1/{repository}/_tags/gone")
            return {
                "manifest.delete_by_tag": observe(delete, "status", "errors"),
                "acr.delete_tag": observe(acr_delete, "status"),
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
    # /v2 deletes manifests by digest only, on both (ACR documents the same rule).
    assert reference["manifest.delete_by_tag"] == {"status": 400, "errors": ["DIGEST_INVALID"]}
    # Deleting a single tag is ACR's /acr/v1 API, which distribution lacks (differences.py).
    assert reference["acr.delete_tag"] == {"status": 404}
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


def test_index_children_and_blobs_are_deleted_independently(targets: dict[str, Target]) -> None:
    """Deleting a child keeps its index; deleting a blob in one repository keeps it in another."""
    index = images.oci_index()
    first, second = index.children
    repository = unique_repository("idx-delete")
    other = unique_repository("idx-other")
    shared_blob = second.blobs[0]

    def scenario(target: Target) -> dict[str, Observation]:
        seen: dict[str, Observation] = {}
        with target.session() as session:
            for repo in (repository, other):
                images.push_image(target.endpoint, repo, index, "v1", session=session, verify=True)
            delete = session.request("DELETE", f"/v2/{repository}/manifests/{first.digest}")
            seen["index.delete_child"] = observe(delete, "status")
            seen["index.get_after_child_delete"] = observe(
                session.get_manifest(repository, "v1"), "status", "digest", "body_sha256"
            )
            delete = session.request("DELETE", f"/v2/{repository}/manifests/{index.digest}")
            seen["index.delete_index"] = observe(delete, "status")
            seen["index.get_other_child_after_index_delete"] = observe(
                session.get_manifest(repository, second.digest), "status", "digest"
            )
            seen["index.tags_after_index_delete"] = observe_json(
                session.request("GET", f"/v2/{repository}/tags/list"), repository
            )
            blob_path = f"blobs/{shared_blob.digest}"
            delete = session.request("DELETE", f"/v2/{repository}/{blob_path}")
            seen["blob.delete"] = observe(delete, "status")
            seen["blob.head_after_delete"] = observe(
                session.request("HEAD", f"/v2/{repository}/{blob_path}"), "status"
            )
            seen["blob.head_other_repository"] = observe(
                session.request("HEAD", f"/v2/{other}/{blob_path}"), "status", "digest"
            )
            seen["blob.head_never_linked"] = observe(
                session.request("HEAD", f"/v2/{unique_repository('zzz')}/{blob_path}"), "status"
            )
        return seen

    seen = run_everywhere(targets, scenario)
    reference = {
        step: assert_same(step, {name: s[step] for name, s in seen.items()})
        for step in seen["distribution"]
    }
    assert reference["index.delete_child"] == {"status": 202}
    assert reference["index.get_after_child_delete"] == {
        "status": 200,
        "digest": index.digest,
        "body_sha256": sha(index.raw),
    }
    assert reference["index.delete_index"] == {"status": 202}
    assert reference["index.get_other_child_after_index_delete"]["status"] == 200
    assert reference["index.tags_after_index_delete"] == {
        "status": 200,
        "json": {"name": "<repo>", "tags": None},
        "link": None,
    }
    assert reference["blob.delete"] == {"status": 202}
    assert reference["blob.head_after_delete"] == {"status": 404}
    assert reference["blob.head_other_repository"] == {"status": 200, "digest": shared_blob.digest}
    assert reference["blob.head_never_linked"] == {"status": 404}


def test_catalog_paging_on_fresh_registries(tmp_path: Path) -> None:
    """_catalog needs fresh registries (the session ones hold every test's repositories)."""
    image = images.oci_image()
    with (
        start_distribution(tmp_path / "distribution") as distribution,
        Emulator(anonymous=True) as acr,
    ):
        targets = {
            "distribution": Target(
                "distribution",
                distribution.endpoint,
                distribution.login_server,
                distribution.ca_bundle,
                "",
            ),
            "emulator": Target("emulator", acr.endpoint, acr.login_server, acr.ca_bundle, ""),
        }

        def scenario(target: Target) -> dict[str, Observation]:
            with target.session() as session:
                for repository in ("b/one", "a/two", "c"):
                    images.push_image(
                        target.endpoint, repository, image, "v1", session=session, verify=True
                    )
                first = session.request("GET", "/v2/_catalog?n=2")
                next_page = first.headers.get("Link", "").partition(">")[0].lstrip("<")
                return {
                    "catalog.all": observe_json(session.request("GET", "/v2/_catalog")),
                    "catalog.first_page": observe_json(first),
                    "catalog.next_page": observe_json(session.request("GET", next_page)),
                }

        seen = run_everywhere(targets, scenario)
    reference = {
        step: assert_same(step, {name: s[step] for name, s in seen.items()})
        for step in seen["distribution"]
    }
    assert reference["catalog.all"]["json"] == {"repositories": ["a/two", "b/one", "c"]}
    assert reference["catalog.first_page"] == {
        "status": 200,
        "json": {"repositories": ["a/two", "b/one"]},
        "link": '</v2/_catalog?last=b%2Fone&n=2>; rel="next"',
    }
    assert reference["catalog.next_page"] == {
        "status": 200,
        "json": {"repositories": ["c"]},
        "link": None,
    }
