"""skopeo, a real registry client, pushes into and pulls from each registry: bytes stay exact.

skopeo runs with HOME/XDG dirs in a temp directory (no user config, no stored credentials),
`--insecure-policy` (no signature policy file needed) and TLS verified against the registry's CA
through a cert dir holding `ca.crt`. Against the emulator it performs the anonymous bearer-token
dance by itself (401 challenge -> token endpoint -> retry), as it would against ACR.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.differential.harness import Target, unique_repository
from tests.support import images
from tests.support.system import require_command

pytestmark = pytest.mark.system

TARGETS = ["distribution", "emulator"]
SKOPEO_TIMEOUT_SECONDS = 120

Skopeo = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    binary = require_command("skopeo")
    home = tmp_path / "skopeo-home"
    (home / ".config").mkdir(parents=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
    }
    (home / "auth.json").write_text('{"auths": {}}')

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            [binary, "--insecure-policy", *args],
            env=env,
            capture_output=True,
            timeout=SKOPEO_TIMEOUT_SECONDS,
            check=False,
        )
        assert done.returncode == 0, (
            f"skopeo {' '.join(args)} failed ({done.returncode}):\n"
            + done.stderr.decode(errors="replace")[-3000:]
        )
        return done

    return run


def target_fixture(request: pytest.FixtureRequest, name: str) -> Target:
    target: Target = request.getfixturevalue(f"{name}_target")
    return target


def raw_manifest(target: Target, repository: str, reference: str) -> bytes:
    with target.session() as session:
        response = session.get_manifest(repository, reference)
        assert response.status_code == 200, response.text
        return response.content


@pytest.mark.parametrize("name", TARGETS)
def test_copy_oci_layout_keeps_manifest_bytes(
    request: pytest.FixtureRequest, skopeo: Skopeo, tmp_path: Path, name: str
) -> None:
    target = target_fixture(request, name)
    image = images.oci_image(layers=2)
    layout = images.write_oci_layout(tmp_path / "layout", image, "v1")
    repository = unique_repository("skopeo")
    destination = f"docker://{target.login_server}/{repository}:v1"

    skopeo("copy", "--dest-cert-dir", target.cert_dir, f"oci:{layout}:v1", destination)

    inspected = skopeo("inspect", "--raw", "--cert-dir", target.cert_dir, destination).stdout
    assert inspected == image.raw
    assert raw_manifest(target, repository, image.digest) == image.raw
    for blob in image.blobs:
        with target.session() as session:
            fetched = session.request("GET", f"/v2/{repository}/blobs/{blob.digest}")
            assert fetched.status_code == 200
            assert fetched.content == blob.data


@pytest.mark.parametrize("name", TARGETS)
def test_copy_multi_arch_index_with_all(
    request: pytest.FixtureRequest, skopeo: Skopeo, tmp_path: Path, name: str
) -> None:
    target = target_fixture(request, name)
    index = images.oci_index()
    layout = images.write_oci_layout(tmp_path / "layout", index, "multi")
    repository = unique_repository("skopeo-index")
    destination = f"docker://{target.login_server}/{repository}:multi"

    skopeo("copy", "--all", "--dest-cert-dir", target.cert_dir, f"oci:{layout}:multi", destination)

    assert (
        skopeo("inspect", "--raw", "--cert-dir", target.cert_dir, destination).stdout == index.raw
    )
    for child in index.children:
        child_ref = f"docker://{target.login_server}/{repository}@{child.digest}"
        child_raw = skopeo("inspect", "--raw", "--cert-dir", target.cert_dir, child_ref).stdout
        assert child_raw == child.raw


@pytest.mark.parametrize(
    ("source_name", "destination_name"),
    [("emulator", "distribution"), ("distribution", "emulator")],
)
@pytest.mark.parametrize("kind", ["docker-v2", "docker-list"])
def test_copy_between_registries_keeps_digest(
    request: pytest.FixtureRequest,
    skopeo: Skopeo,
    source_name: str,
    destination_name: str,
    kind: str,
) -> None:
    """docker:// -> docker://: a 3-space-indented Docker manifest (or list) arrives byte-exact."""
    source = target_fixture(request, source_name)
    destination = target_fixture(request, destination_name)
    image = images.docker_image() if kind == "docker-v2" else images.docker_manifest_list()
    repository = unique_repository("skopeo-rt")
    images.push_image(source.endpoint, repository, image, "v1", verify=source.ca_bundle)

    skopeo(
        "copy",
        "--all",
        "--src-cert-dir",
        source.cert_dir,
        "--dest-cert-dir",
        destination.cert_dir,
        f"docker://{source.login_server}/{repository}:v1",
        f"docker://{destination.login_server}/{repository}:v1",
    )

    assert raw_manifest(destination, repository, "v1") == image.raw
    for child in image.children:
        assert raw_manifest(destination, repository, child.digest) == child.raw
