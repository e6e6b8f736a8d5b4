"""Fixtures for prune integration tests: a fresh emulator, the real adapter, a seeder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import Emulator
from retag.acr.client import AcrRegistry
from tests.prune.emulated import Seeder


@pytest.fixture
def acr() -> Iterator[Emulator]:
    with Emulator(anonymous=True) as emulator:
        yield emulator


@pytest.fixture
def registry(acr: Emulator) -> Iterator[AcrRegistry]:
    with AcrRegistry(
        acr.login_server,
        credential="anonymous",
        ca_bundle=acr.ca_bundle,
        retry_backoff_factor=0.05,
        deadline_seconds=10.0,
    ) as client:
        yield client


@pytest.fixture
def seed(acr: Emulator) -> Iterator[Seeder]:
    seeder = Seeder(acr)
    yield seeder
    seeder.close()
