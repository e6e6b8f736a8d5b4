"""Fixtures for the sweep engine: a fresh emulator and the real adapter (no adapter retries, so
every 429/503 the emulator injects reaches the sweep as a `TransientRegistryError`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import Emulator
from retag.acr.client import AcrRegistry
from tests.support.images import V2Session, docker_image, push_image


@pytest.fixture
def acr() -> Iterator[Emulator]:
    with Emulator(anonymous=True) as emulator:
        yield emulator


@pytest.fixture
def registry(acr: Emulator) -> Iterator[AcrRegistry]:
    with AcrRegistry(
        acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, retry_total=0
    ) as client:
        yield client


def seed(acr: Emulator, names: list[str]) -> None:
    """One small image tagged `latest` in each repository."""
    with V2Session(acr.endpoint, verify=acr.ca_bundle) as session:
        for i, name in enumerate(names):
            image = docker_image(seed=500 + i, layer_size=16)
            push_image(acr.endpoint, name, image, "latest", verify=acr.ca_bundle, session=session)
