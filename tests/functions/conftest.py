"""Fixtures: the emulator, and `function_app` loaded as a worker would load it, behind the host."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from emulator import Emulator
from emulator.functions_host import DeliveryResult, FunctionsHost
from tests.support.function_app import load_function_app
from tests.support.images import Image, push_image


class App:
    """`function_app` behind the host stand-in, with helpers to push images and deliver events."""

    def __init__(self, acr: Emulator, host: FunctionsHost, module: Any) -> None:
        self.acr = acr
        self.host = host
        self.module = module
        self._registry: Any = None

    def push(self, repository: str, image: Image, tag: str | None = "latest") -> dict[str, Any]:
        """Push through /v2 and return the ImagePushed event the emulator emitted for it."""
        before = len(self.acr.events())
        push_image(self.acr.endpoint, repository, image, tag=tag, verify=self.acr.ca_bundle)
        emitted = [
            event
            for event in self.acr.events()[before:]
            if event["eventType"] == "Microsoft.ContainerRegistry.ImagePushed"
            and event["data"]["target"]["digest"] == image.digest
        ]
        assert emitted, "the emulator emitted no ImagePushed for the push"
        return copy.deepcopy(emitted[-1])

    def deliver(self, *events: Any, header: str = "Notification") -> DeliveryResult:
        body = json.dumps(list(events)).encode()
        return self.host.deliver_event_grid("on_image_pushed", body, header)

    def writes(self) -> list[dict[str, Any]]:
        """Requests in the emulator log that change state (PUT/PATCH/POST/DELETE on /v2, /acr)."""
        return [
            r
            for r in self.acr.requests()
            if r["method"] in {"PUT", "PATCH", "DELETE", "POST"}
            and not r["path"].startswith("/oauth2/")
        ]

    def tags_on(self, repository: str, digest: str) -> set[str]:
        registry = self.registry()
        return {t.name for t in registry.list_tags(repository) if t.digest == digest}

    def registry(self) -> Any:
        """The test's own client (not the Function's): built once, so checks reuse its tokens."""
        if self._registry is None:
            from retag.acr.client import AcrRegistry

            self._registry = AcrRegistry(
                self.acr.login_server, credential="anonymous", ca_bundle=self.acr.ca_bundle
            )
        return self._registry


@pytest.fixture
def make_app(acr: Emulator, monkeypatch: pytest.MonkeyPatch) -> Callable[..., App]:
    """Load function_app with the emulator's settings (plus overrides), as a fresh worker would."""

    def make(**overrides: str) -> App:
        loaded = load_function_app(acr, monkeypatch, **overrides)
        return App(acr, loaded.host, loaded.module)

    return make


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app()


@pytest.fixture
def outcome_lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    caplog.set_level(logging.INFO, logger="acr-retag")

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("acr-retag ")]

    return lines
