"""Fixtures for differential tests: the reference registry and the emulator, as `Target`s."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from emulator import Emulator
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
def emulator_acr() -> Iterator[Emulator]:
    """The emulator in anonymous mode (pull and push with an anonymous token, like skopeo does)."""
    with Emulator(anonymous=True) as acr:
        yield acr


@pytest.fixture(scope="session")
def emulator_target(emulator_acr: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Target:
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
def targets(distribution_target: Target, emulator_target: Target) -> dict[str, Target]:
    """Every registry the differential tests compare: the reference first, then the emulator."""
    return {"distribution": distribution_target, "emulator": emulator_target}
