"""Challenges, scopes and anonymous access, as recorded against real ACR.

Each test replays one recorded exchange against the emulator over HTTPS and checks the status,
the headers and the body shape the recording shows (facts copied, no recorded code).
"""

from __future__ import annotations

import base64
import json

import requests

from emulator import Emulator
from tests.emulator.helpers import anonymous_token, push, raw, unique_repo
from tests.fidelity.conftest import writable
from tests.fidelity.facts import UNAUTHORIZED, challenge
from tests.support import images


def _detail(response: requests.Response) -> object:
    (error,) = response.json()["errors"]
    assert (error["code"], error["message"]) == ("UNAUTHORIZED", UNAUTHORIZED)
    return error["detail"]


def test_pull_without_token_is_challenged_for_pull(acr: Emulator) -> None:
    """Go SDK recording TestBlobClient_GetBlob.json (2022-12-14), azure-sdk-for-go
    sdk/containers/azcontainerregistry/testdata/recordings/: GET /v2/hello-world/blobs/<d>
    without Authorization -> 401, `WWW-Authenticate: Bearer realm="https://R/oauth2/token",
    service="R",scope="repository:hello-world:pull"` (no `error`), JSON body UNAUTHORIZED with
    detail [{"Type","Name","Action"}]."""
    repo = unique_repo("fact-pull")
    image = images.oci_image(seed=101)
    push(acr, repo, image, "v1")
    answer = raw(acr, "GET", f"/v2/{repo}/blobs/{image.blobs[-1].digest}")
    assert answer.status_code == 401
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert answer.headers["WWW-Authenticate"] == challenge(
        acr.login_server, f"repository:{repo}:pull"
    )
    assert _detail(answer) == [{"Type": "repository", "Name": repo, "Action": "pull"}]


def test_acr_v1_reads_are_challenged_for_metadata_read(acr: Emulator) -> None:
    """Go SDK recording TestClient_GetManifestProperties.json (2022-12-13): GET
    /acr/v1/hello-world/_manifests/<d> and /_tags/latest without a token -> 401 with
    scope="repository:hello-world:metadata_read" and detail Action "metadata_read"."""
    repo = unique_repo("fact-meta")
    image = images.oci_image(seed=102)
    push(acr, repo, image, "latest")
    for path in (f"/acr/v1/{repo}/_manifests/{image.digest}", f"/acr/v1/{repo}/_tags/latest"):
        answer = raw(acr, "GET", path)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == challenge(
            acr.login_server, f"repository:{repo}:metadata_read"
        )
        assert _detail(answer) == [{"Type": "repository", "Name": repo, "Action": "metadata_read"}]


def test_manifest_put_is_challenged_for_pull_and_push(acr: Emulator) -> None:
    """Go SDK recording TestClient_UploadManifest.json (2022-12-13): PUT
    /v2/hello-world/manifests/test without a token -> 401, scope="repository:hello-world:pull,push",
    detail has two entries (Action "pull", then "push"); with a token for that scope -> 201,
    empty body, `Docker-Content-Digest`, relative `Location: /v2/<repo>/manifests/<digest>`."""
    repo = unique_repo("fact-put")
    image = images.oci_image(seed=103)
    for blob in image.blobs:
        push_blob = raw(
            acr,
            "POST",
            f"/v2/{repo}/blobs/uploads/?digest={blob.digest}",
            scope=f"repository:{repo}:pull,push",
            data=blob.data,
        )
        assert push_blob.status_code == 201
    path = f"/v2/{repo}/manifests/test"
    headers = {"Content-Type": image.media_type}
    answer = raw(acr, "PUT", path, data=image.raw, headers=headers)
    assert answer.status_code == 401
    scope = f"repository:{repo}:pull,push"
    assert answer.headers["WWW-Authenticate"] == challenge(acr.login_server, scope)
    assert _detail(answer) == [
        {"Type": "repository", "Name": repo, "Action": "pull"},
        {"Type": "repository", "Name": repo, "Action": "push"},
    ]
    done = raw(acr, "PUT", path, data=image.raw, headers=headers, scope=scope)
    assert done.status_code == 201
    assert done.content == b""
    assert done.headers["Docker-Content-Digest"] == image.digest
    assert done.headers["Location"] == f"/v2/{repo}/manifests/{image.digest}"


def test_uploads_are_challenged_for_pull_and_push(acr: Emulator) -> None:
    """Go SDK recording TestBlobClient_StartUpload / UploadManifest (2022-12): writes on /v2
    challenge for `pull,push` (the same scope the manifest PUT asks for)."""
    repo = unique_repo("fact-upload")
    answer = raw(acr, "POST", f"/v2/{repo}/blobs/uploads/")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == challenge(
        acr.login_server, f"repository:{repo}:pull,push"
    )


def test_anonymous_catalog(anonymous_pull: Emulator) -> None:
    """Go SDK recording Test_authenticationPolicy_anonymousAccess.json (2022-12-09): GET
    /acr/v1/_catalog -> 401 scope="registry:catalog:*" (detail Type "registry", Name "catalog",
    Action "*"); POST /oauth2/token grant_type=password (no refresh token) -> 200
    {"access_token"}; the retry -> 200 {"repositories": [...]}."""
    acr = anonymous_pull
    first = raw(acr, "GET", "/acr/v1/_catalog")
    assert first.status_code == 401
    assert first.headers["WWW-Authenticate"] == challenge(acr.login_server, "registry:catalog:*")
    assert _detail(first) == [{"Type": "registry", "Name": "catalog", "Action": "*"}]
    token = requests.post(
        acr.endpoint + "/oauth2/token",
        data={
            "grant_type": "password",
            "refresh_token": "",
            "scope": "registry:catalog:*",
            "service": acr.login_server,
        },
        verify=acr.ca_bundle,
        timeout=10,
    )
    assert token.status_code == 200
    assert list(token.json()) == ["access_token"]
    listed = raw(acr, "GET", "/acr/v1/_catalog", token=token.json()["access_token"])
    assert listed.status_code == 200
    assert set(listed.json()) == {"repositories"}


