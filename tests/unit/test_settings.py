"""Settings: defaults, every bad value's error, the example settings file."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from retag.settings import (
    SETTINGS,
    RetagSettings,
    Settings,
    SettingsError,
    load_settings,
    parse_duration,
    validate_ncrontab,
)

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
BASE = {"ACR_LOGIN_SERVER": "myregistry.azurecr.io"}


def load(**overrides: str) -> Settings:
    return load_settings({**BASE, **overrides})


def test_defaults() -> None:
    settings = load()
    registry = settings.registry
    assert registry.login_server == "myregistry.azurecr.io"
    assert registry.endpoint == "https://myregistry.azurecr.io"
    assert registry.credential == "default"
    assert registry.audience == "https://containerregistry.azure.net"
    assert registry.ca_bundle is None
    retag = settings.retag
    assert retag.source_tags == ("latest",)
    assert retag.template.text == "{tag}_{timestamp:ms}_{digest:.12}"
    assert retag.repositories is None
    assert retag.exclude_repositories is None
    prune = settings.prune
    assert (prune.schedule, prune.mode, prune.keep, prune.scope) == (
        "0 0 3 * * *",
        "dry-run",
        10,
        "generated",
    )
    assert prune.min_age == timedelta(days=7)
    assert prune.untagged is False
    assert prune.repositories is None
    assert prune.concurrency == 8
    assert prune.max_duration == timedelta(minutes=8)
    reconcile = settings.reconcile
    assert reconcile.schedule == "0 */15 * * * *"
    assert reconcile.mode == "apply"
    assert reconcile.grace == timedelta(minutes=15)


def test_every_value_set(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))  # ACR_CA_BUNDLE must be a real PEM bundle
    settings = load_settings(
        {
            "ACR_LOGIN_SERVER": "127.0.0.1:5443",
            "ACR_CREDENTIAL": "Anonymous",
            "ACR_AUDIENCE": "https://containerregistry.azure.cn",
            "ACR_CA_BUNDLE": str(ca),
            "RETAG_SOURCE_TAGS": " latest , stable ",
            "RETAG_TAG_TEMPLATE": "{tag}-{timestamp}-{digest:.16}",
            "RETAG_REPOSITORIES": "team-a/.*",
            "RETAG_EXCLUDE_REPOSITORIES": "team-a/tmp-.*",
            "PRUNE_SCHEDULE": "0 30 2 * * Sun",
            "PRUNE_MODE": "DELETE",
            "PRUNE_KEEP": "0",
            "PRUNE_MIN_AGE": "90s",
            "PRUNE_SCOPE": "all",
            "PRUNE_UNTAGGED": "True",
            "PRUNE_REPOSITORIES": "team-a/app",
            "PRUNE_CONCURRENCY": "64",
            "PRUNE_MAX_DURATION": "1h",
            "RECONCILE_SCHEDULE": "0 0,30 8-18 * 1-12/2 MON-FRI",
            "RECONCILE_MODE": "dry-run",
            "RECONCILE_GRACE": "0s",
        }
    )
    assert settings.registry.credential == "anonymous"
    assert settings.registry.ca_bundle == str(ca)
    assert settings.retag.source_tags == ("latest", "stable")
    assert settings.retag.template.digest_length == 16
    assert settings.prune.mode == "delete"
    assert settings.prune.keep == 0
    assert settings.prune.min_age == timedelta(seconds=90)
    assert settings.prune.untagged is True
    assert settings.prune.max_duration == timedelta(hours=1)
    assert settings.reconcile.grace == timedelta(0)


def test_empty_values_mean_the_default() -> None:
    settings = load(**{s.name: "  " for s in SETTINGS if s.name != "ACR_LOGIN_SERVER"})
    assert settings == load()


def test_repository_filters() -> None:
    retag = load(
        RETAG_REPOSITORIES="team-a/.*|shared", RETAG_EXCLUDE_REPOSITORIES=".*/tmp-.*"
    ).retag
    assert isinstance(retag, RetagSettings)
    assert retag.in_scope("team-a/app")
    assert retag.in_scope("shared")
    assert not retag.in_scope("shared/x")  # full match, not search
    assert not retag.in_scope("xteam-a/app")
    assert not retag.in_scope("team-a/tmp-1")
    assert load().retag.in_scope("anything/at/all")


def test_prune_scope_defaults_to_the_retag_filters() -> None:
    settings = load(RETAG_REPOSITORIES="team-a/.*", RETAG_EXCLUDE_REPOSITORIES="team-a/keep")
    assert settings.prune.in_scope("team-a/app", settings.retag)
    assert not settings.prune.in_scope("team-a/keep", settings.retag)
    assert not settings.prune.in_scope("team-b/app", settings.retag)
    explicit = load(RETAG_REPOSITORIES="team-a/.*", PRUNE_REPOSITORIES="team-b/.*")
    assert explicit.prune.in_scope("team-b/app", explicit.retag)
    assert not explicit.prune.in_scope("team-a/app", explicit.retag)


BAD_VALUES: list[tuple[str, str, str]] = [
    ("ACR_LOGIN_SERVER", "", "is required"),
    ("ACR_LOGIN_SERVER", "https://myregistry.azurecr.io", "drop 'https://'"),
    ("ACR_LOGIN_SERVER", "http://127.0.0.1:5443/", "drop 'http://'"),
    ("ACR_LOGIN_SERVER", "myregistry.azurecr.io/v2", "has a path"),
    ("ACR_LOGIN_SERVER", "MyRegistry.azurecr.io", "must be lowercase: 'myregistry.azurecr.io'"),
    ("ACR_LOGIN_SERVER", "my_registry.azurecr.io", "not a valid login server"),
    ("ACR_LOGIN_SERVER", "-x.azurecr.io", "not a valid login server"),
    ("ACR_LOGIN_SERVER", "a..b", "not a valid login server"),
    ("ACR_LOGIN_SERVER", "user@myregistry.azurecr.io", "not a valid login server"),
    ("ACR_LOGIN_SERVER", "127.0.0.1:0", "port 0 is out of range"),
    ("ACR_LOGIN_SERVER", "127.0.0.1:70000", "port 70000 is out of range"),
    ("ACR_LOGIN_SERVER", "127.0.0.1:", "not a valid login server"),
    ("ACR_CREDENTIAL", "managed-identity", "is not one of default | anonymous"),
    ("ACR_AUDIENCE", "containerregistry.azure.net", "is not an https URL"),
    ("ACR_AUDIENCE", "http://containerregistry.azure.net", "is not an https URL"),
    ("ACR_CA_BUNDLE", "/nonexistent/ca.pem", "is not an existing file"),
    ("ACR_CA_BUNDLE", "/", "is not an existing file"),
    ("RETAG_SOURCE_TAGS", "latest,,stable", "has an empty element"),
    ("RETAG_SOURCE_TAGS", "latest,-x", "tag '-x' starts with '-'"),
    ("RETAG_SOURCE_TAGS", "latest,v 1", "not allowed in a tag"),
    ("RETAG_SOURCE_TAGS", "latest,latest", "listed more than once"),
    ("RETAG_SOURCE_TAGS", "a" * 129, "129 characters long"),
    ("RETAG_TAG_TEMPLATE", "{tag}", "neither {timestamp} nor {digest}"),
    ("RETAG_TAG_TEMPLATE", "{tag}_{ts}", "unknown field {ts}"),
    ("RETAG_TAG_TEMPLATE", "{tag}_{timestamp}_{digest:.5}", "format spec ':.5' on {digest}"),
    ("RETAG_TAG_TEMPLATE", "{tag}:{timestamp}", "literal text ':'"),
    ("RETAG_TAG_TEMPLATE", "{tag!r}{timestamp}", "conversion '!r'"),
    ("RETAG_REPOSITORIES", "team-a/(", "is not a valid regular expression"),
    ("RETAG_EXCLUDE_REPOSITORIES", "*", "is not a valid regular expression"),
    ("PRUNE_REPOSITORIES", "[a-", "is not a valid regular expression"),
    ("PRUNE_SCHEDULE", "0 3 * * *", "has 5 fields, not 6"),
    ("PRUNE_SCHEDULE", "00:05:00", "has 1 fields, not 6"),
    ("PRUNE_SCHEDULE", "60 0 3 * * *", "second field '60': 60 is out of range 0-59"),
    ("PRUNE_SCHEDULE", "0 60 3 * * *", "minute field '60'"),
    ("PRUNE_SCHEDULE", "0 0 24 * * *", "hour field '24'"),
    ("PRUNE_SCHEDULE", "0 0 3 0 * *", "day field '0': 0 is out of range 1-31"),
    ("PRUNE_SCHEDULE", "0 0 3 * 13 *", "month field '13'"),
    ("PRUNE_SCHEDULE", "0 0 3 * * 7", "day-of-week field '7'"),
    ("PRUNE_SCHEDULE", "0 0 3 * * Funday", "'Funday' is not a number"),
    ("PRUNE_SCHEDULE", "0 0 3 ? * *", "'?' is not a number"),
    ("PRUNE_SCHEDULE", "0 */0 * * * *", "step 0 is out of range"),
    ("PRUNE_SCHEDULE", "0 */x * * * *", "step 'x' is not a number"),
    ("PRUNE_SCHEDULE", "0 10-5 * * * *", "range 10-5 runs backwards"),
    ("PRUNE_SCHEDULE", "0 1,,2 * * * *", "empty list element"),
    ("PRUNE_SCHEDULE", "0 -5 * * * *", "empty range bound"),
    ("PRUNE_SCHEDULE", "%PRUNE_SCHEDULE%", "has 1 fields"),
    ("RECONCILE_SCHEDULE", "*/15 * * * *", "has 5 fields"),
    ("RECONCILE_SCHEDULE", "0 */15 * * * * *", "has 7 fields"),
    ("PRUNE_MODE", "yes", "is not one of off | dry-run | delete"),
    ("PRUNE_MODE", "dryrun", "is not one of off | dry-run | delete"),
    ("RECONCILE_MODE", "delete", "is not one of off | dry-run | apply"),
    ("PRUNE_SCOPE", "everything", "is not one of generated | all"),
    ("PRUNE_UNTAGGED", "1", "is not true or false"),
    ("PRUNE_UNTAGGED", "yes", "is not true or false"),
    ("PRUNE_KEEP", "-1", "is not a whole number from 0 to 100000"),
    ("PRUNE_KEEP", "ten", "is not a whole number"),
    ("PRUNE_KEEP", "1_0", "is not a whole number"),
    ("PRUNE_KEEP", "1.5", "is not a whole number"),
    ("PRUNE_KEEP", "٣", "is not a whole number"),  # Arabic-Indic digit three
    ("PRUNE_CONCURRENCY", "0", "is not a whole number from 1 to 64"),
    ("PRUNE_CONCURRENCY", "65", "is not a whole number from 1 to 64"),
    ("PRUNE_MIN_AGE", "7", "is not a duration; use a whole number followed by s, m, h or d"),
    ("PRUNE_MIN_AGE", "1w", "is not a duration"),
    ("PRUNE_MIN_AGE", "-1d", "is not a duration"),
    ("PRUNE_MIN_AGE", "1.5h", "is not a duration"),
    ("PRUNE_MIN_AGE", "7 d", "is not a duration"),
    ("PRUNE_MIN_AGE", "9999999999d", "is not a duration"),
    ("PRUNE_MIN_AGE", "999999999d", "is out of range 0s to 3650d"),
    ("PRUNE_MAX_DURATION", "0s", "is out of range 1s to 1d"),
    ("PRUNE_MAX_DURATION", "25h", "is out of range 1s to 1d"),
    ("RECONCILE_GRACE", "31d", "is out of range 0s to 30d"),
    ("RECONCILE_GRACE", "15", "is not a duration"),
    ("FLUX_RECEIVER_URL", "http://flux.example.com/hook/abc", "must be https (http only on"),
    ("FLUX_RECEIVER_URL", "https://user:pw@flux.example.com/hook", "is not an https URL"),
    ("FLUX_RECEIVER_URL", "https://flux.example.com/hook?token=x", "is not an https URL"),
    ("FLUX_RECEIVER_TOKEN", "short-secret", "is 12 characters long; use at least 16"),
    ("FLUX_RECEIVER_TOKEN", "a secret with spaces", "contains spaces"),
    ("RETAG_EVENTS_TOPIC", "ftp://topic.westeurope-1.eventgrid.azure.net", "is not an https URL"),
    ("RETAG_EVENTS_TOPIC", "http://topic.westeurope-1.eventgrid.azure.net/api/events", "https"),
    ("RETAG_SDK_LOG_LEVEL", "verbose", "is not one of debug | info | warning | error"),
]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [pytest.param(n, v, m, id=f"{n}={v[:30]}") for n, v, m in BAD_VALUES],
)
def test_bad_value_names_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load(**{name: value})
    assert info.value.setting == name
    assert str(info.value).startswith(f"{name}: ")
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_flux_receiver_url_and_token_come_together_and_the_token_is_never_shown() -> None:
    token = "s3cret-token-0123456789abcdef"
    with pytest.raises(SettingsError) as info:
        load(FLUX_RECEIVER_URL="https://flux.example.com/hook/abc")
    assert info.value.setting == "FLUX_RECEIVER_TOKEN"
    with pytest.raises(SettingsError) as info:
        load(FLUX_RECEIVER_TOKEN=token)
    assert info.value.setting == "FLUX_RECEIVER_URL"
    assert token not in str(info.value)
    with pytest.raises(SettingsError) as info:
        load(FLUX_RECEIVER_URL="https://flux.example.com/hook/abc", FLUX_RECEIVER_TOKEN="x y" * 9)
    assert "x y" not in str(info.value)
    settings = load(FLUX_RECEIVER_URL="http://127.0.0.1:9292/hook/abc", FLUX_RECEIVER_TOKEN=token)
    assert settings.notify.flux_receiver_url == "http://127.0.0.1:9292/hook/abc"
    assert settings.notify.flux_receiver_token == token
    assert token not in repr(settings)
    assert load().notify.flux_receiver_url is None
    assert load().notify.events_topic is None


def test_every_setting_has_a_bad_value_case() -> None:
    covered = {name for name, _, _ in BAD_VALUES}
    assert covered == {s.name for s in SETTINGS}


def test_errors_name_the_accepted_form() -> None:
    with pytest.raises(SettingsError, match=re.escape("'second minute hour day month")):
        load(PRUNE_SCHEDULE="0 3 * * *")
    with pytest.raises(SettingsError, match=re.escape("e.g. {tag}_{timestamp:ms}_{digest:.12}")):
        load(RETAG_TAG_TEMPLATE="{tag}")
    with pytest.raises(SettingsError, match="host\\[:port\\]"):
        load(ACR_LOGIN_SERVER="https://myregistry.azurecr.io")


def test_missing_environment_uses_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    with pytest.raises(SettingsError, match="ACR_LOGIN_SERVER: is required"):
        load_settings()
    monkeypatch.setenv("ACR_LOGIN_SERVER", "x.azurecr.io")
    assert load_settings().registry.login_server == "x.azurecr.io"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["0 */15 * * * *", "0 0 3 * * *", "*/5 * * * * *", "0 0 0 1 Jan *", "0 0 9-17/2 * * mon-fri"],
)
def test_valid_ncrontab(text: str) -> None:
    assert validate_ncrontab(text) == text


def test_setting_table_is_complete_and_unique() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.description for s in SETTINGS)
    assert [s.name for s in SETTINGS if s.default is None] == ["ACR_LOGIN_SERVER"]


def test_local_settings_example_lists_every_setting_with_its_default() -> None:
    example = json.loads((ROOT / "local.settings.json.example").read_text())
    assert example["IsEncrypted"] is False
    values: dict[str, str] = example["Values"]
    assert set(values) == {s.name for s in SETTINGS} | FUNCTIONS_SETTINGS
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    local = {
        "ACR_LOGIN_SERVER": "127.0.0.1:5443",
        "ACR_CREDENTIAL": "anonymous",
        "ACR_CA_BUNDLE": ".cache/emulator/ca.pem",
    }
    for setting in SETTINGS:
        assert values[setting.name] == local.get(setting.name, setting.default), setting.name
    # A working configuration once the emulator has written its CA (make emulator).
    settings = load_settings({**values, "ACR_CA_BUNDLE": ""})
    assert settings.registry.endpoint == "https://127.0.0.1:5443"
    assert settings.registry.credential == "anonymous"


def test_settings_doc_lists_every_setting_with_its_default() -> None:
    doc = (ROOT / "docs" / "settings.md").read_text()
    for setting in SETTINGS:
        default = "(required)" if setting.default is None else f"`{setting.default}`"
        if setting.default == "":
            default = "(empty)"
        assert f"| `{setting.name}` | {default} |" in doc, setting.name


# -- ACR_CA_BUNDLE is a PEM certificate bundle (issue 11) -----------------------------------------
def test_ca_bundle_of_several_certificates_is_accepted(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes() + trustme.CA().cert_pem.bytes())
    settings = load_settings({"ACR_LOGIN_SERVER": "r.azurecr.io", "ACR_CA_BUNDLE": str(bundle)})
    assert settings.registry.ca_bundle == str(bundle)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a certificate at all\n", "no BEGIN CERTIFICATE"),
        (b"", "no BEGIN CERTIFICATE"),
        (b"\x00\xff\xfe garbage", "no BEGIN CERTIFICATE"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "do not load"),
        (b"-----BEGIN CERTIFICATE-----\n", "do not load"),
    ],
    ids=["text", "empty", "binary", "bad-base64", "truncated"],
)
def test_ca_bundle_that_is_not_a_pem_certificate_bundle_fails_in_one_line(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(content)
    with pytest.raises(SettingsError) as caught:
        load_settings({"ACR_LOGIN_SERVER": "r.azurecr.io", "ACR_CA_BUNDLE": str(path)})
    message = str(caught.value)
    assert message.startswith(f"ACR_CA_BUNDLE: '{path}' is not a PEM certificate bundle")
    assert problem in message
    assert "leave it empty to use the system trust store" in message
    assert "\n" not in message


def test_ca_bundle_holding_only_a_private_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(trustme.CA().private_key_pem.bytes())
    with pytest.raises(SettingsError, match="not a PEM certificate bundle"):
        load_settings({"ACR_LOGIN_SERVER": "r.azurecr.io", "ACR_CA_BUNDLE": str(path)})
