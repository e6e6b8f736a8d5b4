"""Wire-level behaviour: validation errors, headers, blobs/uploads, locks, listings, bad input."""

from __future__ import annotations

import io
import json
import socket
import ssl
from typing import Any
from urllib.parse import quote

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from emulator import Emulator
from tests.emulator.conftest import ClientFactory
from tests.emulator.helpers import push, raw, unique_repo
from tests.support import images

ALL = "pull,push,delete,metadata_read,metadata_write"


def _codes(response: requests.Response) -> list[str]:
    body = response.json()
    assert set(body) == {"errors"}
    for error in body["errors"]:
        assert {"code", "message"} <= set(error)  # ACR omits `detail` when it has none
    return [e["code"] for e in body["errors"]]


def _put(
    acr: Emulator, repo: str, ref: str, body: bytes, media_type: str | None
) -> requests.Response:
    headers = {"Content-Type": media_type} if media_type else {}
    return raw(
        acr,
        "PUT",
        f"/v2/{repo}/manifests/{ref}",
        scope=f"repository:{repo}:{ALL}",
        data=body,
        headers=headers,
    )


# -- manifests ------------------------------------------------------------------------------------
def test_manifest_headers_and_byte_exact_storage(acr: Emulator) -> None:
    repo = unique_repo("headers")
    for image in (
        images.docker_image(seed=1),
        images.oci_image(seed=2),
        images.oci_index(seed=3),
        images.docker_manifest_list(seed=4),
    ):
        for child in image.children:
            push(acr, repo, child)
        for blob in image.blobs:
            push_blob(acr, repo, blob.data)
        put = _put(acr, repo, "t", image.raw, image.media_type)
        assert put.status_code == 201
        assert put.headers["Location"] == f"/v2/{repo}/manifests/{image.digest}"
        assert put.headers["Docker-Content-Digest"] == image.digest
        assert put.content == b""
        for method in ("GET", "HEAD"):
            got = raw(acr, method, f"/v2/{repo}/manifests/t", scope=f"repository:{repo}:pull")
            assert got.status_code == 200
            assert got.headers["Content-Type"] == image.media_type
            assert got.headers["Docker-Content-Digest"] == image.digest
            assert got.headers["Content-Length"] == str(len(image.raw))
            assert got.content == (image.raw if method == "GET" else b"")
    log = [r for r in acr.requests() if r["method"] == "PUT" and r["path"].endswith("/manifests/t")]
    assert log[0]["previous_digest"] is None
    assert log[1]["tag"] == "t"
    assert log[1]["previous_digest"] == log[0]["digest"]


def push_blob(acr: Emulator, repo: str, data: bytes) -> str:
    digest = images.sha256_digest(data)
    answer = raw(
        acr,
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={digest}",
        scope=f"repository:{repo}:push",
        data=data,
    )
    assert answer.status_code == 201, answer.text
    return digest


