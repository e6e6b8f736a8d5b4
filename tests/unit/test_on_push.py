"""The event path's decisions, without a registry: every ignore/reject case, the error mapping
and the outcome line. Writes against a registry are covered by the emulator integration tests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import pytest

from retag.on_push import Outcome, handle_event
from retag.registry import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Registry,
    RegistryError,
    TransientRegistryError,
)
from retag.settings import Settings, load_settings
from retag.tagging import add_generated_tag
from tests.unit.test_events import MALFORMED, event_grid

DIGEST = "sha256:3f2a9c1b7d4e" + "0123456789abcdef" * 3 + "0123"
NEW_TAG = "latest_20261129230700999_3f2a9c1b7d4e"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY3ItcmV0YWcifQ.c2lnbmF0dXJlLWJ5dGVz"


class FactoryCalled(Exception):
    pass


class RecordingFactory:
    """A registry factory that records each call and then raises `error` (no registry exists
    in unit tests: reaching the factory means the event path decided to write)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls = 0
        self.error = error or FactoryCalled("registry factory called")

    def __call__(self) -> Registry:
        self.calls += 1
        raise self.error


def settings(**overrides: str) -> Settings:
    return load_settings(
        {"ACR_LOGIN_SERVER": "myregistry.azurecr.io", "RETAG_SOURCE_TAGS": "latest,stable"}
        | overrides
    )


def event(**target: Any) -> dict[str, Any]:
    request = target.pop("request", {"host": "myregistry.azurecr.io", "method": "PUT"})
    body: dict[str, Any] = {"digest": DIGEST, "repository": "team-a/app", "tag": "latest"}
    body.update(target)
    return {
        "id": "evt-1",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2026-11-29T23:07:01.5Z",
        "data": {
            "timestamp": "2026-11-29T23:07:00.9999999Z",
            "action": "push",
            "target": {k: v for k, v in body.items() if v is not None},
            "request": request,
        },
    }


NOT_WRITTEN: list[tuple[str, dict[str, Any], dict[str, str], str, str]] = [
    # name, event, setting overrides, expected status, reason fragment
    (
        "other type",
        event() | {"eventType": "Microsoft.ContainerRegistry.ImageDeleted"},
        {},
        "ignored",
        "is not an image push",
    ),
    (
        "chart",
        event() | {"eventType": "Microsoft.ContainerRegistry.ChartPushed"},
        {},
        "ignored",
        "is not an image push",
    ),
    ("by digest", event(tag=None), {}, "ignored", "pushed by digest"),
    ("not a source tag", event(tag="v1"), {}, "ignored", "not a source tag"),
    ("source tag prefix", event(tag="latest2"), {}, "ignored", "not a source tag"),
    ("source tag case", event(tag="Latest"), {}, "ignored", "not a source tag"),
    ("our own tag", event(tag=NEW_TAG), {}, "ignored", "generated tag (our own re-tag)"),
    ("not included", event(), {"RETAG_REPOSITORIES": "team-b/.*"}, "ignored", "outside"),
    ("excluded", event(), {"RETAG_EXCLUDE_REPOSITORIES": "team-a/.*"}, "ignored", "outside"),
    (
        "other registry",
        event(request={"host": "evil.azurecr.io"}),
        {},
        "rejected",
        "from registry evil.azurecr.io, not ACR_LOGIN_SERVER=myregistry.azurecr.io",
    ),
    (
        "registry suffix",
        event(request={"host": "myregistry.azurecr.io.evil.com"}),
        {},
        "rejected",
        "not ACR_LOGIN_SERVER",
    ),
    (
        "other port",
        event(request={"host": "myregistry.azurecr.io:5000"}),
        {},
        "rejected",
        "not ACR_LOGIN_SERVER",
    ),
    ("no request", event(request=None), {}, "rejected", "missing data.request.host"),
    ("no host", event(request={"method": "PUT"}), {}, "rejected", "missing data.request.host"),
    (
        "bad digest",
        event(digest="sha256:xyz"),
        {},
        "rejected",
        "malformed event: data.target.digest",
    ),
    (
        "bad repository",
        event(repository="../x"),
        {},
        "rejected",
        "malformed event: data.target.repository",
    ),
    ("bad tag", event(tag="la test"), {}, "rejected", "malformed event: data.target.tag"),
    ("no id", {k: v for k, v in event().items() if k != "id"}, {}, "rejected", "missing id"),
    ("not an object", cast(dict[str, Any], ["x"]), {}, "rejected", "expected a JSON object"),
]


