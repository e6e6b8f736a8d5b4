"""Fixtures for the fidelity facts: the emulator fixtures of tests/emulator, reused as they are,
plus an emulator configured like a real registry with anonymous pull enabled."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from emulator import Emulator
from tests.emulator.conftest import acr, make_client  # noqa: F401 - fixtures, reused

GO = "Azure/azure-sdk-for-go sdk/containers/azcontainerregistry/testdata/recordings"
JS = "Azure/azure-sdk-for-js sdk/containerregistry/container-registry/recordings"
PY = "Azure/azure-sdk-for-python sdk/containerregistry/azure-containerregistry/tests/recordings"


@pytest.fixture(scope="module")
def anonymous_pull() -> Iterator[Emulator]:
    """ACR with anonymous pull enabled: anonymous tokens get pull (and metadata_read) only."""
    with Emulator(anonymous_actions=("pull",)) as emulator:
        yield emulator


@contextlib.contextmanager
def writable(emulator: Emulator) -> Iterator[None]:
    """Let anonymous clients write for a moment (to seed content), then restore the setting."""
    tokens = emulator.registry.tokens
    saved = tokens.anonymous_actions
    tokens.anonymous_actions = None
    try:
        yield
    finally:
        tokens.anonymous_actions = saved