def test_percent_encoded_paths(acr: Emulator) -> None:
    repo = unique_repo("pct")
    image = images.oci_image(seed=5)
    push(acr, repo, image, "v1")
    encoded = repo.replace("/", "%2F")
    digest = image.digest.replace(":", "%3A")
    answer = raw(acr, "GET", f"/v2/{encoded}/manifests/{digest}", scope=f"repository:{repo}:pull")
    assert answer.status_code == 200
    assert answer.content == image.raw
    tags = raw(acr, "GET", f"/acr/v1/{encoded}/_tags", scope=f"repository:{repo}:metadata_read")
    assert [t["name"] for t in tags.json()["tags"]] == ["v1"]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("missing_layer", 400, "MANIFEST_BLOB_UNKNOWN"),
        ("missing_child", 400, "MANIFEST_BLOB_UNKNOWN"),
        ("digest_mismatch", 400, "DIGEST_INVALID"),
        ("malformed_digest_ref", 400, "DIGEST_INVALID"),
        ("bad_descriptor_digest", 400, "DIGEST_INVALID"),
        ("not_json", 400, "MANIFEST_INVALID"),
        ("json_array", 400, "MANIFEST_INVALID"),
        ("schema_version_1", 400, "MANIFEST_INVALID"),
        ("no_layers", 400, "MANIFEST_INVALID"),
        ("content_type_mismatch", 400, "MANIFEST_INVALID"),
        ("content_type_missing", 400, "MANIFEST_INVALID"),
        ("content_type_unknown", 400, "MANIFEST_INVALID"),
        ("too_large", 400, "MANIFEST_INVALID"),
        ("bad_name", 400, "NAME_INVALID"),
        ("bad_tag", 400, "TAG_INVALID"),
    ],
)
def test_manifest_validation(acr: Emulator, case: str, status: int, code: str) -> None:
    repo = unique_repo("valid")
    image = images.oci_image(seed=6)
    index = images.oci_index(seed=7)
    for blob in image.blobs:
        push_blob(acr, repo, blob.data)
    doc = image.document
    body, media_type, ref = image.raw, image.media_type, "t"
    if case == "missing_layer":
        doc["layers"][0]["digest"] = "sha256:" + "1" * 64
        body = json.dumps(doc).encode()
    elif case == "missing_child":
        body, media_type = index.raw, index.media_type
    elif case == "digest_mismatch":
        ref = "sha256:" + "2" * 64
    elif case == "malformed_digest_ref":
        ref = "sha256:xyz"
    elif case == "bad_descriptor_digest":
        doc["config"]["digest"] = "sha256:short"
        body = json.dumps(doc).encode()
    elif case == "not_json":
        body = b"{not json"
    elif case == "json_array":
        body = b"[1, 2]"
    elif case == "schema_version_1":
        doc["schemaVersion"] = 3
        body = json.dumps(doc).encode()
    elif case == "no_layers":
        del doc["layers"]
        body = json.dumps(doc).encode()
    elif case == "content_type_mismatch":
        media_type = images.DOCKER_MANIFEST
    elif case == "content_type_missing":
        media_type = None
    elif case == "content_type_unknown":
        media_type = "application/json"
    elif case == "too_large":
        doc["annotations"] = {"filler": "x" * (4 * 1024 * 1024)}
        body = json.dumps(doc).encode()
    elif case == "bad_name":
        repo = "Bad_Name/-x"
    elif case == "bad_tag":
        ref = "-bad-tag"
    answer = _put(acr, repo, ref, body, media_type)
    assert answer.status_code == status
    assert set(_codes(answer)) == {code}
    if case == "missing_child":  # one entry per missing manifest, digest as detail
        details = [e["detail"] for e in answer.json()["errors"]]
        assert details == [c.digest for c in index.children]
    assert answer.headers["Content-Type"].startswith("application/json")


def test_delete_by_digest_removes_every_tag(acr: Emulator) -> None:
    repo = unique_repo("deltags")
    image = images.oci_image(seed=8)
    push(acr, repo, image, "a")
    assert _put(acr, repo, "b", image.raw, image.media_type).status_code == 201
    deleted = raw(
        acr, "DELETE", f"/v2/{repo}/manifests/{image.digest}", scope=f"repository:{repo}:delete"
    )
    assert deleted.status_code == 202
    for tag in ("a", "b"):
        assert (
            raw(
                acr, "GET", f"/v2/{repo}/manifests/{tag}", scope=f"repository:{repo}:pull"
            ).status_code
            == 404
        )
    by_tag = raw(acr, "DELETE", f"/v2/{repo}/manifests/a", scope=f"repository:{repo}:delete")
    assert by_tag.status_code == 405  # ACR: "A manifest can only be deleted by digest."
    assert _codes(by_tag) == ["UNSUPPORTED"]
    events = [e for e in acr.events() if e["data"]["target"]["repository"] == repo]
    assert events[-1]["eventType"] == "Microsoft.ContainerRegistry.ImageDeleted"
    assert events[-1]["data"]["target"]["digest"] == image.digest


