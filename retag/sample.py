"""A tiny, valid container image with random content (pure: bytes in, bytes out).

`push-sample` and `doctor` push it, as the original experiment's `make app-image` did: one gzip'd
tar layer holding one small random file, and an image config whose `rootfs.diff_ids` names the
uncompressed layer. Random content makes every sample a new, never-before-seen digest, so a
scratch manifest can never coincide with something a user pushed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass

SAMPLE_FILE = "acr-retag-sample.txt"


@dataclass(frozen=True)
class SampleImage:
    config: bytes
    layers: list[bytes]
    marker: str
    """The random hex string written into the layer (and the config labels)."""


def sample_image(random_bytes: bytes | None = None, *, description: str = "sample") -> SampleImage:
    """Build a config + one layer. `random_bytes` (16 or more) makes it reproducible in tests."""
    entropy = random_bytes if random_bytes is not None else os.urandom(16)
    marker = entropy.hex()
    content = f"acr-retag {description} {marker}\n".encode()

    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(SAMPLE_FILE)
        info.size = len(content)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = tar_buffer.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Labels": {
                "org.opencontainers.image.description": f"acr-retag {description} image",
                "io.github.acr-retag.sample": marker,
            }
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()],
        },
        "history": [{"created_by": f"acr-retag {description}"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return SampleImage(config=config_bytes, layers=[layer], marker=marker)
