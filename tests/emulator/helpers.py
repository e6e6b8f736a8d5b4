"""Helpers for the emulator tests: a real TokenCredential and raw HTTP helpers."""

from __future__ import annotations

import secrets
import time
from typing import Any

import requests
from azure.core.credentials import AccessToken

from emulator import Emulator
from tests.support import images


class StaticTokenCredential:
    """A real `azure.core.credentials.TokenCredential`: hands out a fixed AAD-looking token.

    The emulator accepts any non-empty AAD token at /oauth2/exchange (there is no Azure AD here),
    so this drives the SDK's full credential flow: AAD token -> refresh token -> access token.
    """

    def __init__(self, token: str = "aad.token.value") -> None:
        self.token = token
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


def unique_repo(prefix: str = "repo") -> str:
    return f"test/{prefix}-{secrets.token_hex(4)}"


def push(acr: Emulator, repository: str, image: images.Image, tag: str | None = None) -> str:
    return images.push_image(acr.endpoint, repository, image, tag, verify=acr.ca_bundle)


# What real clients send for manifests (the Python SDK's list): the emulator, like ACR, answers
# 404 MANIFEST_UNKNOWN to an OCI manifest/index GET whose Accept does not list the OCI type.
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


def raw(
    acr: Emulator,
    method: str,
    path: str,
    *,
    scope: str | None = None,
    token: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One raw HTTPS request; with `scope`, first fetch an anonymous access token for it.

    Manifest GET/HEADs get `Accept: MANIFEST_ACCEPT` unless the caller passes an Accept."""
    headers = dict(kwargs.pop("headers", {}) or {})
    if "/manifests/" in path and method in ("GET", "HEAD"):
        headers.setdefault("Accept", MANIFEST_ACCEPT)
    if scope is not None:
        token = anonymous_token(acr, scope)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(
        method, acr.endpoint + path, headers=headers, verify=acr.ca_bundle, timeout=10, **kwargs
    )


def anonymous_token(acr: Emulator, scope: str) -> str:
    answer = requests.post(
        acr.endpoint + "/oauth2/token",
        data={"grant_type": "password", "service": acr.login_server, "scope": scope},
        verify=acr.ca_bundle,
        timeout=10,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def admin(acr: Emulator, method: str, what: str, json: Any = None) -> requests.Response:
    return requests.request(
        method, f"{acr.endpoint}/_emulator/{what}", json=json, verify=acr.ca_bundle, timeout=10
    )