# -- blobs and uploads ----------------------------------------------------------------------------
def test_blob_ranges(acr: Emulator) -> None:
    repo = unique_repo("range")
    data = bytes(range(256)) * 4
    digest = push_blob(acr, repo, data)
    token_scope = f"repository:{repo}:pull"
    whole = raw(acr, "GET", f"/v2/{repo}/blobs/{digest}", scope=token_scope)
    assert (whole.status_code, whole.content) == (200, data)
    # served by the storage listener after the registry's 307 (see tests/fidelity)
    assert [r.status_code for r in whole.history] == [307]
    assert whole.history[0].headers["Docker-Content-Digest"] == digest
    part = raw(
        acr,
        "GET",
        f"/v2/{repo}/blobs/{digest}",
        scope=token_scope,
        headers={"Range": "bytes=10-19"},
    )
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    beyond = raw(
        acr,
        "GET",
        f"/v2/{repo}/blobs/{digest}",
        scope=token_scope,
        headers={"Range": "bytes=1000-5000"},
    )
    assert (beyond.status_code, beyond.content) == (206, data[1000:])
    suffix = raw(
        acr, "GET", f"/v2/{repo}/blobs/{digest}", scope=token_scope, headers={"Range": "bytes=-4"}
    )
    assert (suffix.status_code, suffix.content) == (206, data[-4:])
    bad = raw(
        acr,
        "GET",
        f"/v2/{repo}/blobs/{digest}",
        scope=token_scope,
        headers={"Range": "bytes=5000-"},
    )
    assert bad.status_code == 416
    head = raw(acr, "HEAD", f"/v2/{repo}/blobs/{digest}", scope=token_scope)
    assert (head.status_code, head.headers["Content-Length"], head.content) == (
        200,
        str(len(data)),
        b"",
    )
    other = unique_repo("norange")
    missing = raw(acr, "GET", f"/v2/{other}/blobs/{digest}", scope=f"repository:{other}:pull")
    assert missing.status_code == 404  # blobs are per repository until mounted
    assert _codes(missing) == ["BLOB_UNKNOWN"]


def test_chunked_upload_status_cancel_and_mount(acr: Emulator) -> None:
    repo, other = unique_repo("chunks"), unique_repo("mount")
    data = b"abcdefghij" * 100
    digest = images.sha256_digest(data)
    scope = f"repository:{repo}:push,pull repository:{other}:push,pull"
    from tests.emulator.helpers import anonymous_token

    token = anonymous_token(acr, scope)
    start = raw(acr, "POST", f"/v2/{repo}/blobs/uploads/", token=token)
    assert start.status_code == 202
    location = start.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    first = raw(
        acr, "PATCH", location, token=token, data=data[:300], headers={"Content-Range": "0-299"}
    )
    assert (first.status_code, first.headers["Range"]) == (202, "0-299")
    wrong = raw(
        acr,
        "PATCH",
        first.headers["Location"],
        token=token,
        data=data[300:],
        headers={"Content-Range": "200-999"},
    )
    assert wrong.status_code == 416
    status = raw(acr, "GET", first.headers["Location"], token=token)
    assert (status.status_code, status.headers["Range"]) == (204, "0-299")
    # The closing PUT may carry the last chunk; out of order it is a 416 too and the session
    # stays (distribution-spec "Pushing a blob in chunks").
    late = raw(
        acr,
        "PUT",
        status.headers["Location"] + f"&digest={digest}",
        token=token,
        data=data[500:],
        headers={"Content-Range": "500-999"},
    )
    assert (late.status_code, late.headers["Range"]) == (416, "0-299")
    second = raw(acr, "PATCH", status.headers["Location"], token=token, data=data[300:])
    assert second.headers["Range"] == f"0-{len(data) - 1}"
    bad = raw(acr, "PUT", second.headers["Location"] + "&digest=sha256:" + "0" * 64, token=token)
    assert bad.status_code == 400
    assert _codes(bad) == ["DIGEST_INVALID"]
    done = raw(acr, "PUT", second.headers["Location"] + f"&digest={digest}", token=token)
    assert done.status_code == 201
    assert done.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    gone = raw(acr, "GET", second.headers["Location"], token=token)
    assert gone.status_code == 404
    assert _codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]

    cancelled = raw(acr, "POST", f"/v2/{repo}/blobs/uploads/", token=token)
    assert raw(acr, "DELETE", cancelled.headers["Location"], token=token).status_code == 204
    assert raw(acr, "GET", cancelled.headers["Location"], token=token).status_code == 404

    mounted = raw(
        acr, "POST", f"/v2/{other}/blobs/uploads/?mount={digest}&from={repo}", token=token
    )
    assert mounted.status_code == 201
    assert mounted.headers["Location"] == f"/v2/{other}/blobs/{digest}"
    assert raw(acr, "GET", f"/v2/{other}/blobs/{digest}", token=token).content == data
    unknown = raw(
        acr, "POST", f"/v2/{other}/blobs/uploads/?mount=sha256:{'9' * 64}&from={repo}", token=token
    )
    assert unknown.status_code == 202  # falls back to a normal upload, like distribution


