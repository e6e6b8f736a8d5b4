"""Errors, manifests, Accept negotiation and listings, as recorded against real ACR."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

import requests

from emulator import Emulator
from tests.emulator.conftest import ClientFactory
from tests.emulator.helpers import push, raw, unique_repo
from tests.support import images

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def _errors(response: requests.Response) -> list[dict[str, object]]:
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert set(body) == {"errors"}
    errors: list[dict[str, object]] = body["errors"]
    return errors


def test_manifest_unknown_by_tag(acr: Emulator) -> None:
    """Go SDK recording TestClient_GetManifest_wrongTag.json (2023-01-12): GET
    /v2/hello-world/manifests/wrong-tag (Accept application/json + Docker v2) -> 404
    {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest tagged by \\"wrong-tag\\" is not
    found","detail":{"Tag":"wrong-tag"}}]}."""
    repo = unique_repo("fact-wrongtag")
    push(acr, repo, images.docker_image(seed=110), "v1")
    answer = raw(acr, "GET", f"/v2/{repo}/manifests/wrong-tag", scope=f"repository:{repo}:pull")
    assert answer.status_code == 404
    assert _errors(answer) == [
        {
            "code": "MANIFEST_UNKNOWN",
            "message": 'manifest tagged by "wrong-tag" is not found',
            "detail": {"Tag": "wrong-tag"},
        }
    ]


def test_tag_unknown(acr: Emulator) -> None:
    """Go SDK recording TestClient_GetTagProperties_wrongTag.json (2023-01-12): GET
    /acr/v1/hello-world/_tags/wrong-tag -> 404 {"errors":[{"code":"TAG_UNKNOWN","message":"the
    specified tag does not exist"}]} (no detail)."""
    repo = unique_repo("fact-tagunknown")
    push(acr, repo, images.oci_image(seed=111), "v1")
    answer = raw(
        acr, "GET", f"/acr/v1/{repo}/_tags/wrong-tag", scope=f"repository:{repo}:metadata_read"
    )
    assert answer.status_code == 404
    assert _errors(answer) == [
        {"code": "TAG_UNKNOWN", "message": "the specified tag does not exist"}
    ]


def test_name_unknown(acr: Emulator) -> None:
    """Go SDK recordings TestClient_GetRepositoryProperties_wrongName.json and
    TestClient_NewListTagsPager_wrongRepositoryName.json (2023-01-12): GET /acr/v1/wrong-name and
    /acr/v1/wrong-name/_tags -> 404 {"errors":[{"code":"NAME_UNKNOWN","message":"repository
    \\"wrong-name\\" is not found"}]}."""
    scope = "repository:wrong-name:metadata_read"
    for path in ("/acr/v1/wrong-name", "/acr/v1/wrong-name/_tags"):
        answer = raw(acr, "GET", path, scope=scope)
        assert answer.status_code == 404
        assert _errors(answer) == [
            {"code": "NAME_UNKNOWN", "message": 'repository "wrong-name" is not found'}
        ]


def test_delete_manifest_by_tag_is_unsupported(acr: Emulator) -> None:
    """Go SDK recording TestClient_DeleteManifest_wrongDigest.json (2023-01-12): DELETE
    /v2/hello-world/manifests/error-digest -> 401 scope="repository:hello-world:delete", then
    with the token -> 405 {"errors":[{"code":"UNSUPPORTED","message":"A manifest can only be
    deleted by digest."}]}; nothing is deleted."""
    repo = unique_repo("fact-deltag")
    image = images.oci_image(seed=112)
    push(acr, repo, image, "error-digest")
    path = f"/v2/{repo}/manifests/error-digest"
    first = raw(acr, "DELETE", path)
    assert first.status_code == 401
    assert f'scope="repository:{repo}:delete"' in first.headers["WWW-Authenticate"]
    answer = raw(acr, "DELETE", path, scope=f"repository:{repo}:delete")
    assert answer.status_code == 405
    assert _errors(answer) == [
        {"code": "UNSUPPORTED", "message": "A manifest can only be deleted by digest."}
    ]
    assert acr.tag_digest(repo, "error-digest") == image.digest


def test_malformed_acr_v1_path_is_plain_404_before_auth(acr: Emulator) -> None:
    """Go SDK recording TestClient_GetManifestProperties_wrongDigest.json (2023-01-12): GET
    /acr/v1/hello-world/_manifests/wrong-digest, no token -> 404 at once (no challenge),
    `Content-Type: text/plain; charset=utf-8`, `Content-Length: 19`,
    body "404 page not found\\n"."""
    repo = unique_repo("fact-wrongdigest")
    push(acr, repo, images.oci_image(seed=113), "v1")
    answer = raw(acr, "GET", f"/acr/v1/{repo}/_manifests/wrong-digest")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.headers["Content-Length"] == "19"
    assert answer.content == b"404 page not found\n"
    assert "WWW-Authenticate" not in answer.headers


def test_docker_manifest_get_headers(acr: Emulator) -> None:
    """Go SDK recording TestClient_UploadManifest.json (2022-12-13): GET
    /v2/hello-world/manifests/latest with Accept [application/json, Docker v2] -> 200,
    Content-Type Docker v2, Docker-Content-Digest, ETag "\\"<digest>\\"", Content-Length = bytes."""
    repo = unique_repo("fact-getdocker")
    image = images.docker_image(seed=114)
    push(acr, repo, image, "latest")
    answer = raw(
        acr,
        "GET",
        f"/v2/{repo}/manifests/latest",
        scope=f"repository:{repo}:pull",
        headers={"Accept": f"application/json, {DOCKER_V2}"},
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == DOCKER_V2
    assert answer.headers["Docker-Content-Digest"] == image.digest
    assert answer.headers["ETag"] == f'"{image.digest}"'
    assert answer.headers["Content-Length"] == str(len(image.raw))
    assert answer.content == image.raw


def test_oci_manifest_needs_oci_accept(acr: Emulator) -> None:
    """Azure/acr pull request 764 (2024-06-24, Token-BasicAuth.md): without
    `Accept: application/vnd.oci.image.manifest.v1+json` ACR answers
    {"errors":[{"code":"MANIFEST_UNKNOWN","message":"OCI manifest found, but accept header does
    not support OCI manifests"}]} (404). Also with no Accept at all and with `*/*` alone
    (distribution's rule, see ACR_DIFFERENCES accept.wildcard_does_not_admit_oci)."""
    repo = unique_repo("fact-ociaccept")
    image = images.oci_image(seed=115)
    push(acr, repo, image, "v1")
    token_scope = f"repository:{repo}:pull"
    for accept in (DOCKER_V2, "", "*/*"):
        for method in ("GET", "HEAD"):
            answer = raw(
                acr,
                method,
                f"/v2/{repo}/manifests/v1",
                scope=token_scope,
                headers={"Accept": accept},
            )
            assert answer.status_code == 404, (accept, method)
            if method == "GET":
                assert _errors(answer) == [
                    {
                        "code": "MANIFEST_UNKNOWN",
                        "message": "OCI manifest found, but accept header does not support OCI "
                        "manifests",
                    }
                ]
    ok = raw(
        acr,
        "GET",
        f"/v2/{repo}/manifests/v1",
        scope=token_scope,
        headers={"Accept": f"{DOCKER_V2}, {images.OCI_MANIFEST}"},
    )
    assert (ok.status_code, ok.content) == (200, image.raw)


def test_oci_index_needs_oci_index_accept(acr: Emulator) -> None:
    """Azure/acr-cli pull request 132 (2023-02-05): an Accept without the OCI index type gets
    {"errors":[{"code":"MANIFEST_UNKNOWN","message":"OCI index found, but accept header does not
    support OCI indexes"}]}; acr-cli fixed it by listing every OCI and Docker type."""
    repo = unique_repo("fact-indexaccept")
    index = images.oci_index(seed=116)
    push(acr, repo, index, "multi")
    path = f"/v2/{repo}/manifests/multi"
    refused = raw(
        acr,
        "GET",
        path,
        scope=f"repository:{repo}:pull",
        headers={"Accept": f"{DOCKER_V2}, {images.OCI_MANIFEST}"},
    )
    assert refused.status_code == 404
    assert _errors(refused) == [
        {
            "code": "MANIFEST_UNKNOWN",
            "message": "OCI index found, but accept header does not support OCI indexes",
        }
    ]
    fine = raw(acr, "GET", path, scope=f"repository:{repo}:pull")  # every type (helpers)
    assert fine.status_code == 200


def test_python_sdk_accept_list_admits_every_type(
    acr: Emulator, make_client: ClientFactory
) -> None:
    """azure-containerregistry 1.2 (installed) sends Accept `*/*` plus the OCI and Docker
    manifest and index types (`SUPPORTED_MANIFEST_MEDIA_TYPES`), the list its maintainers agreed
    with the service team (Azure/azure-sdk-for-python pull request 29552, 2023-03-24):
    get_manifest works for every stored type."""
    client = make_client()
    repo = unique_repo("fact-sdkaccept")
    for tag, image in (
        ("oci", images.oci_image(seed=117)),
        ("index", images.oci_index(seed=118)),
        ("docker", images.docker_image(seed=119)),
        ("list", images.docker_manifest_list(seed=120)),
    ):
        push(acr, repo, image, tag)
        assert client.get_manifest(repo, tag).digest == image.digest


def test_manifest_properties_shape(acr: Emulator) -> None:
    """Go SDK recording TestClient_GetManifestProperties.json (2022-12-13): GET
    /acr/v1/<r>/_manifests/<d> -> 200 {"registry","imageName","manifest":{"digest","imageSize",
    "createdTime","lastUpdateTime","architecture","os","mediaType","configMediaType","tags",
    "changeableAttributes":{"deleteEnabled","writeEnabled","readEnabled","listEnabled"}}}; the
    tag: {"registry","imageName","tag":{"name","digest","createdTime","lastUpdateTime","signed",
    "changeableAttributes"}}."""
    repo = unique_repo("fact-props")
    image = images.docker_image(seed=121)
    push(acr, repo, image, "latest")
    scope = f"repository:{repo}:metadata_read"
    manifest = raw(acr, "GET", f"/acr/v1/{repo}/_manifests/{image.digest}", scope=scope).json()
    assert list(manifest) == ["registry", "imageName", "manifest"]
    assert list(manifest["manifest"]) == [
        "digest",
        "imageSize",
        "createdTime",
        "lastUpdateTime",
        "architecture",
        "os",
        "mediaType",
        "configMediaType",
        "tags",
        "changeableAttributes",
    ]
    assert list(manifest["manifest"]["changeableAttributes"]) == [
        "deleteEnabled",
        "writeEnabled",
        "readEnabled",
        "listEnabled",
    ]
    tag = raw(acr, "GET", f"/acr/v1/{repo}/_tags/latest", scope=scope).json()
    assert list(tag) == ["registry", "imageName", "tag"]
    assert list(tag["tag"]) == [
        "name",
        "digest",
        "createdTime",
        "lastUpdateTime",
        "signed",
        "changeableAttributes",
    ]


def test_listing_has_no_references_single_get_has(acr: Emulator) -> None:
    """JS SDK recording browsers/repository_and_artifact_tests/
    recording_should_list_registry_manifests.json (2021-09-20): in GET
    /acr/v1/library%2Fhello-world/_manifests a manifest list entry has digest, imageSize,
    createdTime, lastUpdateTime, mediaType, tags (when tagged), changeableAttributes; no
    architecture, no os and no references (image entries have architecture and os). The
    single-manifest GET is where references live (design.md section 4; ACR REST API 2021-07-01
    ManifestAttributes.references)."""
    repo = unique_repo("fact-norefs")
    index = images.docker_manifest_list(seed=122)
    push(acr, repo, index, "latest")
    scope = f"repository:{repo}:metadata_read"
    listing = raw(acr, "GET", f"/acr/v1/{repo}/_manifests", scope=scope).json()["manifests"]
    entries = {m["digest"]: m for m in listing}
    top = entries[index.digest]
    assert set(top) == {
        "digest",
        "imageSize",
        "createdTime",
        "lastUpdateTime",
        "mediaType",
        "tags",
        "changeableAttributes",
    }
    for child in index.children:
        assert {"architecture", "os"} <= set(entries[child.digest])
        assert "references" not in entries[child.digest]
    single = raw(acr, "GET", f"/acr/v1/{repo}/_manifests/{index.digest}", scope=scope).json()
    assert {r["digest"] for r in single["manifest"]["references"]} == {
        c.digest for c in index.children
    }


def test_link_percent_encodes_the_repository(acr: Emulator) -> None:
    """JS SDK recording browsers/repository_and_artifact_tests/
    recording_should_list_registry_manifests_by_pages.json (2021-05-28): GET
    /acr/v1/library%2Fhello-world/_manifests?n=1 -> `Link:
    </acr/v1/library%2Fhello-world/_manifests?last=sha256%3A<hex>&n=1&orderby=>; rel="next"`.
    The JS tests page tags with the same form
    (`/acr/v1/library%2Fhello-world/_tags?last=test-delete&n=1&orderby=`)."""
    repo = unique_repo("fact-link")
    for seed, tag in ((123, "a"), (124, "b")):
        push(acr, repo, images.oci_image(seed=seed), tag)
    scope = f"repository:{repo}:metadata_read"
    encoded = quote(repo, safe="")
    page = raw(acr, "GET", f"/acr/v1/{encoded}/_manifests?n=1", scope=scope)
    (first,) = page.json()["manifests"]
    last = quote(first["digest"], safe="")
    assert page.headers["Link"] == (
        f'</acr/v1/{encoded}/_manifests?last={last}&n=1&orderby=>; rel="next"'
    )
    tags = raw(acr, "GET", f"/acr/v1/{encoded}/_tags?n=1", scope=scope)
    assert tags.headers["Link"] == f'</acr/v1/{encoded}/_tags?last=a&n=1&orderby=>; rel="next"'


def test_acr_v1_timestamps_trim_trailing_zeros(acr: Emulator) -> None:
    """JS SDK recording browsers/repository_and_artifact_tests/
    recording_should_list_registry_manifests.json (2021-09-20): createdTime values such as
    "2021-07-12T19:20:00.913255Z" and "2021-06-01T17:44:41.177556Z" next to
    "2021-06-11T19:19:17.6685388Z": 7 fractional digits with trailing zeros trimmed."""
    repo = unique_repo("fact-times")
    acr.set_clock(datetime(2031, 7, 12, 19, 20, 0, 913255, tzinfo=UTC))
    push(acr, repo, images.oci_image(seed=125), "v1")
    scope = f"repository:{repo}:metadata_read"
    created = raw(acr, "GET", f"/acr/v1/{repo}/_tags/v1", scope=scope).json()["tag"]["createdTime"]
    assert re.fullmatch(r"2031-07-12T19:20:\d\d(\.\d{1,7})?Z", created), created
    assert not created.endswith("0Z")
