"""OCI distribution grammar: tags, repository names and digests. Pure, no I/O.

One place for the rules every module checks input against (events, naming, config, the CLI).
The grammars are those of the OCI distribution spec and `distribution/reference`.
"""

from __future__ import annotations

import re

TAG_MAX_LENGTH = 128
REPOSITORY_MAX_LENGTH = 255

TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
"""A tag: at most 128 characters, not starting with `.` or `-` (full match)."""

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
"""A repository name: lowercase path components separated by `/` (full match)."""

DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
"""A sha256 digest as registries report it (full match)."""

HEX_DIGEST_RE = re.compile(r"[a-f0-9]{64}")


def is_valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def is_valid_repository(repository: str) -> bool:
    return (
        len(repository) <= REPOSITORY_MAX_LENGTH and REPOSITORY_RE.fullmatch(repository) is not None
    )


def is_valid_digest(digest: str) -> bool:
    return DIGEST_RE.fullmatch(digest) is not None


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a valid OCI tag, or None when it is."""
    if tag == "":
        return "is empty"
    if len(tag) > TAG_MAX_LENGTH:
        return f"is {len(tag)} characters long (at most {TAG_MAX_LENGTH})"
    if tag[0] in ".-":
        return f"starts with {tag[0]!r} (a tag starts with a letter, digit or '_')"
    if not is_valid_tag(tag):
        bad = sorted({c for c in tag if not re.fullmatch(r"[A-Za-z0-9._-]", c)})
        shown = ", ".join(repr(c) for c in bad[:5])
        return f"contains characters not allowed in a tag: {shown} (allowed: A-Z a-z 0-9 . _ -)"
    return None


def repository_problem(repository: str) -> str | None:
    """Why `repository` is not a valid OCI repository name, or None when it is."""
    if repository == "":
        return "is empty"
    if len(repository) > REPOSITORY_MAX_LENGTH:
        return f"is {len(repository)} characters long (at most {REPOSITORY_MAX_LENGTH})"
    if is_valid_repository(repository):
        return None
    if repository != repository.lower():
        return "contains uppercase letters (repository names are lowercase)"
    if repository.startswith("/") or repository.endswith("/") or "//" in repository:
        return "has an empty path component (leading, trailing or double '/')"
    return (
        "does not match the OCI name grammar: lowercase components of [a-z0-9] joined by "
        "'.', '_', '__' or '-', separated by '/'"
    )


def digest_problem(digest: str) -> str | None:
    """Why `digest` is not `sha256:` + 64 lowercase hex characters, or None when it is."""
    if is_valid_digest(digest):
        return None
    if not digest.startswith("sha256:"):
        return "does not start with 'sha256:'"
    return "is not 'sha256:' followed by 64 lowercase hex characters"


SHORT_DIGEST_LENGTH = 12
"""Hex characters shown for a digest in tables, reasons and messages (as in generated tags)."""


def short_digest(digest: str, *, algorithm: bool = True) -> str:
    """`sha256:3f2a9c1b7d4e` for display: the algorithm and the first 12 hex characters.

    A bare hex digest is taken to be sha256. `algorithm=False` gives the 12 hex characters only.
    """
    name, _, hex_part = digest.rpartition(":")
    short = hex_part[:SHORT_DIGEST_LENGTH]
    return f"{name or 'sha256'}:{short}" if algorithm else short


# -- media types: the ONE table (acr pushes and reads them, prune decides by them) --------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

KNOWN_MEDIA_TYPES: frozenset[str] = frozenset(
    {DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX}
)
"""Manifest media types acr-retag understands (prune deletes untagged manifests of these only)."""
INDEX_MEDIA_TYPES: frozenset[str] = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
"""Manifests that reference other manifests (multi-arch)."""
MAY_HAVE_SUBJECT: frozenset[str] = frozenset({OCI_MANIFEST, OCI_INDEX})
"""OCI manifests and indexes can carry a `subject` (referrers); Docker v2 types cannot."""
IMAGE_PARTS: dict[str, tuple[str, str]] = {
    OCI_MANIFEST: (OCI_CONFIG, OCI_LAYER),
    DOCKER_MANIFEST: (DOCKER_CONFIG, DOCKER_LAYER),
}
"""Image manifest type -> (config media type, layer media type), for pushing an image."""


# -- image labels (the label fields of RETAG_TAG_TEMPLATE) --------------------------------------
CONFIG_MAX_BYTES = 4 * 1024 * 1024
"""An image config larger than this is refused (real ones are a few KiB)."""


class ImageShapeError(ValueError):
    """A manifest or config that does not have the shape its media type promises."""


def _json_object(raw: bytes, what: str) -> dict[str, object]:
    import json

    try:
        document = json.loads(raw)
    except ValueError:
        raise ImageShapeError(f"{what} is not JSON") from None
    if not isinstance(document, dict):
        raise ImageShapeError(f"{what} is not a JSON object")
    return document


def config_digest(raw: bytes) -> str:
    """The digest of an image manifest's config blob (Docker v2 and OCI image manifests)."""
    config = _json_object(raw, "the image manifest").get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str) or not is_valid_digest(digest):
        raise ImageShapeError("the image manifest has no sha256 config digest")
    return digest


def first_platform_manifest(raw: bytes) -> str:
    """The digest of an index's (manifest list's) first platform manifest, whose labels stand for
    the index: the first entry that is an image manifest with a real platform, skipping buildx
    attestation manifests (`platform` `unknown/unknown`, or annotation
    `vnd.docker.reference.type`)."""
    entries = _json_object(raw, "the index").get("manifests")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        platform = entry.get("platform")
        annotations = entry.get("annotations")
        if isinstance(platform, dict) and platform.get("os") == "unknown":
            continue
        if isinstance(annotations, dict) and "vnd.docker.reference.type" in annotations:
            continue
        digest = entry.get("digest")
        valid = isinstance(digest, str) and is_valid_digest(digest)
        if entry.get("mediaType") in IMAGE_PARTS and valid:
            return str(digest)
    raise ImageShapeError("the index lists no platform image manifest")


def config_labels(raw: bytes) -> dict[str, str]:
    """`config.Labels` of an image config (Docker and OCI); {} when it has none. Non-string
    values are dropped (they cannot be label values)."""
    config = _json_object(raw, "the image config").get("config")
    labels = config.get("Labels") if isinstance(config, dict) else None
    if not isinstance(labels, dict):
        return {}
    return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
