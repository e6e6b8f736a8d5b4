"""Fixtures for the sweep engine: a fresh emulator and the real adapter (no adapter retries, so
every 429/503 the emulator injects reaches the sweep as a `TransientRegistryError`)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import Emulator
from tests.support.images import V2Session, docker_image, push_image


@pytest.fixture
def registry_options() -> dict[str, Any]:
    return {"retry_total": 0}  # the sweep is the retry layer under test here


def seed(acr: Emulator, names: list[str]) -> None:
    """One small image tagged `latest` in each repository."""
    with V2Session(acr.endpoint, verify=acr.ca_bundle) as session:
        for i, name in enumerate(names):
            image = docker_image(seed=500 + i, layer_size=16)
            push_image(acr.endpoint, name, image, "latest", verify=acr.ca_bundle, session=session)
