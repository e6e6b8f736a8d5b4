"""`on_image_pushed` against a real registry: Debian's docker-registry (CNCF distribution) over TLS.

Distribution has no ACR metadata API and emits no Event Grid events, so the event is written here
in ACR's shape for a real push; the re-tag itself (GET by digest, PUT the same bytes under the
generated tag) only uses the OCI distribution API, and must keep the digest on a real registry.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulator.functions_host import FunctionsHost
from tests.support.distribution import Distribution, distribution
from tests.support.images import (
    ACCEPT_ALL_MANIFESTS,
    Image,
    docker_image,
    docker_manifest_list,
    oci_image,
    oci_index,
    push_image,
)

__all__ = ["distribution"]

REPO = "team/app"
PUSHED_AT = "2026-11-29T23:07:00.1234567Z"
TOPIC = "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerRegistry/registries/z"


def image_pushed(registry: Distribution, image: Image, tag: str = "latest") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": TOPIC,
        "subject": f"{REPO}:{tag}",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": PUSHED_AT,
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "data": {
            "id": str(uuid.uuid4()),
            "timestamp": PUSHED_AT,
            "action": "push",
            "target": {
                "mediaType": image.media_type,
                "size": len(image.raw),
                "digest": image.digest,
                "length": len(image.raw),
                "repository": REPO,
                "tag": tag,
            },
            "request": {
                "id": str(uuid.uuid4()),
                "host": registry.login_server,
                "method": "PUT",
                "useragent": "skopeo/1.13",
            },
        },
    }


@pytest.fixture
def host(distribution: Distribution, monkeypatch: pytest.MonkeyPatch) -> FunctionsHost:
    for name, value in {
        "ACR_LOGIN_SERVER": distribution.login_server,
        "ACR_CREDENTIAL": "anonymous",
        "ACR_CA_BUNDLE": distribution.ca_bundle,
    }.items():
        monkeypatch.setenv(name, value)
    import function_app

    return FunctionsHost(importlib.reload(function_app).app)


@pytest.mark.parametrize(
    "make_image",
    [docker_image, docker_manifest_list, oci_image, oci_index],
    ids=["docker-v2", "docker-list", "oci-manifest", "oci-index"],
)
def test_retag_on_a_real_registry_keeps_the_digest(
    distribution: Distribution, host: FunctionsHost, make_image: Callable[[], Image]
) -> None:
    image = make_image()
    push_image(distribution.endpoint, REPO, image, tag="latest", verify=distribution.ca_bundle)
    event = image_pushed(distribution, image)

    result = host.deliver_event_grid(
        "on_image_pushed", json.dumps([event]).encode(), "Notification"
    )

    assert result.status == 200, result.invocations
    new_tag = f"latest_20261129230700_{image.digest.removeprefix('sha256:')[:12]}"
    got = requests.get(
        f"{distribution.endpoint}/v2/{REPO}/manifests/{new_tag}",
        headers={"Accept": ACCEPT_ALL_MANIFESTS},
        verify=distribution.ca_bundle,
        timeout=10,
    )
    assert got.status_code == 200
    assert got.headers["Docker-Content-Digest"] == image.digest
    assert got.content == image.raw
    tags = requests.get(
        f"{distribution.endpoint}/v2/{REPO}/tags/list", verify=distribution.ca_bundle, timeout=10
    ).json()["tags"]
    assert new_tag in tags
    assert "latest" in tags
