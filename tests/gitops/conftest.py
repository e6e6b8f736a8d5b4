"""One emulator per test module (fresh repositories per test), the real SDK as the observer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from retag.tagging import _RECENT
from tests.gitops.world import observer


@pytest.fixture(scope="module")
def shared_acr() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def sdk(shared_acr: Emulator) -> Iterator[ContainerRegistryClient]:
    with observer(shared_acr) as client:
        yield client


@pytest.fixture(autouse=True)
def _new_functions_instance() -> None:
    """Each test starts as a fresh Functions instance: no memory of what it tagged."""
    _RECENT.clear()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "settings(**env): app settings for the test's function_app (tests/gitops)"
    )
