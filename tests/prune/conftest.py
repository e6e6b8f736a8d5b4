"""Fixtures for prune integration tests: a fresh emulator, the real adapter, a seeder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulator import Emulator
from tests.prune.emulated import Seeder


@pytest.fixture
def registry_options() -> dict[str, Any]:
    return {"retry_backoff_factor": 0.05, "deadline_seconds": 10.0}


@pytest.fixture
def seed(acr: Emulator) -> Iterator[Seeder]:
    seeder = Seeder(acr)
    yield seeder
    seeder.close()