# -- locks ----------------------------------------------------------------------------------------
def _disallowed(error: HttpResponseError) -> None:
    assert error.status_code == 405
    assert error.response is not None
    # (get_manifest streams its answer, so the SDK leaves `error.model` empty there)
    error.response.read()
    assert error.response.json()["errors"][0]["code"] == "REGISTRY_DISALLOWED_OPERATION"


def test_tag_locks(acr: Emulator, make_client: ClientFactory) -> None:
    client = make_client(None)
    repo = unique_repo("locks")
    first, second = images.oci_image(seed=10), images.oci_image(seed=11)
    push(acr, repo, first, "stable")
    push(acr, repo, second)

    client.update_tag_properties(repo, "stable", can_write=False)
    with pytest.raises(HttpResponseError) as moved:
        client.set_manifest(
            repo, io.BytesIO(second.raw), tag="stable", media_type=second.media_type
        )
    _disallowed(moved.value)
    with pytest.raises(HttpResponseError) as deleted:
        client.delete_tag(repo, "stable")
    _disallowed(deleted.value)
    with pytest.raises(HttpResponseError) as manifest_deleted:
        client.delete_manifest(repo, first.digest)
    _disallowed(manifest_deleted.value)
    assert client.get_tag_properties(repo, "stable").digest == first.digest

    client.update_tag_properties(repo, "stable", can_write=True, can_delete=False)
    with pytest.raises(HttpResponseError) as delete_locked:
        client.delete_tag(repo, "stable")
    _disallowed(delete_locked.value)
    # deleteEnabled=false alone still lets the tag move
    client.set_manifest(repo, io.BytesIO(second.raw), tag="stable", media_type=second.media_type)
    client.update_tag_properties(repo, "stable", can_delete=True)
    client.delete_tag(repo, "stable")


def test_manifest_lock_protects_its_tags(acr: Emulator, make_client: ClientFactory) -> None:
    client = make_client(None)
    repo = unique_repo("mlock")
    first, second = images.oci_image(seed=12), images.oci_image(seed=13)
    push(acr, repo, first, "a")
    push(acr, repo, second)
    client.update_manifest_properties(repo, first.digest, can_write=False)
    for action in (
        lambda: client.delete_tag(repo, "a"),
        lambda: client.delete_manifest(repo, first.digest),
        lambda: client.set_manifest(
            repo, io.BytesIO(second.raw), tag="a", media_type=second.media_type
        ),
    ):
        with pytest.raises(HttpResponseError) as refused:
            action()
        _disallowed(refused.value)
    # adding a new tag to a locked manifest does not change it: allowed
    client.set_manifest(repo, io.BytesIO(first.raw), tag="b", media_type=first.media_type)
    listed = {m.digest: m for m in client.list_manifest_properties(repo)}
    assert listed[first.digest].can_write is False
    assert sorted(listed[first.digest].tags) == ["a", "b"]
    client.update_manifest_properties(repo, first.digest, can_write=True, can_delete=False)
    with pytest.raises(HttpResponseError) as still:
        client.delete_manifest(repo, first.digest)
    _disallowed(still.value)
    client.update_manifest_properties(repo, first.digest, can_delete=True)
    client.delete_manifest(repo, first.digest)


