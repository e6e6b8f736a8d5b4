"""ACR-style auth: challenges, token exchange, JWT shape, scope enforcement, anonymous mode."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError

from emulator import Emulator
from tests.emulator.conftest import ClientFactory
from tests.emulator.helpers import StaticTokenCredential, anonymous_token, push, raw, unique_repo
from tests.support import images


def _claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    assert len(parts) == 3
    for part in parts:
        assert set(part) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert header["alg"] == "HS256"
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    )
    return claims


@pytest.fixture(scope="module")
def pushed(acr: Emulator) -> tuple[str, images.Image]:
    repo = unique_repo("auth")
    image = images.oci_image(seed=21)
    push(acr, repo, image, "v1")
    return repo, image


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v2/{repo}/manifests/v1", "repository:{repo}:pull"),
        ("HEAD", "/v2/{repo}/manifests/v1", "repository:{repo}:pull"),
        ("PUT", "/v2/{repo}/manifests/v2", "repository:{repo}:pull,push"),
        ("DELETE", "/v2/{repo}/manifests/{digest}", "repository:{repo}:delete"),
        ("GET", "/v2/{repo}/tags/list", "repository:{repo}:pull"),
        ("POST", "/v2/{repo}/blobs/uploads/", "repository:{repo}:pull,push"),
        ("GET", "/v2/{repo}/blobs/{digest}", "repository:{repo}:pull"),
        ("DELETE", "/v2/{repo}/blobs/{digest}", "repository:{repo}:delete"),
        ("GET", "/acr/v1/{repo}", "repository:{repo}:metadata_read"),
        ("PATCH", "/acr/v1/{repo}", "repository:{repo}:metadata_write"),
        ("DELETE", "/acr/v1/{repo}", "repository:{repo}:delete"),
        ("GET", "/acr/v1/{repo}/_tags", "repository:{repo}:metadata_read"),
        ("GET", "/acr/v1/{repo}/_tags/v1", "repository:{repo}:metadata_read"),
        ("PATCH", "/acr/v1/{repo}/_tags/v1", "repository:{repo}:metadata_write"),
        ("DELETE", "/acr/v1/{repo}/_tags/v1", "repository:{repo}:delete"),
        ("GET", "/acr/v1/{repo}/_manifests", "repository:{repo}:metadata_read"),
        ("GET", "/acr/v1/{repo}/_manifests/{digest}", "repository:{repo}:metadata_read"),
        ("PATCH", "/acr/v1/{repo}/_manifests/{digest}", "repository:{repo}:metadata_write"),
        ("GET", "/acr/v1/_catalog", "registry:catalog:*"),
        ("GET", "/v2/_catalog", "registry:catalog:*"),
    ],
)
def test_challenge_names_the_exact_scope(acr: Emulator, method: str, path: str, scope: str) -> None:
    repo = unique_repo("challenge")
    image = images.oci_image(seed=20)
    push(acr, repo, image, "v1")
    wanted = scope.format(repo=repo)
    response = raw(acr, method, path.format(repo=repo, digest=image.digest))
    assert response.status_code == 401
    host = acr.login_server
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{host}/oauth2/token",service="{host}",scope="{wanted}"'
    )
    if method != "HEAD":
        error = response.json()["errors"][0]
        assert error["code"] == "UNAUTHORIZED"
        kind, name, actions = wanted.split(":")
        assert error["detail"] == [
            {"Type": kind, "Name": name, "Action": action} for action in actions.split(",")
        ]
    # the same request with a token for exactly that scope is no longer refused for auth
    assert (
        raw(acr, method, path.format(repo=repo, digest=image.digest), scope=wanted).status_code
        != 401
    )


def test_ping_challenge_has_no_scope(acr: Emulator) -> None:
    response = raw(acr, "GET", "/v2/")
    assert response.status_code == 401
    host = acr.login_server
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{host}/oauth2/token",service="{host}"'
    )
    token = anonymous_token(acr, "repository:any:pull")
    assert raw(acr, "GET", "/v2/", token=token).status_code == 200


def test_tokens_of_one_scope_do_not_authorise_another(
    acr: Emulator, pushed: tuple[str, images.Image]
) -> None:
    repo, image = pushed
    other = unique_repo("other")
    push(acr, other, images.oci_image(seed=22), "v1")
    pull_token = anonymous_token(acr, f"repository:{repo}:pull")
    assert raw(acr, "GET", f"/v2/{repo}/manifests/v1", token=pull_token).status_code == 200
    assert raw(acr, "GET", f"/v2/{other}/manifests/v1", token=pull_token).status_code == 401
    assert raw(acr, "GET", f"/acr/v1/{repo}/_tags", token=pull_token).status_code == 401
    assert raw(acr, "DELETE", f"/acr/v1/{repo}/_tags/v1", token=pull_token).status_code == 401
    assert (
        raw(
            acr,
            "PUT",
            f"/v2/{repo}/manifests/x",
            token=pull_token,
            data=image.raw,
            headers={"Content-Type": image.media_type},
        ).status_code
        == 401
    )
    assert raw(acr, "GET", "/acr/v1/_catalog", token=pull_token).status_code == 401
    both = anonymous_token(acr, f"repository:{repo}:pull,metadata_read repository:{other}:pull")
    assert raw(acr, "GET", f"/acr/v1/{repo}/_tags", token=both).status_code == 200
    assert raw(acr, "GET", f"/v2/{other}/manifests/v1", token=both).status_code == 200


def test_tampered_and_foreign_tokens_are_refused(
    acr: Emulator, pushed: tuple[str, images.Image]
) -> None:
    repo, _ = pushed
    token = anonymous_token(acr, f"repository:{repo}:pull")
    header, _payload, signature = token.split(".")
    claims = _claims(token)
    claims["access"][0]["Name"] = "something/else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (f"{header}.{forged_payload}.{signature}", "not-a-token", token + "x", ""):
        assert raw(acr, "GET", f"/v2/{repo}/manifests/v1", token=bad).status_code == 401
    with Emulator() as other:  # a token from another emulator (other secret) is not valid here
        foreign = anonymous_token(other, f"repository:{repo}:pull")
    assert raw(acr, "GET", f"/v2/{repo}/manifests/v1", token=foreign).status_code == 401


def test_tokens_are_jwt_shaped_with_acr_lifetimes(acr: Emulator) -> None:
    refresh = requests.post(
        acr.endpoint + "/oauth2/exchange",
        data={"grant_type": "access_token", "service": acr.login_server, "access_token": "aad"},
        verify=acr.ca_bundle,
        timeout=10,
    )
    assert refresh.status_code == 200
    assert list(refresh.json()) == ["refresh_token"]
    refresh_claims = _claims(refresh.json()["refresh_token"])
    assert refresh_claims["grant_type"] == "refresh_token"
    assert refresh_claims["exp"] - refresh_claims["iat"] == 3 * 3600
    assert abs(refresh_claims["iat"] - time.time()) < 60

    access = requests.post(
        acr.endpoint + "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": acr.login_server,
            "scope": "repository:a/b:pull,push",
            "refresh_token": refresh.json()["refresh_token"],
        },
        verify=acr.ca_bundle,
        timeout=10,
    )
    assert access.status_code == 200
    assert list(access.json()) == ["access_token"]
    claims = _claims(access.json()["access_token"])
    assert claims["exp"] - claims["iat"] == 75 * 60
    # ACR's claim casing
    assert claims["access"] == [{"Type": "repository", "Name": "a/b", "Actions": ["pull", "push"]}]
    assert claims["aud"] == acr.login_server


@pytest.mark.parametrize(
    ("endpoint", "form", "status"),
    [
        ("exchange", {"grant_type": "access_token", "service": "x", "access_token": ""}, 401),
        ("exchange", {"grant_type": "bogus", "service": "x", "access_token": "t"}, 400),
        (
            "token",
            {"grant_type": "refresh_token", "scope": "repository:a:pull", "refresh_token": "nope"},
            401,
        ),
        ("token", {"grant_type": "password", "scope": "repository:a:pull repo:::"}, 400),
        ("token", {"grant_type": "magic", "scope": "repository:a:pull"}, 400),
    ],
)
def test_bad_token_requests_get_registry_errors(
    acr: Emulator, endpoint: str, form: dict[str, str], status: int
) -> None:
    response = requests.post(
        f"{acr.endpoint}/oauth2/{endpoint}", data=form, verify=acr.ca_bundle, timeout=10
    )
    assert response.status_code == status
    assert response.json()["errors"][0]["code"] in {"UNAUTHORIZED", "UNSUPPORTED"}


def test_docker_token_protocol_get(acr: Emulator, pushed: tuple[str, images.Image]) -> None:
    repo, _ = pushed
    answer = requests.get(
        f"{acr.endpoint}/oauth2/token",
        params={"service": acr.login_server, "scope": f"repository:{repo}:pull"},
        verify=acr.ca_bundle,
        timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token"] == body["access_token"]
    assert raw(acr, "GET", f"/v2/{repo}/manifests/v1", token=body["token"]).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_repeated_scope_parameters_are_all_granted(acr: Emulator, method: str) -> None:
    """Docker token spec ("Requesting a Token"): `scope` may be repeated; docker and
    go-containerregistry send one per repository for a cross-repository mount."""
    source, target = unique_repo("scope-from"), unique_repo("scope-to")
    pairs = [
        ("service", acr.login_server),
        ("scope", f"repository:{target}:push,pull"),
        ("scope", f"repository:{source}:pull"),
    ]
    if method == "GET":
        answer = requests.get(
            f"{acr.endpoint}/oauth2/token", params=pairs, verify=acr.ca_bundle, timeout=10
        )
    else:
        answer = requests.post(
            f"{acr.endpoint}/oauth2/token",
            data=[("grant_type", "password"), *pairs],
            verify=acr.ca_bundle,
            timeout=10,
        )
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    # one token, authorised for both (the claim layout is not what this checks)
    assert raw(acr, "POST", f"/v2/{target}/blobs/uploads/", token=token).status_code == 202
    assert raw(acr, "GET", f"/v2/{source}/tags/list", token=token).status_code != 401
    assert raw(acr, "POST", f"/v2/{source}/blobs/uploads/", token=token).status_code == 401


@pytest.fixture(scope="module")
def private_acr() -> Iterator[Emulator]:
    with Emulator(anonymous=False) as emulator:
        yield emulator


def test_no_anonymous_refuses_anonymous_tokens(
    private_acr: Emulator, make_client: ClientFactory
) -> None:
    answer = requests.post(
        private_acr.endpoint + "/oauth2/token",
        data={
            "grant_type": "password",
            "service": private_acr.login_server,
            "scope": "repository:a:pull",
        },
        verify=private_acr.ca_bundle,
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
    anonymous = make_client(None, emulator=private_acr)
    with pytest.raises(ClientAuthenticationError):
        list(anonymous.list_repository_names())

    with_credential = make_client(StaticTokenCredential(), emulator=private_acr)
    assert list(with_credential.list_repository_names()) == []
    repo = unique_repo("private")
    with pytest.raises(requests.HTTPError) as refused:  # raw anonymous push is refused too
        push(private_acr, repo, images.oci_image(seed=1), "v1")
    assert refused.value.response.status_code == 401


def test_basic_auth_with_refresh_token_when_anonymous_is_off(private_acr: Emulator) -> None:
    refresh = requests.post(
        private_acr.endpoint + "/oauth2/exchange",
        data={
            "grant_type": "access_token",
            "service": private_acr.login_server,
            "access_token": "aad",
        },
        verify=private_acr.ca_bundle,
        timeout=10,
    ).json()["refresh_token"]
    repo = unique_repo("basic")
    image = images.oci_image(seed=31)
    images.push_image(
        private_acr.endpoint,
        repo,
        image,
        "v1",
        verify=private_acr.ca_bundle,
        auth=("00000000-0000-0000-0000-000000000000", refresh),
    )
    assert private_acr.tag_digest(repo, "v1") == image.digest


def test_no_token_ever_reaches_the_request_log(acr: Emulator, make_client: ClientFactory) -> None:
    repo = unique_repo("secret")
    push(acr, repo, images.oci_image(seed=41), "v1")
    client = make_client(StaticTokenCredential("aad-super-secret"))
    client.get_manifest(repo, "v1")
    list(client.list_tag_properties(repo))
    requests.get(
        f"{acr.endpoint}/oauth2/token",
        params={
            "service": acr.login_server,
            "scope": f"repository:{repo}:pull",
            "refresh_token": acr.issued_tokens()[0],
        },
        verify=acr.ca_bundle,
        timeout=10,
    )
    log = json.dumps(acr.requests())
    tokens = acr.issued_tokens()
    assert len(tokens) > 3
    for token in tokens:
        assert token not in log
        for part in token.split("."):
            assert part not in log or len(part) < 20
    assert "aad-super-secret" not in log


def test_anonymous_actions_can_be_restricted(make_client: ClientFactory) -> None:
    with pytest.raises(ValueError, match="unknown anonymous action"):
        Emulator(anonymous_actions=["fly"])
    with Emulator(anonymous_actions=("pull", "metadata_read")) as pull_only:
        token = anonymous_token(pull_only, "repository:a/b:pull,push,delete")
        assert _claims(token)["access"] == [
            {"Type": "repository", "Name": "a/b", "Actions": ["pull"]}
        ]
        with pytest.raises(images.PushError) as refused:  # the token lacks push: 401 again
            push(pull_only, "a/b", images.oci_image(seed=50), "v1")
        assert refused.value.response.status_code == 401
        client = make_client(None, emulator=pull_only)
        with pytest.raises(ClientAuthenticationError):
            client.delete_tag("a/b", "v1")
