"""Pure helpers of retag.acr: JWT expiry, challenge parsing, scope derivation, roles, listings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from retag.acr.client import (
    AcrRegistry,
    _environment_settings,
    _next_link,
    _normalise_login_server,
    _redact,
    classify_request,
    jwt_expiry,
    jwt_lifetime,
    manifest_info_from_json,
    parse_bearer_challenge,
    required_role,
)
from retag.registry import RegistryError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: Any, *, header: Any = None) -> str:
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    return f"{head}.{b64url(json.dumps(claims).encode())}.{b64url(b'signature-bytes')}"


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


# -- roles ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "role"),
    [
        ("pull", "AcrPull"),
        ("metadata_read", "AcrPull"),
        ("repository:app:pull", "AcrPull"),
        ("push", "AcrPush"),
        ("repository:app:pull,push", "AcrPush"),
        ("metadata_write", "AcrPush"),
        ("delete", "AcrDelete"),
        ("repository:app:delete", "AcrDelete"),
        ("registry:catalog:*", "Catalog Lister"),
        ("catalog", "Catalog Lister"),
    ],
)
def test_required_role(action: str, role: str) -> None:
    assert role in required_role(action)


# -- listings -------------------------------------------------------------------------------------
DIGEST = "sha256:" + "a" * 64
CHILD = "sha256:" + "b" * 64


def test_manifest_info_from_acr_listing_entry() -> None:
    info = manifest_info_from_json(
        {
            "digest": DIGEST,
            "imageSize": 1234,
            "createdTime": "2026-01-02T03:04:05.1234567Z",
            "lastUpdateTime": "2026-01-03T00:00:00Z",
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "tags": ["latest", "v1"],
            "references": [{"digest": CHILD, "architecture": "amd64", "os": "linux"}],
            "changeableAttributes": {"deleteEnabled": False, "writeEnabled": True},
        }
    )
    assert info.digest == DIGEST
    assert info.size == 1234
    assert info.tags == ("latest", "v1")
    assert info.references == (CHILD,)
    assert info.media_type == "application/vnd.oci.image.index.v1+json"
    assert info.created_on == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert info.last_updated_on.tzinfo == UTC
    assert not info.can_delete
    assert info.can_write
    assert info.locked
    assert not info.has_subject


def test_manifest_info_subject_and_defaults() -> None:
    info = manifest_info_from_json(
        {
            "digest": DIGEST,
            "createdTime": "2026-01-02T03:04:05",
            "lastUpdateTime": "2026-01-02T03:04:05",
            "subject": {"digest": CHILD},
            "tags": None,
            "references": "nonsense",
            "imageSize": True,
        }
    )
    assert info.has_subject
    assert info.tags == ()
    assert info.references == ()
    assert info.size is None
    assert info.media_type is None
    assert info.can_delete
    assert info.can_write
    assert not info.locked
    assert info.created_on.tzinfo == UTC


@pytest.mark.parametrize(
    "entry",
    [
        {"createdTime": "2026-01-01T00:00:00Z", "lastUpdateTime": "2026-01-01T00:00:00Z"},
        {"digest": DIGEST, "lastUpdateTime": "2026-01-01T00:00:00Z"},
        {"digest": DIGEST, "createdTime": "yesterday", "lastUpdateTime": "2026-01-01T00:00:00Z"},
    ],
)
def test_malformed_listing_entries_raise_registry_error(entry: dict[str, Any]) -> None:
    with pytest.raises(RegistryError):
        manifest_info_from_json(entry)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ('</acr/v1/a/_tags?last=x&n=100>; rel="next"', "/acr/v1/a/_tags?last=x&n=100"),
        ("</acr/v1/a/_tags?last=x&n=100>; rel=next", "/acr/v1/a/_tags?last=x&n=100"),
        ('<https://r/x?n=1>; rel="prev", <https://r/y?n=1>; rel="next"', "https://r/y?n=1"),
        ('<https://r/x?n=1>; rel="prev"', None),
    ],
)
def test_next_link(header: str | None, expected: str | None) -> None:
    assert _next_link(header) == expected


# -- login server, redaction, constructor validation ----------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("myreg.azurecr.io", "myreg.azurecr.io"),
        ("https://MyReg.azurecr.io/", "myreg.azurecr.io"),
        ("127.0.0.1:5443", "127.0.0.1:5443"),
    ],
)
def test_login_server_normalised(value: str, expected: str) -> None:
    assert _normalise_login_server(value) == expected


@pytest.mark.parametrize(
    "value", ["", "http://myreg.azurecr.io", "myreg.azurecr.io/app", "my reg", "u@myreg.io"]
)
def test_bad_login_servers_are_rejected_clearly(value: str) -> None:
    with pytest.raises(ValueError, match="login server"):
        _normalise_login_server(value)


def test_redact_removes_token_shaped_text() -> None:
    token = jwt({"exp": 1, "sub": "someone"})
    assert token not in _redact(f"rejected token {token} for scope")
    assert "<redacted>" in _redact(f"Bearer {token}")
    assert _redact("repository:team/app:pull") == "repository:team/app:pull"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"credential": "managed"}, "credential must be"),
        ({"credential": object()}, "credential must be"),
        ({"credential": "anonymous", "read_timeout": 0}, "read_timeout"),
        ({"credential": "anonymous", "deadline_seconds": -1}, "deadline_seconds"),
        ({"credential": "anonymous", "retry_total": -1}, "retry_total"),
    ],
)
def test_constructor_validates_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AcrRegistry("127.0.0.1:1", **kwargs)


# -- environment (resolved once per adapter) ------------------------------------------------------
def test_environment_settings_explicit_bundle_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/bundle.pem")
    assert _environment_settings("r.azurecr.io", "/mine.pem")[0] == "/mine.pem"
    assert _environment_settings("r.azurecr.io", None)[0] == "/env/bundle.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert _environment_settings("r.azurecr.io", None)[0] is True


def test_environment_settings_proxies_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert _environment_settings("r.azurecr.io", None)[1] == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert _environment_settings("r.azurecr.io", None)[1] == {"https": "http://proxy.example:3128"}
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.azurecr.io")
    assert _environment_settings("r.azurecr.io", None)[1] == {}
    assert _environment_settings("127.0.0.1:5443", None)[1] == {}
    assert _environment_settings("other.example", None)[1] != {}


def test_default_credential_is_built_without_network() -> None:
    from azure.identity import DefaultAzureCredential

    registry = AcrRegistry("myregistry.azurecr.io", credential="default")
    assert isinstance(registry._authenticator._credential, DefaultAzureCredential)
    assert registry.requests_made == 0
    assert registry.endpoint == "https://myregistry.azurecr.io"
    registry.close()
