"""Fixtures for the emulator tests: a running emulator and real SDK clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from tests.emulator.helpers import StaticTokenCredential


@pytest.fixture(scope="module")
def acr(module_acr: Emulator) -> Emulator:
    """One emulator per test module (the shared `module_acr`)."""
    return module_acr


@pytest.fixture(params=["anonymous", "credential"])
def credential(request: pytest.FixtureRequest) -> StaticTokenCredential | None:
    return None if request.param == "anonymous" else StaticTokenCredential()


ClientFactory = Callable[..., ContainerRegistryClient]


@pytest.fixture
def make_client(acr: Emulator) -> Iterator[ClientFactory]:
    made: list[ContainerRegistryClient] = []

    def make(credential: Any = None, emulator: Emulator | None = None, **kwargs: Any) -> Any:
        target = emulator or acr
        kwargs.setdefault("connection_timeout", 5)
        kwargs.setdefault("read_timeout", 10)
        client = ContainerRegistryClient(
            target.endpoint, credential, connection_verify=target.ca_bundle, **kwargs
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
