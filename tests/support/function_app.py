"""Load `function_app` as a fresh worker would (settings from the environment), behind the host.

For suites that need the app for a whole module (one emulator per module): the pytest
`monkeypatch` fixture is per test, so this uses `pytest.MonkeyPatch.context()` and restores the
environment when the block ends.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

import pytest

from emulator import Emulator
from emulator.functions_host import DeliveryResult, FunctionsHost


@dataclass(frozen=True)
class LoadedApp:
    module: ModuleType
    host: FunctionsHost

    def deliver(self, body: bytes) -> DeliveryResult:
        """One Event Grid webhook POST (`aeg-event-type: Notification`) to `on_image_pushed`."""
        return self.host.deliver_event_grid("on_image_pushed", body, "Notification")


def emulator_settings(acr: Emulator, **overrides: str) -> dict[str, str]:
    return {
        "ACR_LOGIN_SERVER": acr.login_server,
        "ACR_CREDENTIAL": "anonymous",
        "ACR_CA_BUNDLE": acr.ca_bundle,
        **overrides,
    }


def load_function_app(acr: Emulator, patch: pytest.MonkeyPatch, **overrides: str) -> LoadedApp:
    """THE way tests load the app: `function_app` reloaded with the emulator's settings (plus
    `overrides`) set through `patch`, indexed by the Functions host stand-in."""
    for name, value in emulator_settings(acr, **overrides).items():
        patch.setenv(name, value)
    import function_app

    module = importlib.reload(function_app)
    return LoadedApp(module, FunctionsHost(module.app))


@contextmanager
def loaded_function_app(acr: Emulator, **overrides: str) -> Iterator[LoadedApp]:
    """`load_function_app` for a block (a whole module, a state machine); the environment is
    restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        yield load_function_app(acr, patch, **overrides)
