"""The re-tag write against a real registry: Debian's docker-registry (CNCF distribution) over TLS.

Distribution has no ACR metadata API (the event path reads ACR's `_tags?digest=` to tell a new
push from a duplicate) and emits no Event Grid events, so this drives the write itself,
`retag.tagging.add_generated_tag` (GET by digest, PUT the same bytes under the generated tag),
through the real adapter and SDK: it only uses the OCI distribution API, and must keep the digest
on a real registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from retag.acr.client import AcrRegistry
from retag.tagging import add_generated_tag
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


@pytest.fixture
def registry(distribution: Distribution) -> Iterator[AcrRegistry]:
    with AcrRegistry(
        distribution.login_server, credential="anonymous", ca_bundle=distribution.ca_bundle
    ) as adapter:
        yield adapter


@pytest.mark.parametrize(
    "make_image",
    [docker_image, docker_manifest_list, oci_image, oci_index],
    ids=["docker-v2", "docker-list", "oci-manifest", "oci-index"],
)
def test_retag_on_a_real_registry_keeps_the_digest(
    distribution: Distribution, registry: AcrRegistry, make_image: Callable[[], Image]
) -> None:
    image = make_image()
    push_image(distribution.endpoint, REPO, image, tag="latest", verify=distribution.ca_bundle)
    new_tag = f"latest_20261129230700123_{image.digest.removeprefix('sha256:')[:12]}"

    assert add_generated_tag(registry, REPO, image.digest, new_tag, check_existing=True) == new_tag

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
