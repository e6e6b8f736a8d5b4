"""Fixtures for differential tests: the reference registry and the emulator, as `Target`s."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.differential.harness import Target
from tests.support.distribution import Distribution, distribution

__all__ = ["distribution"]


@pytest.fixture(scope="session")
def distribution_target(distribution: Distribution) -> Target:
    return Target(
        name="distribution",
        endpoint=distribution.endpoint,
        login_server=distribution.login_server,
        ca_bundle=distribution.ca_bundle,
        cert_dir=distribution.cert_dir,
    )


@pytest.fixture(scope="session")
def emulator_acr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The emulator in anonymous mode (pull and push with an anonymous token, like skopeo does)."""
    emulator = pytest.importorskip("emulator")
    with emulator.Emulator(anonymous=True) as acr:
        yield acr


@pytest.fixture(scope="session")
def emulator_target(emulator_acr: Any, tmp_path_factory: pytest.TempPathFactory) -> Target:
    cert_dir = tmp_path_factory.mktemp("emulator-certs")
    shutil.copyfile(emulator_acr.ca_bundle, cert_dir / "ca.crt")
    return Target(
        name="emulator",
        endpoint=emulator_acr.endpoint,
        login_server=emulator_acr.login_server,
        ca_bundle=emulator_acr.ca_bundle,
        cert_dir=str(cert_dir),
    )


@pytest.fixture(scope="session")
def targets(distribution_target: Target, request: pytest.FixtureRequest) -> dict[str, Target]:
    """Every registry the differential tests compare: the reference first, then the emulator."""
    found = {"distribution": distribution_target}
    # Until the emulator branch is merged, compare the reference with itself only.
    with contextlib.suppress(pytest.skip.Exception):
        found["emulator"] = request.getfixturevalue("emulator_target")
    return found
