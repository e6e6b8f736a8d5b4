"""The sample image is a real image: the layer is a gzip'd tar and diff_ids names its content."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from retag.sample import SAMPLE_FILE, sample_image


def test_sample_image_is_consistent() -> None:
    image = sample_image(bytes(range(16)))
    (layer,) = image.layers
    tar_bytes = gzip.decompress(layer)
    config = json.loads(image.config)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = tar.extractfile(SAMPLE_FILE)
        assert member is not None
        assert image.marker in member.read().decode()
    assert image.marker == bytes(range(16)).hex()


def test_same_entropy_same_bytes_and_random_otherwise() -> None:
    assert sample_image(b"x" * 16) == sample_image(b"x" * 16)
    first, second = sample_image(), sample_image()
    assert first.layers != second.layers
    assert first.config != second.config
