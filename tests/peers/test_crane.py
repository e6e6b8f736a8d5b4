"""`crane` (github.com/google/go-containerregistry/cmd/crane v0.22.1) against the emulator.

crane is the reference for "re-tag without moving layers" (design notes §3: `crane tag` is a few
lines over go-containerregistry's `remote`). It logs in the way `az acr login --expose-token`
prescribes (the null-GUID user, an ACR refresh token as password: see conftest), stored by
`crane auth login` in a temporary DOCKER_CONFIG; its bearer transport then runs the docker token
protocol (`GET /oauth2/token` with Basic auth, one `scope` parameter per repository).
Each command is checked against the emulator's state and its request log.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from tests.peers.conftest import NULL_GUID_USER, refresh_token
from tests.support import images

_counter = iter(range(1_000_000))


@dataclass(frozen=True)
class Crane:
    binary: Path
    env: dict[str, str]
    registry: str  # login server, e.g. 127.0.0.1:PORT

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [str(self.binary), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"crane {' '.join(args)} failed:\n{done.stderr[-2000:]}"
        return done.stdout

    def ref(self, repository: str, reference: str = "") -> str:
        separator = "@" if reference.startswith("sha256:") else ":"
        return f"{self.registry}/{repository}{separator + reference if reference else ''}"


@pytest.fixture(scope="module")
def token(acr: Emulator) -> str:
    return refresh_token(acr)


@pytest.fixture(scope="module")
def crane(
    crane_binary: Path, acr: Emulator, token: str, tmp_path_factory: pytest.TempPathFactory
) -> Crane:
    config_dir = tmp_path_factory.mktemp("docker-config")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "REGISTRY_"))}
    env.update({"DOCKER_CONFIG": str(config_dir), "SSL_CERT_FILE": acr.ca_bundle})
    tool = Crane(crane_binary, env, acr.login_server)
    tool("auth", "login", acr.login_server, "-u", NULL_GUID_USER, "--password-stdin", stdin=token)
    auths = json.loads((config_dir / "config.json").read_text())["auths"]
    assert base64.b64decode(auths[acr.login_server]["auth"]).decode() == (
        f"{NULL_GUID_USER}:{token}"
    )
    return tool


def _repo(prefix: str) -> str:
    return f"peers/{prefix}-{next(_counter)}"


def _push(acr: Emulator, token: str, repository: str, image: images.Image, tag: str) -> str:
    return images.push_image(
        acr.endpoint,
        repository,
        image,
        tag,
        verify=acr.ca_bundle,
        auth=(NULL_GUID_USER, token),
    )


def _registry_calls(acr: Emulator) -> list[dict[str, Any]]:
    """The log without the auth dance (ping challenges and token requests)."""
    return [r for r in acr.requests() if r["path"].startswith("/v2/") and r["path"] != "/v2/"]


def _blob_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in calls if "/blobs/" in r["path"]]


def test_digest_reads_only_the_manifest(crane: Crane, acr: Emulator, token: str) -> None:
    repo = _repo("digest")
    image, index = images.docker_image(seed=301), images.oci_index(seed=302)
    _push(acr, token, repo, image, "single")
    _push(acr, token, repo, index, "multi")
    acr.clear_requests()
    assert crane("digest", crane.ref(repo, "single")).strip() == image.digest
    assert crane("digest", crane.ref(repo, "multi")).strip() == index.digest
    calls = _registry_calls(acr)
    assert {(r["method"], r["path"]) for r in calls} <= {
        (m, f"/v2/{repo}/manifests/{t}") for m in ("HEAD", "GET") for t in ("single", "multi")
    }
    assert all(r["status"] == 200 for r in calls)


def test_tag_moves_no_layers(crane: Crane, acr: Emulator, token: str) -> None:
    repo = _repo("tag")
    image = images.docker_image(seed=311, layers=2)
    digest = _push(acr, token, repo, image, "latest")
    acr.clear_requests()
    acr.clear_events()
    crane("tag", crane.ref(repo, "latest"), "v2")

    assert acr.tag_digest(repo, "v2") == digest
    assert acr.tag_digest(repo, "latest") == digest
    calls = _registry_calls(acr)
    assert _blob_calls(calls) == []  # not one layer or config request
    assert [(r["method"], r["path"]) for r in calls] == [
        ("GET", f"/v2/{repo}/manifests/latest"),
        ("PUT", f"/v2/{repo}/manifests/v2"),
    ]
    put = calls[-1]
    assert (put["status"], put["tag"], put["digest"], put["previous_digest"]) == (
        201,
        "v2",
        digest,
        None,
    )
    # Like our re-tag, it is a push of the same digest: Event Grid sees an ImagePushed for v2.
    pushed = [e["data"]["target"] for e in acr.events()]
    assert [(t.get("tag"), t["digest"]) for t in pushed] == [("v2", digest)]


def test_ls_lists_every_tag(crane: Crane, acr: Emulator, token: str) -> None:
    repo = _repo("ls")
    image = images.oci_image(seed=321)
    tags = ["latest", "v1", "v1.2", "latest_20261202010000_abcdefabcdef"]
    for tag in tags:
        _push(acr, token, repo, image, tag)
    acr.clear_requests()
    assert crane("ls", crane.ref(repo)).split() == sorted(tags)
    listed = [r for r in _registry_calls(acr) if r["path"] == f"/v2/{repo}/tags/list"]
    assert listed
    assert all(r["status"] == 200 for r in listed)


def test_copy_between_repositories_mounts_every_blob(
    crane: Crane, acr: Emulator, token: str
) -> None:
    source, target = _repo("copy-from"), _repo("copy-to")
    image = images.docker_image(seed=331, layers=3)
    digest = _push(acr, token, source, image, "v1")
    acr.clear_requests()
    crane("copy", crane.ref(source, "v1"), crane.ref(target, "v1"))

    assert acr.tag_digest(target, "v1") == digest  # byte-identical manifest, same digest
    assert crane("digest", crane.ref(target, "v1")).strip() == digest
    _assert_mounted(_registry_calls(acr), source, target, {b.digest for b in image.blobs})


def test_copy_of_a_multi_arch_index_keeps_every_digest(
    crane: Crane, acr: Emulator, token: str
) -> None:
    source, target = _repo("index-from"), _repo("index-to")
    index = images.oci_index(seed=341)
    digest = _push(acr, token, source, index, "v1")
    acr.clear_requests()
    crane("copy", crane.ref(source, "v1"), crane.ref(target, "v1"))

    assert acr.tag_digest(target, "v1") == digest
    calls = _registry_calls(acr)
    puts = [r for r in calls if r["method"] == "PUT" and "/manifests/" in r["path"]]
    children = {child.digest for child in index.children}
    # children by digest (no tag) first, then the index under its tag
    assert {r["digest"] for r in puts[:-1]} == children
    assert all(r["tag"] is None and r["status"] == 201 for r in puts[:-1])
    assert (puts[-1]["tag"], puts[-1]["digest"]) == ("v1", digest)
    for child in index.children:
        assert crane("digest", crane.ref(target, child.digest)).strip() == child.digest
    blobs = {blob.digest for blob in index.all_blobs()}
    _assert_mounted(calls, source, target, blobs)


def _assert_mounted(calls: list[dict[str, Any]], source: str, target: str, blobs: set[str]) -> None:
    """Every blob crossed by a cross-repository mount (201); no byte was uploaded."""
    mounts = [
        r for r in calls if r["method"] == "POST" and r["path"] == f"/v2/{target}/blobs/uploads/"
    ]
    assert {r["query"].get("mount") for r in mounts if r["status"] == 201} == blobs
    assert all(r["query"].get("from") == source for r in mounts)
    assert not [r for r in calls if r["method"] in ("PATCH", "PUT") and "/uploads/" in r["path"]]
    assert not [r for r in calls if r["status"] == 401]  # one token per scope set, no retries
