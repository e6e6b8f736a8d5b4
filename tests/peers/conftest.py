"""Fixtures for Go peers (clients we did not write) driven against the emulator.

Authentication is ACR's `az acr login --expose-token` path: an AAD token is exchanged at
`POST /oauth2/exchange` for an ACR refresh token, which docker-style clients then present as the
password of the null-GUID user (Learn, "Authenticate with an Azure container registry", section
"az acr login with --expose-token": `docker login <server> --username
00000000-0000-0000-0000-000000000000 --password-stdin`). The emulator runs with anonymous access
off, so every request the peers make is authorised by that token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from emulator import Emulator
from tests.support.credentials import StaticTokenCredential
from tests.support.gotools import CONFORMANCE, CRANE, require_go_tool

NULL_GUID_USER = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="session")
def conformance_binary() -> Path:
    return require_go_tool(CONFORMANCE)


@pytest.fixture(scope="session")
def crane_binary() -> Path:
    return require_go_tool(CRANE)


@pytest.fixture(scope="module")
def acr() -> Iterator[Emulator]:
    with Emulator(anonymous=False) as emulator:
        yield emulator


def refresh_token(acr: Emulator) -> str:
    """What `az acr login --expose-token` prints: an ACR refresh token for an AAD identity."""
    aad = StaticTokenCredential().get_token("https://containerregistry.azure.net/.default").token
    answer = requests.post(
        acr.endpoint + "/oauth2/exchange",
        data={"grant_type": "access_token", "service": acr.login_server, "access_token": aad},
        verify=acr.ca_bundle,
        timeout=10,
    )
    answer.raise_for_status()
    token = answer.json()["refresh_token"]
    assert isinstance(token, str)
    assert token
    return token
