"""At least 50 concurrent clients, each with its own TLS connection, all answered correctly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from emulator import Emulator
from tests.emulator.helpers import unique_repo
from tests.support import images

CLIENTS = 50


def test_fifty_concurrent_clients(acr: Emulator) -> None:
    repo = unique_repo("concurrent")
    base = images.oci_image(seed=1)
    images.push_image(acr.endpoint, repo, base, "base", verify=acr.ca_bundle)
    barrier = threading.Barrier(CLIENTS, timeout=30)

    def client(number: int) -> tuple[int, str]:
        with images.V2Session(acr.endpoint, verify=acr.ca_bundle) as session:
            session.request("GET", f"/v2/{repo}/manifests/base")  # connect + token first
            barrier.wait()  # then all 50 connections are open and busy at once
            put = session.put_manifest(repo, f"t{number}", base.raw, base.media_type)
            got = session.get_manifest(repo, f"t{number}")
            assert got.content == base.raw
            return put.status_code, got.headers["Docker-Content-Digest"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    assert results == [(201, base.digest)] * CLIENTS
    for number in range(CLIENTS):
        assert acr.tag_digest(repo, f"t{number}") == base.digest