def test_repository_locks_and_visibility(acr: Emulator, make_client: ClientFactory) -> None:
    client = make_client(None)
    repo = unique_repo("rlock")
    image = images.oci_image(seed=14)
    push(acr, repo, image, "a")
    client.update_repository_properties(repo, can_write=False)
    with pytest.raises(HttpResponseError) as push_refused:
        client.set_manifest(repo, io.BytesIO(image.raw), tag="b", media_type=image.media_type)
    _disallowed(push_refused.value)
    with pytest.raises(HttpResponseError) as repo_delete:
        client.delete_repository(repo)
    _disallowed(repo_delete.value)
    client.update_repository_properties(repo, can_write=True, can_list=False)
    assert repo not in set(client.list_repository_names())
    client.update_repository_properties(repo, can_list=True)
    client.update_tag_properties(repo, "a", can_list=False)
    assert list(client.list_tag_properties(repo)) == []
    client.update_tag_properties(repo, "a", can_list=True, can_read=False)
    with pytest.raises(HttpResponseError) as unreadable:
        client.get_manifest(repo, "a")
    _disallowed(unreadable.value)


def test_patch_validation(acr: Emulator) -> None:
    repo = unique_repo("patch")
    push(acr, repo, images.oci_image(seed=15), "a")
    scope = f"repository:{repo}:metadata_write"
    not_bool = raw(
        acr, "PATCH", f"/acr/v1/{repo}/_tags/a", scope=scope, json={"writeEnabled": "no"}
    )
    assert not_bool.status_code == 400
    not_json = raw(acr, "PATCH", f"/acr/v1/{repo}/_tags/a", scope=scope, data=b"{oops")
    assert not_json.status_code == 400
    missing = raw(
        acr, "PATCH", f"/acr/v1/{repo}/_tags/zzz", scope=scope, json={"writeEnabled": False}
    )
    assert missing.status_code == 404
    assert _codes(missing) == ["TAG_UNKNOWN"]


