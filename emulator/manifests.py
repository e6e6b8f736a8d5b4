"""Manifest parsing and validation (pure): what a registry checks before storing a manifest."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import ApiError, bad_request

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ORAS_ARTIFACT = "application/vnd.cncf.oras.artifact.manifest.v1+json"
IMAGE_TYPES = frozenset({DOCKER_V2, OCI_MANIFEST, ORAS_ARTIFACT})
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"}
)
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
MAX_NAME_LENGTH = 256


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(reference: str) -> bool:
    return ":" in reference


def check_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.match(name):
        raise bad_request("NAME_INVALID", "invalid repository name", {"name": name})


def check_tag(tag: str) -> None:
    if not TAG_RE.match(tag):
        raise bad_request("TAG_INVALID", "manifest tag did not match URI", {"tag": tag})


def check_digest(digest: str) -> None:
    if not DIGEST_RE.match(digest):
        if ANY_DIGEST_RE.match(digest) and not digest.startswith("sha256:"):
            raise bad_request(
                "UNSUPPORTED", "only sha256 digests are supported", {"digest": digest}
            )
        raise bad_request(
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            {
                "digest": digest,
                "reason": "invalid digest format",
            },
        )


def strip_parameters(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass
class Child:
    digest: str
    size: int
    media_type: str | None
    architecture: str | None
    os: str | None


@dataclass
class ParsedManifest:
    media_type: str
    is_index: bool
    config_digest: str | None = None
    config_media_type: str | None = None
    blobs: list[str] = field(default_factory=list)  # must exist in the repository
    children: list[Child] = field(default_factory=list)  # index entries (must exist as manifests)
    subject: str | None = None
    artifact_type: str | None = None
    declared_size: int = 0  # sum of the descriptor sizes this manifest lists


def _invalid(message: str, detail: Any = None) -> ApiError:
    return bad_request("MANIFEST_INVALID", "manifest invalid", detail or {"reason": message})


def _descriptor(value: Any, where: str) -> tuple[str, int, str | None, dict[str, Any]]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be an object")
    digest = value.get("digest")
    if not isinstance(digest, str):
        raise _invalid(f"{where} has no digest")
    if not DIGEST_RE.match(digest):
        raise bad_request(
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            {"digest": digest, "reason": f"invalid digest in {where}"},
        )
    size = value.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where} has an invalid size")
    media_type = value.get("mediaType")
    if media_type is not None and not isinstance(media_type, str):
        raise _invalid(f"{where} has an invalid mediaType")
    return digest, size, media_type, value


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest body like a registry does; raises ApiError (MANIFEST_INVALID...)."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise ApiError(
            400,
            "MANIFEST_INVALID",
            "manifest invalid",
            {"reason": f"manifest is {len(body)} bytes; the limit is {MAX_MANIFEST_BYTES} (4 MiB)"},
        )
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    header = strip_parameters(content_type)
    if header in (DOCKER_V1, DOCKER_V1_SIGNED) or document.get("schemaVersion") == 1:
        raise _invalid("Docker schema 1 manifests are not supported")
    if header in MANIFEST_TYPES:
        media_type = header
        if declared is not None and declared != media_type:
            raise _invalid(
                f"mediaType in manifest ({declared}) does not match Content-Type ({media_type})"
            )
    elif header:
        raise _invalid(f"unsupported manifest Content-Type {header!r}")
    else:  # like distribution: the Content-Type header decides how the body is read
        raise _invalid("Content-Type must name the manifest media type")
    if media_type != ORAS_ARTIFACT and document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")

    parsed = ParsedManifest(media_type=media_type, is_index=media_type in INDEX_TYPES)
    artifact_type = document.get("artifactType")
    if isinstance(artifact_type, str):
        parsed.artifact_type = artifact_type
    subject = document.get("subject")
    if subject is not None:
        parsed.subject = _descriptor(subject, "subject")[0]

    if parsed.is_index:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise _invalid("an index needs a 'manifests' list")
        for position, entry in enumerate(entries):
            digest, size, child_type, raw = _descriptor(entry, f"manifests[{position}]")
            platform = raw.get("platform")
            arch = os_name = None
            if isinstance(platform, dict):
                arch = (
                    platform.get("architecture")
                    if isinstance(platform.get("architecture"), str)
                    else None
                )
                os_name = platform.get("os") if isinstance(platform.get("os"), str) else None
            parsed.children.append(Child(digest, size, child_type, arch, os_name))
            parsed.declared_size += size
        return parsed

    if media_type == ORAS_ARTIFACT:
        layers = document.get("blobs", [])
    else:
        config = document.get("config")
        digest, size, config_type, _ = _descriptor(config, "config")
        parsed.config_digest = digest
        parsed.config_media_type = config_type
        parsed.blobs.append(digest)
        parsed.declared_size += size
        layers = document.get("layers")
    if not isinstance(layers, list):
        raise _invalid("an image manifest needs a 'layers' list")
    for position, layer in enumerate(layers):
        digest, size, layer_type, raw = _descriptor(layer, f"layers[{position}]")
        parsed.declared_size += size
        if layer_type in FOREIGN_LAYER_TYPES or raw.get("urls"):
            continue  # non-distributable layers live elsewhere
        parsed.blobs.append(digest)
    return parsed


def platform_of_config(config: bytes) -> tuple[str | None, str | None]:
    """architecture/os from an image config blob (None when not a JSON object)."""
    try:
        document = json.loads(config)
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    arch = document.get("architecture")
    os_name = document.get("os")
    return (arch if isinstance(arch, str) else None, os_name if isinstance(os_name, str) else None)