@pytest.mark.parametrize(
    ("envelope", "overrides", "status", "reason"),
    [pytest.param(e, o, s, r, id=n) for n, e, o, s, r in NOT_WRITTEN],
)
def test_ignored_and_rejected_events_never_build_a_registry(
    envelope: dict[str, Any],
    overrides: dict[str, str],
    status: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = RecordingFactory()
    with caplog.at_level(logging.DEBUG, logger="acr-retag"):
        outcome = handle_event(envelope, settings(**overrides), factory)
    assert factory.calls == 0
    assert outcome.status == status
    assert reason in outcome.reason
    assert outcome.requests == 0
    assert outcome.new_tag is None
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.getMessage() == outcome.log_line()
    # The level follows the outcome (logline.level_for): INFO ignored, WARNING rejected.
    assert record.levelno == (logging.WARNING if status == "rejected" else logging.INFO)


@pytest.mark.parametrize(
    ("mutate", "reason"), [pytest.param(m, r, id=name) for name, m, r in MALFORMED]
)
def test_every_malformed_event_is_rejected_without_a_write(
    mutate: Callable[[dict[str, Any]], None], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    envelope = event_grid()
    envelope["data"]["request"]["host"] = "myregistry.azurecr.io"
    mutate(envelope)
    factory = RecordingFactory()
    with caplog.at_level(logging.DEBUG, logger="acr-retag"):
        outcome = handle_event(envelope, settings(), factory)
    assert factory.calls == 0
    assert outcome.status == "rejected"
    assert outcome.reason == f"malformed event: {reason}" or reason in outcome.reason
    (record,) = caplog.records
    assert record.levelno == logging.WARNING  # rejected: logline.level_for
    assert "\n" not in record.getMessage()


@pytest.mark.parametrize(
    "host", ["myregistry.azurecr.io", "MyRegistry.AzureCR.io", "myregistry.azurecr.io:443"]
)
def test_matching_event_goes_to_the_registry(host: str) -> None:
    factory = RecordingFactory()
    with pytest.raises(FactoryCalled):
        handle_event(event(request={"host": host}), settings(), factory)
    assert factory.calls == 1


def test_cloud_event_goes_to_the_registry() -> None:
    eg = event()
    cloud = {
        "id": eg["id"],
        "source": "/subscriptions/x/resourceGroups/y/providers/"
        "Microsoft.ContainerRegistry/registries/myregistry",
        "type": eg["eventType"],
        "time": eg["eventTime"],
        "specversion": "1.0",
        "data": eg["data"],
    }
    factory = RecordingFactory()
    with pytest.raises(FactoryCalled):
        handle_event(cloud, settings(), factory)
    assert factory.calls == 1


def _outcome_of(
    error: BaseException, caplog: pytest.LogCaptureFixture, *, raises: type[BaseException] | None
) -> tuple[Outcome | None, logging.LogRecord, BaseException | None]:
    factory = RecordingFactory(error)
    outcome: Outcome | None = None
    raised: BaseException | None = None
    with caplog.at_level(logging.DEBUG, logger="acr-retag"):
        if raises is None:
            outcome = handle_event(event(), settings(), factory)
        else:
            with pytest.raises(raises) as info:
                handle_event(event(), settings(), factory)
            raised = info.value
    assert factory.calls == 1
    assert len(caplog.records) == 1
    return outcome, caplog.records[0], raised


def test_manifest_deleted_is_a_warning_and_success(caplog: pytest.LogCaptureFixture) -> None:
    outcome, record, _ = _outcome_of(NotFoundError("manifest unknown"), caplog, raises=None)
    assert outcome is not None
    assert outcome.status == "ignored"
    assert outcome.reason.startswith("manifest deleted before re-tag")
    assert outcome.new_tag == NEW_TAG
    assert record.levelno == logging.WARNING


def test_conflict_is_an_error_and_success(caplog: pytest.LogCaptureFixture) -> None:
    outcome, record, _ = _outcome_of(ConflictError("tag is locked"), caplog, raises=None)
    assert outcome is not None
    assert outcome.status == "failed"
    assert "not overwritten: tag is locked" in outcome.reason
    assert record.levelno == logging.ERROR
    assert "retry=true" not in record.getMessage()


def test_other_registry_error_fails_without_retry(caplog: pytest.LogCaptureFixture) -> None:
    outcome, record, _ = _outcome_of(RegistryError("digest mismatch"), caplog, raises=None)
    assert outcome is not None
    assert outcome.status == "failed"
    assert record.levelno == logging.ERROR


def test_transient_error_is_logged_then_raised(caplog: pytest.LogCaptureFixture) -> None:
    error = TransientRegistryError("503 after 3 attempts")
    _, record, raised = _outcome_of(error, caplog, raises=TransientRegistryError)
    assert raised is error
    line = record.getMessage()
    assert "outcome=failed" in line
    assert "retry=true" in line
    assert f"new_tag={NEW_TAG}" in line
    assert record.levelno == logging.ERROR


def test_permission_denied_is_redelivered(caplog: pytest.LogCaptureFixture) -> None:
    error = PermissionDeniedError("403 DENIED")
    _, record, raised = _outcome_of(error, caplog, raises=TransientRegistryError)
    assert raised is not None
    assert raised.__cause__ is error
    assert "grant AcrPush" in str(raised)
    assert "retry=true" in record.getMessage()


def test_unexpected_error_is_logged_then_raised(caplog: pytest.LogCaptureFixture) -> None:
    _, record, raised = _outcome_of(RuntimeError("bug"), caplog, raises=RuntimeError)
    assert isinstance(raised, RuntimeError)
    assert "unexpected error RuntimeError: bug" in record.getMessage()


def test_log_line_format() -> None:
    outcome = Outcome(
        status="retagged",
        reason="generated tag added",
        event_id="evt-1",
        repository="team-a/app",
        source_tag="latest",
        digest=DIGEST,
        new_tag=NEW_TAG,
        duration_ms=12.345,
        requests=2,
    )
    assert outcome.log_line() == (
        f"acr-retag outcome=retagged event_id=evt-1 repository=team-a/app source_tag=latest "
        f"digest={DIGEST} new_tag={NEW_TAG} duration_ms=12.3 requests=2 "
        'reason="generated tag added"'
    )
    assert outcome.log_level == logging.INFO


def test_log_line_quotes_untrusted_values() -> None:
    outcome = Outcome(
        status="rejected",
        reason='bad "thing"\nacr-retag outcome=retagged',
        event_id="a b=c\n",
        duration_ms=0.04,
    )
    line = outcome.log_line()
    assert "\n" not in line
    assert 'event_id="a b=c\\n"' in line
    assert "repository=- source_tag=- digest=- new_tag=-" in line
    assert 'reason="bad \\"thing\\"\\nacr-retag outcome=retagged"' in line
    assert Outcome(status="ignored", reason="", event_id="-").log_line().count('event_id="-"') == 1


@pytest.mark.parametrize(
    "secret_text",
    [
        f"401 with token {JWT}",
        f"Authorization: Bearer {JWT[:20]}",
        "POST /oauth2/token refresh_token=abc.def-ghi&scope=x",
        "access_token: 'zzzzzzzz'",
        "password=hunter2",
        '{"refresh_token": "zzzzzzzz", "x": 1}',
    ],
)
def test_log_line_never_contains_a_token(secret_text: str) -> None:
    line = Outcome(status="failed", reason=secret_text, event_id=f"id-{JWT}").log_line()
    for secret in (JWT, JWT[:20], "abc.def-ghi", "zzzzzzzz", "hunter2"):
        assert secret not in line
    assert "[redacted]" in line


def test_long_reasons_are_truncated() -> None:
    line = Outcome(status="failed", reason="x" * 5000).log_line()
    assert len(line) < 600


def test_add_generated_tag_validates_before_sending_anything() -> None:
    untouchable = cast(Registry, object())  # any attribute access would raise
    for args, message in [
        (("Team/App", DIGEST, NEW_TAG), "repository contains uppercase"),
        (("team-a/app", "sha256:abc", NEW_TAG), "digest is not"),
        (("team-a/app", DIGEST, "-x"), "new tag starts with '-'"),
        (("team-a/app", DIGEST, "a" * 129), "new tag is 129 characters long"),
    ]:
        with pytest.raises(ValueError, match=message):
            add_generated_tag(untouchable, *args, check_existing=True)


@pytest.mark.parametrize(
    ("host", "accepted"),
    [
        ("myregistry.azurecr.io", True),
        ("MyRegistry.azurecr.io:443", True),
        ("myregistry.westeurope.geo.azurecr.io", True),
        ("myregistry.eastus2.geo.azurecr.io", True),
        ("myregistry.westeurope.data.azurecr.io", False),  # a data endpoint: never a push host
        ("other.westeurope.geo.azurecr.io", False),
        ("myregistry.westeurope.geo.azurecr.io.evil.com", False),
        ("myregistry.west.europe.geo.azurecr.io", False),
        ("myregistry.westeurope.geo.azurecr.cn", False),
        ("evil.myregistry.westeurope.geo.azurecr.io", False),
        ("myregistry.\u212aest.geo.azurecr.io", False),
        ("myregistry.azurecr.io.evil.com", False),
    ],
)
def test_the_login_server_and_its_regional_endpoints_are_accepted(
    host: str, accepted: bool
) -> None:
    """Regional endpoints `<name>.<region>.geo.<suffix>` (Learn, "container registry endpoint
    reference", https://learn.microsoft.com/azure/container-registry/container-registry-dedicated-data-endpoints):
    a push through a geo-replica's endpoint carries that host in `data.request.host`."""
    from retag.on_push import is_registry_host

    assert is_registry_host(host, "myregistry.azurecr.io") is accepted
    assert is_registry_host(host, "127.0.0.1:5443") is False


def test_an_event_through_a_regional_endpoint_reaches_the_registry() -> None:
    factory = RecordingFactory()
    with pytest.raises(FactoryCalled):  # the event path decided to write
        handle_event(
            event(request={"host": "myregistry.westeurope.geo.azurecr.io", "method": "PUT"}),
            settings(),
            factory,
        )
    assert factory.calls == 1
