"""`retag.acr.transport`: the one retry layer, the call deadline, counting, permanent TLS failures.

Driven through the real SDK against the emulator's fault injection (503/429 with a counting-down
`Retry-After`, resets, latency) and, for TLS, against a listener whose certificate another CA
signed. Retried statuses are azure-core RetryPolicy's (408, 429, 5xx but 501/505) and ACR's 429
carries `Retry-After` (design.md §1, §4: Learn "container-registry-skus", throttling).

Durations are only bounded from above with generous slack (the machine is shared); lower bounds
are used where a sleep guarantees them (Retry-After).
"""

from __future__ import annotations

import random
import re
import shutil
import time
from pathlib import Path

import pytest
import trustme

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.acr.transport import environment_settings
from retag.registry import RegistryError, TransientRegistryError, tally_requests, time_budget
from tests.acr.conftest import clear, logged
from tests.acr.tls import CountingTlsServer
from tests.support import images

SLACK = 1.5  # seconds of scheduling noise we tolerate on a loaded 2-core machine


def seed_for(outcomes: list[bool], rate: float) -> int:
    """A seed for which the emulator's fault draws (one `random()` per request) fail exactly the
    requests marked True: deterministic fault sequences instead of flaky probabilities."""
    for seed in range(100_000):
        draws = random.Random(seed)
        if all((draws.random() < rate) == fail for fail in outcomes):
            return seed
    raise AssertionError("no seed found")


