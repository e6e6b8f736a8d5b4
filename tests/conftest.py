"""Suite-wide test configuration.

Hypothesis: under CI (`CI=true`, as `.ci/run` runs) the property tests are derandomized, so a
submission's result depends on its code, not on the seed a run happened to draw; locally every
run explores new examples. Either way a failure prints the example that reproduces it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings

from emulator import Emulator

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in {"1", "true"} else "dev")


# -- the shared fixtures: one emulator, one registry adapter (directories reuse these) ---------
# A directory that needs other adapter options overrides `registry_options`; one that shares an
# emulator per module overrides `acr` with `module_acr`.


@pytest.fixture
def acr() -> Iterator[Emulator]:
    """A fresh emulator (anonymous access, in-process, HTTPS on loopback)."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def module_acr() -> Iterator[Emulator]:
    """One emulator for a whole test module (anonymous access)."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def registry_options() -> dict[str, Any]:
    """Keyword arguments of the `registry` adapter beyond login server, credential and CA."""
    return {}


@pytest.fixture
def registry(acr: Emulator, registry_options: dict[str, Any]) -> Iterator[Any]:
    """The product's registry adapter (`retag.acr.client.AcrRegistry`) on `acr`, anonymous."""
    from retag.acr.client import AcrRegistry

    with AcrRegistry(
        acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, **registry_options
    ) as adapter:
        yield adapter
