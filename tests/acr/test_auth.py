"""`retag.acr.auth`: JWT expiry, Bearer challenges, scopes, and the token cache at work (issue 3:
exactly 2 requests per re-tag).

Counts are taken twice: by this thread's `tally_requests()` (every HTTP request the adapter sends,
token calls included) and by the emulator's own request log. Challenge shapes follow ACR's
(`Bearer realm=...,service=...,scope=...`, `error="insufficient_scope"`; design.md §4, from the
azure-sdk-for-python `sdk/containerregistry/azure-containerregistry/tests/recordings/`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from retag.acr.auth import (
    classify_request,
    jwt_expiry,
    jwt_lifetime,
    parse_bearer_challenge,
)
from retag.acr.client import AcrRegistry
from retag.registry import PermissionDeniedError, tally_requests
from tests.acr.conftest import b64url, clear, jwt, logged, summary
from tests.support import images
from tests.support.clock import FakeClock
from tests.support.credentials import FailingCredential, StaticTokenCredential


def retag(registry: AcrRegistry, repo: str, digest: str, tag: str) -> None:
    manifest = registry.get_manifest(repo, digest)
    assert registry.put_manifest(repo, manifest, tag) == digest


def paths(entries: list[dict[str, object]]) -> Counter[str]:
    return Counter(f"{e['method']} {e['path']}" for e in entries)


@pytest.fixture
def private_acr() -> Iterator[Emulator]:
    """A registry without anonymous access: only Microsoft Entra (AAD) identities get tokens."""
    with Emulator(anonymous=False) as emulator:
        yield emulator


def test_steady_state_retag_is_exactly_two_requests_anonymous(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    image = images.docker_image(seed=1)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    clear(acr)

    with tally_requests() as cold_tally:
        # Cold: ONE token for the repository, asked up front (no 401): pull, push, metadata_read.
        retag(registry, repo, image.digest, "warm")
    cold = summary(logged(acr, 3))
    assert cold_tally.count == 3
    assert [(m, p.rsplit("/", 1)[-1], s) for m, p, s in cold] == [
        ("POST", "token", 200),
        ("GET", image.digest, 200),
        ("PUT", "warm", 201),
    ]
    (token_request,) = [r for r in acr.requests() if r["path"] == "/oauth2/token"]
    assert token_request.get("scope", f"repository:{repo}:pull,push,metadata_read") == (
        f"repository:{repo}:pull,push,metadata_read"
    )

    clear(acr)
    with tally_requests() as steady:
        for i in range(100):
            retag(registry, repo, image.digest, f"t{i}")
    entries = logged(acr, 200)
    assert steady.count == 200
    assert len(entries) == 200
    assert paths(entries) == Counter(
        {f"GET /v2/{repo}/manifests/{image.digest}": 100}
        | {f"PUT /v2/{repo}/manifests/t{i}": 1 for i in range(100)}
    )
    assert {e["status"] for e in entries} == {200, 201}


def test_steady_state_retag_is_exactly_two_requests_with_a_credential(
    private_acr: Emulator, repo: str
) -> None:
    acr = private_acr
    credential = StaticTokenCredential()
    registry = AcrRegistry(acr.login_server, credential=credential, ca_bundle=acr.ca_bundle)
    registry.push_image(repo, "latest", b"{}", [b"layer"])
    digest = registry.get_manifest(repo, "latest").digest
    clear(acr)

    # push_image and the GET above cached the push and pull tokens: no further token call
    with tally_requests() as warm:
        retag(registry, repo, digest, "warm")
    assert [(e["method"], e["status"]) for e in logged(acr, 2)] == [("GET", 200), ("PUT", 201)]
    assert warm.count == 2

    clear(acr)
    with tally_requests() as steady:
        for i in range(100):
            retag(registry, repo, digest, f"t{i}")
    entries = logged(acr, 200)
    assert steady.count == 200
    assert len(entries) == 200
    assert not any(e["path"].startswith("/oauth2/") for e in entries)
    assert credential.calls == [("https://containerregistry.azure.net/.default",)]
    registry.close()


def test_credential_cold_start_exchanges_once_then_one_token_per_repository(
    private_acr: Emulator, repo: str
) -> None:
    acr = private_acr
    credential = StaticTokenCredential()
    seeder = AcrRegistry(
        acr.login_server, credential=StaticTokenCredential(), ca_bundle=acr.ca_bundle
    )
    digest = seeder.push_image(repo, "latest", b"{}", [b"layer"])
    seeder.close()
    clear(acr)

    registry = AcrRegistry(
        acr.login_server,
        credential=credential,
        ca_bundle=acr.ca_bundle,
        audience="https://management.azure.com",
    )
    with tally_requests() as cold:
        retag(registry, repo, digest, "cold")
    # A cold re-tag (a new Functions instance, the pipeline CLI): the AAD exchange, ONE access
    # token for the repository (pull,push,metadata_read), the GET and the PUT; no 401 (issue 12:
    # <= 5 requests; 7 with a token per scope and a challenge each, 9 before the token cache).
    entries = logged(acr, 4)
    assert [(m, p.rsplit("/", 1)[-1], s) for m, p, s in summary(entries)] == [
        ("POST", "exchange", 200),
        ("POST", "token", 200),
        ("GET", digest, 200),
        ("PUT", "cold", 201),
    ]
    assert cold.count == 4
    assert credential.calls == [("https://management.azure.com/.default",)]
    registry.close()


def test_sdk_alone_pays_the_challenge_on_every_call(acr: Emulator, repo: str) -> None:
    """The baseline our cache removes: the bare SDK re-runs the 401 challenge per operation."""
    image = images.oci_image(seed=2)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    client = ContainerRegistryClient(acr.endpoint, None, connection_verify=acr.ca_bundle)
    client.get_manifest(repo, image.digest)
    clear(acr)
    for _ in range(5):
        client.get_manifest(repo, image.digest)
    entries = logged(acr, 15)
    assert len(entries) == 15  # 401 + token + GET, every time
    client.close()


def test_expired_access_token_is_renewed_before_use(acr: Emulator, repo: str) -> None:
    clock = FakeClock()
    registry = AcrRegistry(
        acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, clock=clock
    )
    image = images.oci_image(seed=3)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry.get_manifest(repo, image.digest)
    issued = len(acr.issued_tokens())

    clock.advance(60 * 60)  # 60 min: ACR tokens live 75 min; still reused
    clear(acr)
    registry.get_manifest(repo, image.digest)
    assert len(logged(acr, 1)) == 1
    assert len(acr.issued_tokens()) == issued

    clock.advance(16 * 60)  # 76 min: past exp (and the 5 min margin): fetched up front, no 401
    clear(acr)
    registry.get_manifest(repo, image.digest)
    assert [(m, s) for m, _, s in summary(logged(acr, 2))] == [("POST", 200), ("GET", 200)]
    assert len(acr.issued_tokens()) == issued + 1

    clear(acr)
    registry.get_manifest(repo, image.digest)  # and the new one is cached again
    assert len(logged(acr, 1)) == 1
    registry.close()


def test_expired_refresh_token_is_exchanged_again(private_acr: Emulator, repo: str) -> None:
    acr = private_acr
    clock = FakeClock()
    credential = StaticTokenCredential()
    registry = AcrRegistry(
        acr.login_server, credential=credential, ca_bundle=acr.ca_bundle, clock=clock
    )
    digest = registry.push_image(repo, "latest", b"{}", [b"layer"])
    registry.get_manifest(repo, digest)
    assert len(credential.calls) == 1

    clock.advance(80 * 60)  # access token expired, refresh token (3 h) still good
    clear(acr)
    registry.get_manifest(repo, digest)
    assert paths(logged(acr, 2))["POST /oauth2/exchange"] == 0
    assert len(credential.calls) == 1

    clock.advance(3 * 60 * 60)  # both expired: new AAD token, exchange, access token, GET
    clear(acr)
    registry.get_manifest(repo, digest)
    entries = logged(acr, 3)
    assert [e["path"] for e in entries] == [
        "/oauth2/exchange",
        "/oauth2/token",
        f"/v2/{repo}/manifests/{digest}",
    ]
    assert len(credential.calls) == 2
    registry.close()


def test_scope_changes_fetch_new_tokens(acr: Emulator, registry: AcrRegistry) -> None:
    image = images.oci_image(seed=4)
    for repo in ("one/app", "two/app"):
        images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry.get_manifest("one/app", image.digest)
    registry.get_tag("one/app", "latest")

    clear(acr)
    registry.get_manifest("two/app", image.digest)  # another repository: another token, up front
    assert [(e["path"], e["status"]) for e in logged(acr, 2)] == [
        ("/oauth2/token", 200),
        (f"/v2/two/app/manifests/{image.digest}", 200),
    ]

    clear(acr)
    registry.delete_tag("one/app", "latest")  # delete: a wider token for one/app
    assert [e["status"] for e in logged(acr, 2)] == [200, 202]

    clear(acr)
    registry.get_manifest("one/app", image.digest)  # the pull token of one/app is still cached
    registry.get_manifest("two/app", image.digest)
    assert [e["status"] for e in logged(acr, 2)] == [200, 200]


def test_head_and_get_share_the_token_of_one_scope(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    image = images.oci_image(seed=5)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry.get_tag(repo, "latest")  # learns repository:<repo>:metadata_read
    clear(acr)
    # Listing is another kind of request with the same scope: the cached token is used at once.
    assert [t.name for t in registry.list_tags(repo)] == ["latest"]
    assert [m.digest for m in registry.list_manifests(repo)] == [image.digest]
    assert [e["status"] for e in logged(acr, 2)] == [200, 200]


def test_restarted_registry_rejects_cached_tokens_and_one_new_challenge_fixes_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "registry"
    image = images.oci_image(seed=6)
    with Emulator(data_dir=data) as first:
        port = int(first.login_server.rsplit(":", 1)[1])
        registry = AcrRegistry(
            first.login_server, credential="anonymous", ca_bundle=first.ca_bundle
        )
        images.push_image(first.endpoint, "app", image, "latest", verify=first.ca_bundle)
        registry.get_manifest("app", image.digest)
    # Same address, same content, new signing key: the cached token is now invalid.
    with Emulator(data_dir=data, port=port) as second:
        registry.get_manifest("app", image.digest)
        assert [(e["path"].split("/")[-1], e["status"]) for e in logged(second, 3)] == [
            (image.digest, 401),
            ("token", 200),
            (image.digest, 200),
        ]
    registry.close()


def test_missing_permission_fails_once_without_looping(repo: str) -> None:
    with Emulator(anonymous_actions={"pull", "metadata_read"}) as acr:
        pusher = AcrRegistry(
            acr.login_server, credential=StaticTokenCredential(), ca_bundle=acr.ca_bundle
        )
        pusher.push_image(repo, "latest", b"{}", [b"x"])
        pusher.close()
        registry = AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle)
        manifest = registry.get_manifest(repo, "latest")
        clear(acr)
        with pytest.raises(PermissionDeniedError, match="AcrPush") as caught:
            registry.put_manifest(repo, manifest, "new")
        assert f"repository:{repo}:pull,push" in str(caught.value)  # ACR challenges pull,push
        # PUT (401), token, PUT with the fresh (but empty) token (401), then give up: no retries
        assert [(e["method"], e["status"]) for e in logged(acr, 3)] == [
            ("PUT", 401),
            ("POST", 200),
            ("PUT", 401),
        ]
        assert acr.tag_digest(repo, "new") is None
        registry.close()


def test_anonymous_access_disabled_names_the_role(private_acr: Emulator, repo: str) -> None:
    registry = AcrRegistry(
        private_acr.login_server, credential="anonymous", ca_bundle=private_acr.ca_bundle
    )
    with pytest.raises(PermissionDeniedError, match="AcrPull") as caught:
        registry.get_manifest(repo, "latest")
    assert "refused" in str(caught.value)
    with pytest.raises(PermissionDeniedError, match="AcrDelete"):
        registry.delete_tag(repo, "latest")
    registry.close()


def test_identity_without_token_is_permission_denied(private_acr: Emulator, repo: str) -> None:
    registry = AcrRegistry(
        private_acr.login_server, credential=FailingCredential(), ca_bundle=private_acr.ca_bundle
    )
    with pytest.raises(PermissionDeniedError, match="Microsoft Entra"):
        registry.get_tag(repo, "latest")
    registry.close()


def test_tokens_never_reach_logs_or_error_messages(
    private_acr: Emulator,
    repo: str,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    from retag.logline import quiet_sdk_logging

    acr = private_acr
    quiet_sdk_logging("debug")  # RETAG_SDK_LOG_LEVEL=debug: the SDK logs every request
    request.addfinalizer(quiet_sdk_logging)
    caplog.set_level(logging.DEBUG)
    credential = StaticTokenCredential()
    registry = AcrRegistry(acr.login_server, credential=credential, ca_bundle=acr.ca_bundle)
    digest = registry.push_image(repo, "latest", b"{}", [b"layer"])
    retag(registry, repo, digest, "copy")
    list(registry.list_tags(repo))
    messages = []
    for call in (
        lambda: registry.get_manifest(repo, "sha256:" + "0" * 64),
        lambda: registry.get_tag("nobody/here", "x"),
        lambda: AcrRegistry(
            acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle
        ).get_tag(repo, "latest"),
    ):
        with pytest.raises(Exception) as caught:
            call()
        messages.append(f"{caught.value!s} {caught.value!r} {caught.value.__cause__!s}")
    secrets = acr.issued_tokens() + credential.issued
    assert len(secrets) >= 4
    text = caplog.text + "\n".join(messages) + repr(acr.requests())
    assert "Request URL" in caplog.text  # the SDK did log every request
    for secret in secrets:
        assert secret not in text
        assert secret.split(".")[-1] not in text
    registry.close()


def test_concurrent_cold_start_fetches_each_token_once(
    acr: Emulator, registry: AcrRegistry, repo: str
) -> None:
    image = images.oci_image(seed=8)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    clear(acr)
    errors: list[BaseException] = []
    counts: list[int] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            with tally_requests() as tally:  # one tally per worker thread; summed below
                for i in range(5):
                    retag(registry, repo, image.digest, f"w{n}-{i}")
            counts.append(tally.count)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with tally_requests() as listing:
        names = sorted(t.name for t in registry.list_tags(repo, digest=image.digest))
    assert names == sorted(["latest"] + [f"w{n}-{i}" for n in range(8) for i in range(5)])
    entries = logged(acr, 82)
    tokens = [e for e in entries if e["path"] == "/oauth2/token"]
    assert len(tokens) == 1  # one token for the repository, once despite 8 threads
    assert sum(counts) + listing.count == len(entries)  # per-thread tallies add up


# -- jwt_expiry -----------------------------------------------------------------------------------
@pytest.mark.parametrize("pad", ["", "x", "xx", "xxx"])
def test_jwt_expiry_reads_exp_for_every_padding_length(pad: str) -> None:
    # Payload lengths modulo 3 differ, so the unpadded base64url needs 0, 1 or 2 '=' back.
    token = jwt({"exp": 1_900_000_000, "pad": pad})
    assert jwt_expiry(token) == 1_900_000_000.0


def test_jwt_expiry_handles_urlsafe_characters() -> None:
    # '?>' encodes to '-' / '_' in base64url: the SDK's standard-base64 decoder would choke.
    claims = {"exp": 1_800_000_000.5, "note": "??>>??>>"}
    token = jwt(claims)
    assert "-" in token.split(".")[1] or "_" in token.split(".")[1]
    assert jwt_expiry(token) == 1_800_000_000.5


@pytest.mark.parametrize(
    "token",
    [
        "",
        "opaque-token",
        "a.b",
        "a..c",
        "a.!!!.c",
        "a.b.c.d",
        jwt({"sub": "no exp"}),
        jwt({"exp": "tomorrow"}),
        jwt({"exp": True}),
        jwt({"exp": None}),
        jwt([1, 2, 3]),
        "x." + b64url(b"not json") + ".y",
    ],
)
def test_jwt_expiry_is_none_when_unreadable(token: str) -> None:
    assert jwt_expiry(token) is None


@pytest.mark.parametrize(
    ("claims", "lifetime"),
    [
        ({"iat": 1000, "exp": 1000 + 4500}, 4500.0),
        ({"iat": 1000.5, "exp": 1060}, 59.5),
        ({"exp": 1000}, None),
        ({"iat": 1000}, None),
        ({"iat": 2000, "exp": 1000}, None),
        ({"iat": "1000", "exp": 2000}, None),
    ],
)
def test_jwt_lifetime(claims: dict[str, Any], lifetime: float | None) -> None:
    assert jwt_lifetime(jwt(claims)) == lifetime
    assert jwt_lifetime("opaque") is None


# -- challenges -----------------------------------------------------------------------------------
def test_parse_acr_challenge() -> None:
    header = (
        'Bearer realm="https://reg.azurecr.io/oauth2/token",service="reg.azurecr.io",'
        'scope="repository:team/app:pull,push"'
    )
    challenge = parse_bearer_challenge(header)
    assert challenge is not None
    assert challenge.realm == "https://reg.azurecr.io/oauth2/token"
    assert challenge.service == "reg.azurecr.io"
    assert challenge.scope == "repository:team/app:pull,push"
    assert challenge.error is None


def test_parse_challenge_with_spaces_error_and_several_scopes() -> None:
    header = (
        'bearer realm="https://r/oauth2/token", service="r", '
        'scope="repository:a:pull repository:b:pull", error="insufficient_scope"'
    )
    challenge = parse_bearer_challenge(header)
    assert challenge is not None
    assert challenge.scope == "repository:a:pull repository:b:pull"
    assert challenge.error == "insufficient_scope"
    assert challenge.service == "r"


def test_parse_challenge_without_scope_and_with_bare_values() -> None:
    challenge = parse_bearer_challenge("Bearer realm=https://r/oauth2/token,service=r")
    assert challenge is not None
    assert (challenge.realm, challenge.service, challenge.scope) == (
        "https://r/oauth2/token",
        "r",
        None,
    )


@pytest.mark.parametrize("header", [None, "", 'Basic realm="registry"', "Negotiate abc"])
def test_non_bearer_challenges_are_none(header: str | None) -> None:
    assert parse_bearer_challenge(header) is None


# -- scope derivation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "scope", "family"),
    [
        ("GET", "/v2/app/manifests/latest", "repository:app:pull", "v2/manifests"),
        ("HEAD", "/v2/app/manifests/sha256:abc", "repository:app:pull", "v2/manifests"),
        ("PUT", "/v2/app/manifests/v1", "repository:app:push", "v2/manifests"),
        ("DELETE", "/v2/app/manifests/sha256:abc", "repository:app:delete", "v2/manifests"),
        (
            "GET",
            "/v2/team%2Fapp/manifests/sha256%3Aabc",
            "repository:team/app:pull",
            "v2/manifests",
        ),
        ("GET", "/v2/a/b/c/manifests/t", "repository:a/b/c:pull", "v2/manifests"),
        ("POST", "/v2/team/app/blobs/uploads/", "repository:team/app:push", "v2/blobs"),
        ("PATCH", "/v2/team/app/blobs/uploads/1234", "repository:team/app:push", "v2/blobs"),
        ("GET", "/v2/x/blobs/sha256:abc", "repository:x:pull", "v2/blobs"),
        ("GET", "/v2/x/tags/list", "repository:x:pull", "v2/tags"),
        (
            "GET",
            "/v2/x/y/manifests/z/manifests/t",
            "repository:x/y/manifests/z:pull",
            "v2/manifests",
        ),
        ("GET", "/v2/_catalog", "registry:catalog:*", "catalog"),
        ("GET", "/acr/v1/_catalog", "registry:catalog:*", "catalog"),
        ("GET", "/acr/v1/team%2Fapp/_tags", "repository:team/app:metadata_read", "acr/_tags"),
        ("GET", "/acr/v1/app/_tags/latest", "repository:app:metadata_read", "acr/_tags"),
        ("PATCH", "/acr/v1/app/_tags/latest", "repository:app:metadata_write", "acr/_tags"),
        ("DELETE", "/acr/v1/app/_tags/latest", "repository:app:delete", "acr/_tags"),
        ("GET", "/acr/v1/a/b/_manifests", "repository:a/b:metadata_read", "acr/_manifests"),
        ("GET", "/acr/v1/a/_manifests/sha256:x", "repository:a:metadata_read", "acr/_manifests"),
        ("GET", "/acr/v1/a/b", "repository:a/b:metadata_read", "acr/repository"),
        ("DELETE", "/acr/v1/a/b", "repository:a/b:delete", "acr/repository"),
    ],
)
def test_classify_request(method: str, path: str, scope: str, family: str) -> None:
    request_class = classify_request(method, path)
    assert request_class is not None
    assert request_class.scope == scope
    assert request_class.key[0] == method
    assert request_class.key[1] == family


def test_request_classes_separate_methods_and_repositories() -> None:
    get = classify_request("GET", "/v2/a/manifests/t")
    head = classify_request("HEAD", "/v2/a/manifests/t")
    other = classify_request("GET", "/v2/b/manifests/t")
    assert get is not None
    assert head is not None
    assert other is not None
    assert get.key != head.key  # learned separately ...
    assert get.scope == head.scope  # ... but share the cached token of the same scope
    assert get.key != other.key
    assert get.scope != other.scope


@pytest.mark.parametrize(
    "path", ["/v2/", "/v2", "/oauth2/token", "/oauth2/exchange", "/", "/acr/v1/", "/other"]
)
def test_requests_without_a_repository_scope(path: str) -> None:
    assert classify_request("GET", path) is None