# -- listings -------------------------------------------------------------------------------------
def test_tag_listing_filters_order_and_links(acr: Emulator) -> None:
    repo = unique_repo("list")
    first, second = images.oci_image(seed=16), images.oci_image(seed=17)
    push(acr, repo, first, "x1")
    push(acr, repo, second, "y1")
    for tag in ("x2", "x3"):
        assert _put(acr, repo, tag, first.raw, first.media_type).status_code == 201
    scope = f"repository:{repo}:metadata_read"
    filtered = raw(acr, "GET", f"/acr/v1/{repo}/_tags?digest={first.digest}", scope=scope).json()
    assert [t["name"] for t in filtered["tags"]] == ["x1", "x2", "x3"]
    assert filtered["registry"] == acr.login_server
    assert filtered["imageName"] == repo
    tag = filtered["tags"][0]
    assert set(tag) == {
        "name",
        "digest",
        "createdTime",
        "lastUpdateTime",
        "signed",
        "changeableAttributes",
    }
    assert tag["changeableAttributes"] == {
        "deleteEnabled": True,
        "writeEnabled": True,
        "readEnabled": True,
        "listEnabled": True,
    }
    assert tag["createdTime"].endswith("Z")

    page = raw(acr, "GET", f"/acr/v1/{repo}/_tags?n=2&orderby=timedesc", scope=scope)
    assert [t["name"] for t in page.json()["tags"]] == ["x3", "x2"]
    assert (
        page.headers["Link"]
        == f'</acr/v1/{quote(repo, safe="")}/_tags?last=x2&n=2&orderby=timedesc>; rel="next"'
    )
    rest = raw(acr, "GET", f"/acr/v1/{repo}/_tags?last=x2&n=2&orderby=timedesc", scope=scope)
    assert [t["name"] for t in rest.json()["tags"]] == ["y1", "x1"]
    assert "Link" not in rest.headers
    by_name = raw(acr, "GET", f"/acr/v1/{repo}/_tags?last=x2", scope=scope)
    assert [t["name"] for t in by_name.json()["tags"]] == ["x3", "y1"]
    for query, code in (
        ("n=0", "PAGINATION_NUMBER_INVALID"),
        ("n=abc", "PAGINATION_NUMBER_INVALID"),
        ("orderby=sideways", "UNSUPPORTED"),
        ("digest=nope", "DIGEST_INVALID"),
    ):
        bad = raw(acr, "GET", f"/acr/v1/{repo}/_tags?{query}", scope=scope)
        assert bad.status_code == 400
        assert _codes(bad) == [code]
    v2 = raw(acr, "GET", f"/v2/{repo}/tags/list?n=3", scope=f"repository:{repo}:pull")
    assert v2.json() == {"name": repo, "tags": ["x1", "x2", "x3"]}
    assert v2.headers["Link"] == f'</v2/{repo}/tags/list?last=x3&n=3>; rel="next"'


def test_manifest_listing_details(acr: Emulator) -> None:
    repo = unique_repo("manifests")
    docker = images.docker_image(seed=18, architecture="arm64")
    index = images.docker_manifest_list(seed=19)
    subject = images.oci_image(seed=20)
    sbom = images.referrer(subject, seed=21)
    push(acr, repo, docker, "docker")
    push(acr, repo, index, "multi")
    push(acr, repo, sbom)
    scope = f"repository:{repo}:metadata_read,pull"
    listing = raw(acr, "GET", f"/acr/v1/{repo}/_manifests", scope=scope).json()
    entries: dict[str, dict[str, Any]] = {m["digest"]: m for m in listing["manifests"]}
    assert len(entries) == 6
    entry = entries[docker.digest]
    assert (entry["architecture"], entry["os"], entry["mediaType"]) == (
        "arm64",
        "linux",
        images.DOCKER_MANIFEST,
    )
    assert entry["tags"] == ["docker"]
    assert entry["imageSize"] == docker.size + sum(b.size for b in docker.blobs)
    assert entry["configMediaType"] == images.DOCKER_CONFIG
    top = entries[index.digest]
    assert top["mediaType"] == images.DOCKER_MANIFEST_LIST
    assert "architecture" not in top
    assert "references" not in top  # like ACR: only the single-manifest GET lists them
    single = raw(acr, "GET", f"/acr/v1/{repo}/_manifests/{index.digest}", scope=scope).json()
    assert single["manifest"]["references"] == [
        {"digest": c.digest, "architecture": c.platform[1], "os": c.platform[0]}
        for c in index.children
        if c.platform
    ]
    assert entries[sbom.digest]["subject"] == subject.digest
    assert entries[sbom.digest]["artifactType"] == "application/vnd.example.sbom.v1+json"
    assert "subject" not in entries[subject.digest]
    assert "tags" not in entries[subject.digest]
    # distribution-spec 1.1 "Pushing Manifests with Subject": the PUT answers OCI-Subject.
    again = raw(
        acr,
        "PUT",
        f"/v2/{repo}/manifests/sbom",
        scope=f"repository:{repo}:pull,push",
        data=sbom.raw,
        headers={"Content-Type": sbom.media_type},
    )
    assert again.status_code == 201
    assert again.headers["OCI-Subject"] == subject.digest
    plain = raw(
        acr,
        "PUT",
        f"/v2/{repo}/manifests/docker",
        scope=f"repository:{repo}:pull,push",
        data=docker.raw,
        headers={"Content-Type": docker.media_type},
    )
    assert plain.status_code == 201
    assert "OCI-Subject" not in plain.headers
    answer = raw(acr, "GET", f"/v2/{repo}/referrers/{subject.digest}", scope=scope)
    # OCI distribution-spec 1.1 "Listing Referrers": an image index, served as one.
    assert answer.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert "OCI-Filters-Applied" not in answer.headers
    assert [m["digest"] for m in answer.json()["manifests"]] == [sbom.digest]
    sbom_type = "application/vnd.example.sbom.v1+json"
    filtered = raw(
        acr,
        "GET",
        f"/v2/{repo}/referrers/{subject.digest}",
        scope=scope,
        params={"artifactType": sbom_type},
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom.digest]
    single = raw(acr, "GET", f"/acr/v1/{repo}/_manifests/{index.digest}", scope=scope).json()
    assert {k: v for k, v in single["manifest"].items() if k != "references"} == top
    assert single["imageName"] == repo


