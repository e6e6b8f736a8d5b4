"""Small builders for planner tests: tags, manifests and policies from a few numbers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from retag.oci import DOCKER_MANIFEST, OCI_INDEX
from retag.prune.plan import (
    PrunePolicy,
)
from retag.registry import ManifestInfo, TagInfo

NOW = datetime(2026, 11, 30, 3, 0, 0, tzinfo=UTC)
GENERATED = re.compile(r"(?:latest|stable)_\d{14}_[0-9a-f]{12}")


def is_generated(tag: str) -> bool:
    return GENERATED.fullmatch(tag) is not None


def digest(n: int | str) -> str:
    """Distinct digests whose first 12 hex digits differ (generated names embed them)."""
    text = f"{n:012x}" if isinstance(n, int) else n.encode().hex()
    return "sha256:" + text.ljust(64, "0")[:64]


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def gen_name(when: datetime, d: str, source: str = "latest") -> str:
    return f"{source}_{when:%Y%m%d%H%M%S}_{d.removeprefix('sha256:')[:12]}"


def tag(
    name: str,
    d: str,
    updated: datetime,
    *,
    created: datetime | None = None,
    can_delete: bool = True,
    can_write: bool = True,
) -> TagInfo:
    return TagInfo(name, d, created or updated, updated, can_delete, can_write)


def manifest(
    d: str,
    updated: datetime,
    *,
    tags: Iterable[str] = (),
    media_type: str | None = DOCKER_MANIFEST,
    references: Iterable[str] = (),
    has_subject: bool = False,
    can_delete: bool = True,
    can_write: bool = True,
) -> ManifestInfo:
    return ManifestInfo(
        digest=d,
        media_type=media_type,
        tags=tuple(tags),
        created_on=updated,
        last_updated_on=updated,
        references=tuple(references),
        has_subject=has_subject,
        can_delete=can_delete,
        can_write=can_write,
    )


def index(d: str, updated: datetime, children: Iterable[str], **kw: object) -> ManifestInfo:
    return manifest(d, updated, media_type=OCI_INDEX, references=children, **kw)  # type: ignore[arg-type]


def policy(
    *,
    keep: int = 2,
    min_age: timedelta = timedelta(days=7),
    untagged: bool = False,
    scope: str = "generated",
    source_tags: Iterable[str] = ("latest",),
) -> PrunePolicy:
    return PrunePolicy.for_scope(
        scope,  # type: ignore[arg-type]
        source_tags=source_tags,
        is_generated=is_generated,
        keep=keep,
        min_age=min_age,
        untagged=untagged,
    )


def manifests_for(tags: Iterable[TagInfo], **kw: object) -> list[ManifestInfo]:
    """A consistent manifests listing for the digests the tags point at."""
    by_digest: dict[str, list[TagInfo]] = {}
    for t in tags:
        by_digest.setdefault(t.digest, []).append(t)
    return [
        manifest(d, min(t.created_on for t in ts), tags=[t.name for t in ts], **kw)  # type: ignore[arg-type]
        for d, ts in by_digest.items()
    ]
