"""Token caching and request counting of `AcrRegistry` (issue 3: exactly 2 requests per re-tag).

Counts are taken twice: by the adapter (`requests_made`, every HTTP request including token calls)
and by the emulator's own request log.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.registry import PermissionDeniedError
from tests.acr.conftest import clear, logged, summary
from tests.support import images
from tests.support.credentials import FailingCredential, StaticTokenCredential


class FakeClock:
    """Our side of time for token expiry (the emulator checks `exp` against real time)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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

    retag(registry, repo, image.digest, "warm")  # cold: challenge + token for pull and push
    cold = summary(logged(acr, 6))
    assert registry.requests_made == 6
    assert [(m, p.rsplit("/", 1)[-1], s) for m, p, s in cold] == [
        ("GET", image.digest, 401),
        ("POST", "token", 200),
        ("GET", image.digest, 200),
        ("PUT", "warm", 401),
        ("POST", "token", 200),
        ("PUT", "warm", 201),
    ]

    clear(acr)
    before = registry.requests_made
    for i in range(100):
        retag(registry, repo, image.digest, f"t{i}")
    entries = logged(acr, 200)
    assert registry.requests_made - before == 200
    assert len(entries) == 200
    assert paths(entries) == Counter(
        {f"GET /v2/{repo}/manifests/{image.digest}": 100}
        | {f"PUT /v2/{repo}/manifests/t{i}": 1 for i in range(100)}
    )
    assert {e["status"] for e in entries} == {200, 201}
    assert registry.counter.by_kind["POST oauth2/token"] == 2


def test_steady_state_retag_is_exactly_two_requests_with_a_credential(
    private_acr: Emulator, repo: str
) -> None:
    acr = private_acr
    credential = StaticTokenCredential()
    registry = AcrRegistry(acr.login_server, credential=credential, ca_bundle=acr.ca_bundle)
    registry.push_image(repo, "latest", b"{}", [b"layer"])
    digest = registry.get_manifest(repo, "latest").digest
    clear(acr)
    start = registry.requests_made

    # push_image and the GET above cached the push and pull tokens: no further token call
    retag(registry, repo, digest, "warm")
    assert [(e["method"], e["status"]) for e in logged(acr, 2)] == [("GET", 200), ("PUT", 201)]
    assert registry.requests_made - start == 2

    clear(acr)
    before = registry.requests_made
    for i in range(100):
        retag(registry, repo, digest, f"t{i}")
    entries = logged(acr, 200)
    assert registry.requests_made - before == 200
    assert len(entries) == 200
    assert not any(e["path"].startswith("/oauth2/") for e in entries)
    assert credential.calls == [("https://containerregistry.azure.net/.default",)]
    registry.close()


def test_credential_cold_start_exchanges_once_then_one_token_per_scope(
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
    retag(registry, repo, digest, "cold")
    entries = logged(acr, 7)
    assert [(m, p.rsplit("/", 1)[-1], s) for m, p, s in summary(entries)] == [
        ("GET", digest, 401),
        ("POST", "exchange", 200),
        ("POST", "token", 200),
        ("GET", digest, 200),
        ("PUT", "cold", 401),
        ("POST", "token", 200),
        ("PUT", "cold", 201),
    ]
    assert registry.requests_made == 7
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
    registry.get_manifest("two/app", image.digest)  # another repository: another token
    assert [(e["path"], e["status"]) for e in logged(acr, 3)] == [
        (f"/v2/two/app/manifests/{image.digest}", 401),
        ("/oauth2/token", 200),
        (f"/v2/two/app/manifests/{image.digest}", 200),
    ]

    clear(acr)
    registry.delete_tag("one/app", "latest")  # delete instead of pull/metadata_read
    assert [e["status"] for e in logged(acr, 3)] == [401, 200, 202]

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
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                retag(registry, repo, image.digest, f"w{n}-{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(t.name for t in registry.list_tags(repo, digest=image.digest)) == sorted(
        ["latest"] + [f"w{n}-{i}" for n in range(8) for i in range(5)]
    )
    entries = logged(acr, 82)
    tokens = [e for e in entries if e["path"] == "/oauth2/token"]
    assert len(tokens) == 3  # pull, push, metadata_read: once each despite 8 threads
    assert registry.requests_made == len(entries)