def test_anonymous_write_is_insufficient_scope(anonymous_pull: Emulator) -> None:
    """Go SDK recording Test_authenticationPolicy_anonymousAccess.json (2022-12-09): PATCH
    /acr/v1/hello-world without a token -> 401 scope="repository:hello-world:metadata_write";
    the anonymous token request for that scope still answers 200; the PATCH retried with it ->
    401 again, now with `,error="insufficient_scope"`, same UNAUTHORIZED body."""
    acr = anonymous_pull
    repo = unique_repo("fact-anonwrite")
    with writable(acr):
        push(acr, repo, images.oci_image(seed=106), "v1")
    scope = f"repository:{repo}:metadata_write"
    first = raw(acr, "PATCH", f"/acr/v1/{repo}", json={"deleteEnabled": True})
    assert first.status_code == 401
    assert first.headers["WWW-Authenticate"] == challenge(acr.login_server, scope)
    token = anonymous_token(acr, scope)  # 200: anonymous tokens are issued, just empty
    again = raw(acr, "PATCH", f"/acr/v1/{repo}", json={"deleteEnabled": True}, token=token)
    assert again.status_code == 401
    assert again.headers["WWW-Authenticate"] == challenge(
        acr.login_server, scope, "insufficient_scope"
    )
    assert _detail(again) == [{"Type": "repository", "Name": repo, "Action": "metadata_write"}]


def test_anonymous_pull_lists_tags(anonymous_pull: Emulator) -> None:
    """Python SDK recording test_anon_access.test_list_tags.yaml (2021-05-05), azure-sdk-for-python
    sdk/containerregistry/azure-containerregistry/tests/recordings/: on a registry with anonymous
    pull, POST /oauth2/token grant_type=password scope=repository:<r>:metadata_read -> 200, and
    GET /acr/v1/<r>/_tags with that token -> 200 {"registry","imageName","tags":[...]}."""
    acr = anonymous_pull
    repo = unique_repo("fact-anontags")
    image = images.oci_image(seed=104)
    with writable(acr):
        push(acr, repo, image, "latest")
    token = anonymous_token(acr, f"repository:{repo}:metadata_read")
    listed = raw(acr, "GET", f"/acr/v1/{repo}/_tags", token=token)
    assert listed.status_code == 200
    assert set(listed.json()) == {"registry", "imageName", "tags"}
    assert [t["name"] for t in listed.json()["tags"]] == ["latest"]
    deleted = raw(acr, "DELETE", f"/acr/v1/{repo}/_tags/latest", scope=f"repository:{repo}:delete")
    assert deleted.status_code == 401  # anonymous delete: refused


def test_bad_token_is_invalid_token(acr: Emulator) -> None:
    """JS SDK recording browsers/repository_and_artifact_tests/
    recording_should_list_registry_manifests_by_pages.json (2021-05-28), azure-sdk-for-js
    sdk/containerregistry/container-registry/recordings/: a request whose token is not valid for
    the registry -> 401 with `...,scope="repository:library/hello-world:metadata_read",
    error="invalid_token"`."""
    repo = unique_repo("fact-badtoken")
    push(acr, repo, images.oci_image(seed=105), "v1")
    token = anonymous_token(acr, f"repository:{repo}:metadata_read")
    header, payload, _signature = token.split(".")
    for bad in (f"{header}.{payload}.AAAA", "garbage"):
        answer = raw(acr, "GET", f"/acr/v1/{repo}/_manifests", token=bad)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == challenge(
            acr.login_server, f"repository:{repo}:metadata_read", "invalid_token"
        )


def test_refresh_token_claims_use_acr_casing(acr: Emulator) -> None:
    """Go SDK recordings (e.g. TestClient_GetManifest_wrongTag.json, 2023-01-12): the refresh
    token from POST /oauth2/exchange decodes to claims jti, sub, nbf, exp, iat, iss "Azure
    Container Registry", aud = the login server, version "1.0", grant_type "refresh_token",
    permissions {"Actions": [...], "NotActions": null}, roles []. Access tokens are sanitized
    in every recording; their `access: [{"Type","Name","Actions"}]` casing is issue 13's claim
    (listed in ACR_DIFFERENCES as unknown)."""
    answer = requests.post(
        acr.endpoint + "/oauth2/exchange",
        data={"access_token": "aad", "grant_type": "access_token", "service": acr.login_server},
        verify=acr.ca_bundle,
        timeout=10,
    )
    assert answer.status_code == 200
    payload = answer.json()["refresh_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert {"jti", "sub", "nbf", "exp", "iat", "iss", "aud", "version", "grant_type"} <= set(claims)
    assert (claims["iss"], claims["aud"], claims["version"]) == (
        "Azure Container Registry",
        acr.login_server,
        "1.0",
    )
    assert claims["grant_type"] == "refresh_token"
    assert set(claims["permissions"]) == {"Actions", "NotActions"}
    assert claims["roles"] == []
    access = anonymous_token(acr, "repository:a/b:pull")
    body = access.split(".")[1]
    access_claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert access_claims["access"] == [{"Type": "repository", "Name": "a/b", "Actions": ["pull"]}]