def test_503_is_retried_then_transient_after_the_budget(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    registry, image = warm
    acr.set_faults(error_rate=1.0, error_status=503)
    with tally_requests() as sent, pytest.raises(TransientRegistryError, match="503") as caught:
        registry.get_manifest(repo, image.digest)
    assert sent.count == 4  # 1 + retry_total: one retry layer, nothing stacked over it
    assert [e["status"] for e in logged(acr, 4)] == [503] * 4
    assert "gave up after 4 attempts" in str(caught.value)


def test_503_then_success(acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str) -> None:
    registry, image = warm
    acr.set_faults(error_rate=0.5, error_status=503, seed=seed_for([True, False], 0.5))
    assert registry.get_manifest(repo, image.digest).digest == image.digest
    assert [e["status"] for e in logged(acr, 2)] == [503, 200]


def test_put_retried_after_503_resends_the_same_bytes(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    registry, image = warm
    manifest = registry.get_manifest(repo, image.digest)
    registry.put_manifest(repo, manifest, "warm-push-token")
    clear(acr)
    acr.set_faults(error_rate=0.5, error_status=500, seed=seed_for([True, True, False], 0.5))
    assert registry.put_manifest(repo, manifest, "after-faults") == image.digest
    assert [e["status"] for e in logged(acr, 3)] == [500, 500, 201]
    assert acr.tag_digest(repo, "after-faults") == image.digest


@pytest.mark.parametrize("status", [408, 429, 500, 502, 504])
def test_retryable_statuses_are_transient(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str, status: int
) -> None:
    registry, _ = warm
    acr.set_faults(error_rate=1.0, error_status=status)
    with pytest.raises(TransientRegistryError, match=str(status)):
        registry.get_tag(repo, "latest")


def test_429_retry_after_is_honoured(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    registry, image = warm
    acr.set_faults(rate_limit_per_second=1.0)
    registry.get_manifest(repo, image.digest)  # uses the one request of this second
    started = time.monotonic()
    registry.get_manifest(repo, image.digest)  # 429 Retry-After: 1, then success
    elapsed = time.monotonic() - started
    entries = logged(acr, 3)
    assert [e["status"] for e in entries] == [200, 429, 200]
    assert elapsed >= 0.95  # slept for Retry-After rather than hammering the registry


def test_retry_after_beyond_the_deadline_gives_up_at_once(acr: Emulator, repo: str) -> None:
    image = images.oci_image(seed=2)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry = AcrRegistry(
        acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, deadline_seconds=0.8
    )
    registry.get_manifest(repo, image.digest)
    acr.set_faults(rate_limit_per_second=0.2)  # one request per 5 s
    registry.get_manifest(repo, image.digest)  # empties the bucket
    clear(acr)
    started = time.monotonic()
    with pytest.raises(TransientRegistryError, match="retry after") as caught:
        registry.get_manifest(repo, image.digest)
    assert time.monotonic() - started < 0.8 + SLACK
    assert re.search(r"retry after [45]\.\d s", str(caught.value))  # Retry-After: 5 (or 4)
    assert "deadline" in str(caught.value)
    assert [e["status"] for e in logged(acr, 1)] == [429]  # and not retried before Retry-After
    registry.close()


def test_hung_registry_never_exceeds_the_deadline(acr: Emulator, repo: str) -> None:
    image = images.oci_image(seed=3)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry = AcrRegistry(
        acr.login_server,
        credential="anonymous",
        ca_bundle=acr.ca_bundle,
        read_timeout=5.0,  # longer than the deadline: the deadline must cut it short
        deadline_seconds=1.0,
        retry_total=3,
        retry_backoff_factor=0.01,
    )
    registry.get_manifest(repo, image.digest)
    acr.set_faults(latency_ms=4000)
    started = time.monotonic()
    with pytest.raises(TransientRegistryError, match=r"timed out|deadline|timeout"):
        registry.get_manifest(repo, image.digest)
    assert time.monotonic() - started < 1.0 + SLACK
    registry.close()


def test_latency_beyond_read_timeout_is_retried_then_transient(acr: Emulator, repo: str) -> None:
    image = images.oci_image(seed=4)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry = AcrRegistry(
        acr.login_server,
        credential="anonymous",
        ca_bundle=acr.ca_bundle,
        read_timeout=0.3,
        deadline_seconds=10.0,
        retry_total=2,
        retry_backoff_factor=0.01,
    )
    registry.get_manifest(repo, image.digest)
    acr.set_faults(latency_ms=1500)
    started = time.monotonic()
    with tally_requests() as sent, pytest.raises(TransientRegistryError):
        registry.get_manifest(repo, image.digest)
    assert sent.count == 3  # each attempt timed out after 0.3 s
    assert time.monotonic() - started < 3 * 0.3 + SLACK
    registry.close()


def test_connection_reset_is_transient(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    registry, image = warm
    acr.set_faults(reset_rate=1.0)
    with tally_requests() as sent, pytest.raises(TransientRegistryError, match="4 attempts"):
        registry.get_manifest(repo, image.digest)
    assert sent.count == 4
    acr.clear_faults()
    assert registry.get_manifest(repo, image.digest).digest == image.digest


def test_token_endpoint_failures_are_retried_and_transient(acr: Emulator, repo: str) -> None:
    image = images.oci_image(seed=5)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry = AcrRegistry(
        acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, retry_backoff_factor=0.01
    )
    clear(acr)
    # The token endpoint (asked first: the repository's one token, up front) fails with 503.
    acr.set_faults(error_rate=0.5, include_auth=True, seed=seed_for([True, True, True, True], 0.5))
    with pytest.raises(TransientRegistryError, match="503"):
        registry.get_manifest(repo, image.digest)
    entries = logged(acr, 4)
    assert [(e["path"].rsplit("/", 1)[-1], e["status"]) for e in entries] == [("token", 503)] * 4
    acr.clear_faults()
    assert registry.get_manifest(repo, image.digest).digest == image.digest
    registry.close()


def test_unreachable_registry_is_transient(tmp_path: Path) -> None:
    with Emulator() as acr:
        login_server = acr.login_server
        ca_bundle = str(shutil.copy(acr.ca_bundle, tmp_path / "ca.pem"))
        registry = AcrRegistry(
            login_server,
            credential="anonymous",
            ca_bundle=ca_bundle,
            retry_total=1,
            retry_backoff_factor=0.01,
        )
    # the emulator is gone: connection refused on every attempt
    with pytest.raises(TransientRegistryError):
        registry.get_tag("app", "latest")
    registry.close()


# -- environment (resolved once per adapter) ------------------------------------------------------
def test_environment_settings_explicit_bundle_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    assert environment_settings("r.azurecr.io", "/mine.pem")[0] == "/mine.pem"
    assert environment_settings("r.azurecr.io", None)[0] == "/env/bundle.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert environment_settings("r.azurecr.io", None)[0] is True


def test_environment_settings_proxies_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert environment_settings("r.azurecr.io", None)[1] == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert environment_settings("r.azurecr.io", None)[1] == {"https": "http://proxy.example:3128"}
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.azurecr.io")
    assert environment_settings("r.azurecr.io", None)[1] == {}
    assert environment_settings("127.0.0.1:5443", None)[1] == {}
    assert environment_settings("other.example", None)[1] != {}


# -- one retry layer -------------------------------------------------------------------------------
@pytest.mark.parametrize(("retry_total", "attempts"), [(0, 1), (1, 2), (3, 4)])
def test_attempts_are_exactly_one_plus_retry_total(
    acr: Emulator, repo: str, retry_total: int, attempts: int
) -> None:
    """No azure-core RetryPolicy under or over the transport: with `retry_total=0` a failing call
    is one HTTP attempt (a stacked default RetryPolicy would make it 4), with 3 it is 4 (not 16)."""
    images.push_image(acr.endpoint, repo, images.oci_image(seed=6), "latest", verify=acr.ca_bundle)
    registry = AcrRegistry(
        acr.login_server,
        credential="anonymous",
        ca_bundle=acr.ca_bundle,
        retry_total=retry_total,
        retry_backoff_factor=0.001,
    )
    list(registry.list_tags(repo))  # token cached
    clear(acr)
    acr.set_faults(error_rate=1.0, error_status=503)
    with tally_requests() as sent, pytest.raises(TransientRegistryError, match="503"):
        list(registry.list_tags(repo))
    assert sent.count == attempts
    assert [e["status"] for e in logged(acr, attempts)] == [503] * attempts
    registry.close()


def test_non_retryable_status_is_one_attempt(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    registry, image = warm
    acr.set_faults(error_rate=1.0, error_status=501)  # Not Implemented: retrying will not help
    with tally_requests() as sent, pytest.raises(TransientRegistryError, match="501"):
        registry.get_manifest(repo, image.digest)
    assert sent.count == 1


def test_time_budget_bounds_the_retries(
    acr: Emulator, warm: tuple[AcrRegistry, images.Image], repo: str
) -> None:
    """Inside `time_budget` (one event invocation) the retries stop at the budget, not later."""
    registry, image = warm
    acr.set_faults(rate_limit_per_second=0.5)  # Retry-After: 2 once the bucket is empty
    registry.get_manifest(repo, image.digest)
    started = time.monotonic()
    with time_budget(0.5), pytest.raises(TransientRegistryError, match="deadline"):
        registry.get_manifest(repo, image.digest)
    assert time.monotonic() - started < 0.5 + SLACK


# -- TLS verification failures are permanent -------------------------------------------------------
@pytest.fixture
def other_ca(tmp_path: Path) -> str:
    """A PEM bundle of a CA that did not sign the emulator's certificate."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def test_untrusted_certificate_fails_at_once_naming_acr_ca_bundle(
    acr: Emulator, other_ca: str
) -> None:
    registry = AcrRegistry(
        acr.login_server,
        credential="anonymous",
        ca_bundle=other_ca,
        retry_total=3,
        retry_backoff_factor=5.0,  # a retry would take seconds
    )
    started = time.monotonic()
    with tally_requests() as sent, pytest.raises(RegistryError) as caught:
        registry.get_tag("app", "latest")
    assert time.monotonic() - started < SLACK
    assert not isinstance(caught.value, TransientRegistryError)  # the sweep will not requeue it
    message = str(caught.value)
    assert "TLS certificate verification failed" in message
    assert f"ACR_CA_BUNDLE ({other_ca})" in message
    assert "not retried" in message
    assert sent.count == 1
    assert acr.requests() == []  # no HTTP request ever reached the registry
    registry.close()


def test_untrusted_certificate_is_one_handshake_per_call(other_ca: str) -> None:
    with CountingTlsServer() as server:
        registry = AcrRegistry(
            server.login_server, credential="anonymous", ca_bundle=other_ca, retry_total=3
        )
        for call in (
            lambda: registry.get_tag("app", "latest"),
            lambda: list(registry.list_tags("app")),
        ):
            with pytest.raises(RegistryError, match="ACR_CA_BUNDLE"):
                call()
        registry.close()
        time.sleep(0.1)
        assert server.accepted == 2  # one handshake each: never retried


def test_untrusted_certificate_without_a_bundle_names_the_system_trust_store(
    acr: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    registry = AcrRegistry(acr.login_server, credential="anonymous")
    with pytest.raises(RegistryError) as caught:
        registry.get_tag("app", "latest")
    assert not isinstance(caught.value, TransientRegistryError)
    assert "the system trust store (ACR_CA_BUNDLE is unset)" in str(caught.value)
    assert "set ACR_CA_BUNDLE" in str(caught.value)
    registry.close()