# -- bad input ------------------------------------------------------------------------------------
def _tls_exchange(acr: Emulator, payload: bytes) -> bytes:
    context = ssl.create_default_context(cafile=acr.ca_bundle)
    host, port = acr.login_server.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            tls.sendall(payload)
            chunks = []
            while True:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x01garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"BREW /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PUT /v2/a/manifests/b HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"PUT /v2/a/manifests/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    ],
)
def test_malformed_http_gets_json_errors_and_server_keeps_serving(
    acr: Emulator, payload: bytes
) -> None:
    answer = _tls_exchange(acr, payload)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert 400 <= status < 600
    assert b"Traceback" not in answer
    assert json.loads(body)["errors"][0]["code"]
    assert raw(acr, "GET", "/v2/").status_code == 401  # still serving


def test_unknown_endpoints_and_methods(acr: Emulator) -> None:
    missing = raw(acr, "GET", "/nothing/here")
    assert missing.status_code == 404
    assert _codes(missing) == ["NOT_FOUND"]
    wrong = raw(acr, "POST", "/v2/some/repo/manifests/x")
    assert wrong.status_code == 405
    assert "PUT" in wrong.headers["Allow"]


def test_plain_tcp_and_silent_clients_do_not_block(acr: Emulator) -> None:
    host, port = acr.login_server.split(":")
    idle = socket.create_connection((host, int(port)), timeout=5)  # never says anything
    plain = socket.create_connection((host, int(port)), timeout=5)
    plain.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")  # http on the https port
    try:
        assert raw(acr, "GET", "/v2/").status_code == 401
    finally:
        idle.close()
        plain.close()


def test_chunked_transfer_encoding_bodies(acr: Emulator) -> None:
    """Go clients (skopeo) stream uploads with Transfer-Encoding: chunked."""
    repo = unique_repo("te")
    data = bytes(range(256)) * 64
    digest = images.sha256_digest(data)
    scope = f"repository:{repo}:push,pull"
    start = raw(acr, "POST", f"/v2/{repo}/blobs/uploads/", scope=scope)

    def pieces() -> Any:
        for offset in range(0, len(data), 1000):
            yield data[offset : offset + 1000]

    patched = raw(acr, "PATCH", start.headers["Location"], scope=scope, data=pieces())
    assert patched.status_code == 202
    assert patched.headers["Range"] == f"0-{len(data) - 1}"
    done = raw(acr, "PUT", patched.headers["Location"] + f"&digest={digest}", scope=scope)
    assert done.status_code == 201
    assert raw(acr, "GET", f"/v2/{repo}/blobs/{digest}", scope=scope).content == data
