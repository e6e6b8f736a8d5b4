"""Fixtures for the ACR adapter tests: a fresh emulator per test (cheap: ~0.2 s), adapters."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.containerregistry import ContainerRegistryClient

from emulator import Emulator
from retag.acr.client import AcrRegistry
from tests.support import images

_counter = itertools.count()


@pytest.fixture
def registry_options() -> dict[str, Any]:
    return {"retry_backoff_factor": 0.01}  # the shared `registry`, with quick back-off


@pytest.fixture
def warm(acr: Emulator, repo: str) -> Iterator[tuple[AcrRegistry, images.Image]]:
    """An adapter with its pull and metadata_read tokens cached (`repo:latest` pushed), so
    faults hit the registry call itself; a short deadline and quick retries."""
    image = images.oci_image(seed=1)
    images.push_image(acr.endpoint, repo, image, "latest", verify=acr.ca_bundle)
    registry = AcrRegistry(
        acr.login_server,
        credential="anonymous",
        ca_bundle=acr.ca_bundle,
        retry_total=3,
        retry_backoff_factor=0.01,
        read_timeout=2.0,
        deadline_seconds=5.0,
    )
    registry.get_manifest(repo, image.digest)
    registry.get_tag(repo, "latest")
    clear(acr)
    yield registry, image
    acr.clear_faults()
    registry.close()


@pytest.fixture
def sdk(acr: Emulator) -> Iterator[ContainerRegistryClient]:
    """The bare SDK client against the emulator (to compare with, or to lock items as
    `az acr repository update --write-enabled false` does)."""
    client = ContainerRegistryClient(acr.endpoint, None, connection_verify=acr.ca_bundle)
    yield client
    client.close()


@pytest.fixture
def repo() -> str:
    return f"team{next(_counter)}/app"


def push(acr: Emulator, repo: str, image: images.Image, tag: str | None = None) -> str:
    """Push `image` with the plain OCI client of `tests.support.images` (not the adapter)."""
    return images.push_image(acr.endpoint, repo, image, tag, verify=acr.ca_bundle)


def logged(acr: Emulator, expected: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The emulator's request log once it holds `expected` entries (it records each entry just
    after answering, so the last one can lag the client by a moment)."""
    deadline = time.monotonic() + timeout
    entries = acr.requests()
    while len(entries) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
        entries = acr.requests()
    time.sleep(0.05)  # and nothing more arrives
    return acr.requests()


def clear(acr: Emulator) -> None:
    """Empty the request log once the previous answers are all recorded (see `logged`)."""
    count = -1
    while count != len(acr.requests()):
        count = len(acr.requests())
        time.sleep(0.05)
    acr.clear_requests()


def summary(entries: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["method"], e["path"], e["status"]) for e in entries]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: Any, *, header: Any = None) -> str:
    """An unsigned-looking JWT with `claims` (the adapter decodes, never verifies, tokens)."""
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    return f"{head}.{b64url(json.dumps(claims).encode())}.{b64url(b'signature-bytes')}"
