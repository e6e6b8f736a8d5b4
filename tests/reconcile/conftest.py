"""Fixtures for reconciliation tests: the emulator (no subscribers, so every event is lost), the
real ACR adapter over TLS, settings for it, and a pusher that writes images over raw /v2."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from emulator import Emulator
from retag.acr.client import AcrRegistry
from retag.settings import Settings, load_settings
from tests.support.images import Image, V2Session, oci_image, push_image

START = datetime(2026, 11, 29, 23, 0, 0, tzinfo=UTC)


@pytest.fixture
def acr() -> Iterator[Emulator]:
    """A fresh emulator whose clock starts at START; no subscribers: events go nowhere."""
    with Emulator() as emulator:
        emulator.set_clock(START)
        yield emulator


def make_registry(acr: Emulator, **options: Any) -> AcrRegistry:
    return AcrRegistry(acr.login_server, credential="anonymous", ca_bundle=acr.ca_bundle, **options)


@pytest.fixture
def registry(acr: Emulator) -> Iterator[AcrRegistry]:
    with make_registry(acr) as adapter:
        yield adapter


def make_settings(acr: Emulator, **env: str) -> Settings:
    """Settings for the emulator; keyword names are env var names (RECONCILE_GRACE="5m")."""
    return load_settings(
        {
            "ACR_LOGIN_SERVER": acr.login_server,
            "ACR_CREDENTIAL": "anonymous",
            "ACR_CA_BUNDLE": acr.ca_bundle,
            **env,
        }
    )


@dataclass
class Pusher:
    acr: Emulator
    session: V2Session
    seed: int = 0
    images: dict[str, Image] = field(default_factory=dict)

    def push(self, repository: str, tag: str = "latest", image: Image | None = None) -> str:
        """Push a new image (or `image`) to repository:tag over /v2; returns its digest."""
        if image is None:
            self.seed += 1
            image = oci_image(seed=self.seed)
        digest = push_image(
            self.acr.endpoint, repository, image, tag, verify=self.acr.ca_bundle,
            session=self.session,
        )  # fmt: skip
        self.images[digest] = image
        self._logged("PUT", f"/v2/{repository}/manifests/{tag}", 201)
        return digest

    def _logged(self, method: str, path: str, status: int = 200) -> None:
        """Wait until the emulator has logged our request (it logs after answering), so a later
        `clear_requests()` cannot race with it."""
        deadline = time.monotonic() + 5
        while not any(
            (e["method"], e["path"], e["status"]) == (method, path, status)
            for e in self.acr.requests()
        ):
            assert time.monotonic() < deadline, f"{method} {path} never logged"
            time.sleep(0.005)

    def lock_repository(self, repository: str) -> None:
        """ACR's repository lock: writeEnabled=false (PATCH /acr/v1/<repository>)."""
        answer = self.session.request(
            "PATCH", f"/acr/v1/{repository}", json={"writeEnabled": False}
        )
        assert answer.status_code == 200, answer.text
        self._logged("PATCH", f"/acr/v1/{repository}")

    def lock_tag(self, repository: str, tag: str) -> None:
        answer = self.session.request(
            "PATCH",
            f"/acr/v1/{repository}/_tags/{tag}",
            json={"writeEnabled": False, "deleteEnabled": False},
        )
        assert answer.status_code == 200, answer.text
        self._logged("PATCH", f"/acr/v1/{repository}/_tags/{tag}")


@pytest.fixture
def pusher(acr: Emulator) -> Iterator[Pusher]:
    with V2Session(acr.endpoint, verify=acr.ca_bundle) as session:
        yield Pusher(acr, session)


def tags_of(acr: Emulator, registry: AcrRegistry, repository: str) -> dict[str, str]:
    """Every tag of `repository` -> digest (read through the adapter; clears nothing)."""
    return {tag.name: tag.digest for tag in registry.list_tags(repository)}


def writes(acr: Emulator) -> list[dict[str, Any]]:
    """Requests in the emulator log that could change registry state."""
    return [
        entry
        for entry in acr.requests()
        if entry["method"] in ("PUT", "PATCH", "DELETE", "POST")
        and not entry["path"].startswith("/oauth2/")
    ]
