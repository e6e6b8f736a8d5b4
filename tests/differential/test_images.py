"""The content builders in tests/support/images.py produce what real tools produce."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from tests.support import images


def test_docker_manifest_uses_three_space_indentation_so_json_dumps_changes_the_digest() -> None:
    image = images.docker_image()
    text = image.raw.decode()
    assert text.startswith('{\n   "schemaVersion": 2,\n   "mediaType": ')
    assert not text.endswith("\n")
    assert image.digest == "sha256:" + hashlib.sha256(image.raw).hexdigest()
    reserialised = json.dumps(json.loads(image.raw)).encode()
    assert images.sha256_digest(reserialised) != image.digest


def test_layers_are_gzipped_tars_matching_the_config_diff_ids() -> None:
    image = images.oci_image(layers=3, seed=7)
    config_blob, *layers = image.blobs
    config = json.loads(config_blob.data)
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    diff_ids = [images.sha256_digest(gzip.decompress(layer.data)) for layer in layers]
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.data))) as archive:
            assert len(archive.getmembers()) == 1
    assert image.document["config"]["digest"] == config_blob.digest
    assert [d["digest"] for d in image.document["layers"]] == [b.digest for b in layers]


def test_same_seed_same_bytes_other_seed_other_digest() -> None:
    assert images.oci_image(seed=1).raw == images.oci_image(seed=1).raw
    assert images.oci_image(seed=1).digest != images.oci_image(seed=2).digest
    assert images.docker_image().digest != images.docker_image().digest


def test_index_and_list_have_two_platform_children() -> None:
    for index, child_type in (
        (images.oci_index(), images.OCI_MANIFEST),
        (images.docker_manifest_list(), images.DOCKER_MANIFEST),
    ):
        platforms = [entry["platform"] for entry in index.document["manifests"]]
        assert platforms == [
            {"architecture": "amd64", "os": "linux"},
            {"architecture": "arm64", "os": "linux"},
        ]
        assert [entry["digest"] for entry in index.document["manifests"]] == [
            child.digest for child in index.children
        ]
        assert {child.media_type for child in index.children} == {child_type}
        assert len(list(index.all_blobs())) == 4  # config + layer per child
    assert images.docker_manifest_list().raw.startswith(b'{\n   "schemaVersion"')


def test_referrer_points_at_its_subject() -> None:
    subject = images.oci_index()
    sbom = images.referrer(subject)
    assert sbom.document["subject"] == subject.descriptor()
    assert sbom.document["artifactType"] == "application/vnd.example.sbom.v1+json"
    assert sbom.subject is subject


def test_oci_layout_holds_every_blob_and_both_tags(tmp_path: Path) -> None:
    index = images.oci_index()
    single = images.oci_image()
    images.write_oci_layout(tmp_path, index, "multi")
    images.write_oci_layout(tmp_path, single, "single")
    images.write_oci_layout(tmp_path, single, "single")  # idempotent
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    entries = json.loads((tmp_path / "index.json").read_text())["manifests"]
    assert [
        (e["digest"], e["annotations"]["org.opencontainers.image.ref.name"]) for e in entries
    ] == [
        (index.digest, "multi"),
        (single.digest, "single"),
    ]
    stored = {p.name: p.read_bytes() for p in (tmp_path / "blobs" / "sha256").iterdir()}
    expected = [index, *index.children, single]
    expected_blobs = [*index.all_blobs(), *single.blobs]
    for item in [*(m.raw for m in expected), *(b.data for b in expected_blobs)]:
        assert stored[hashlib.sha256(item).hexdigest()] == item
    assert len(stored) == len(expected) + len(expected_blobs)


def test_parse_challenge() -> None:
    scheme, params = images.parse_challenge(
        'Bearer realm="https://127.0.0.1:5443/oauth2/token",service="127.0.0.1:5443",'
        'scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://127.0.0.1:5443/oauth2/token",
        "service": "127.0.0.1:5443",
        "scope": "repository:a/b:pull,push",
    }
