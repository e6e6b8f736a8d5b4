"""Pruning policy and the pure planner (the report model is `retag.prune.report`).

Pure: no I/O. `plan_repository` is a function from one repository's listings (tags, manifests),
a policy and a clock reading to a plan: the deletions, and a reason for every tag and manifest that
is kept. The executor (`retag.prune.job`) lists, plans and executes repository by repository.

Rules (issue 4, "Semantics"). A tag is kept when, checked in this order:

1. it is a source tag (`source-tag`);
2. it is on a digest a source tag points to at planning time (`on-source-digest`);
3. the listings contradict each other about it (`inconsistent-listing`): listed twice with
   different digests, or shown on another digest by the manifests listing (re-pushed meanwhile);
4. it is not a candidate for the scope (`not-a-candidate`): scope `generated` = tags the template
   can produce, scope `all` = every tag except source tags;
5. it is among the newest `keep` candidates by last update time, ties by name (`newest-n`);
6. it was updated (or created) less than `min_age` ago (`too-young`);
7. the tag is locked: delete or write disabled (`locked`);
8. the manifest it points to is locked (`manifest-locked`; needs the manifests listing).

Every other candidate tag is deleted (`expired`): the tag only, never its manifest.

Untagged manifests (policy `untagged`). A manifest counts as untagged when it has no tag left once
this plan's tag deletions are done, so one run reaches the fixpoint: running the plan and planning
again deletes nothing more. Such a manifest is kept when, in this order: it still has a tag
(`tagged`); untagged deletion is off (`untagged-disabled`); a source tag points at it
(`on-source-digest`); a surviving index or manifest list in the repository references it, directly
or through nested indexes (`referenced-by-index`); it has a `subject`, i.e. it is a signature, SBOM
or other referrer (`has-subject`); its media type is not one of the four image manifest types
(`unknown-media-type`); it was updated less than `min_age` ago (`too-young`); it is locked
(`manifest-locked`). An untagged index that is deleted no longer protects its children: they are
deleted in the same plan when they qualify, always after their parents (`wave`), so an interrupted
run never leaves an index pointing at a deleted child.

"Newest N" counts every candidate, young or locked: the N newest are kept whatever else holds
them, and a lock is reported as the reason only for items nothing else would have kept.
"""

from __future__ import annotations

import enum
import heapq
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from retag.oci import KNOWN_MEDIA_TYPES
from retag.registry import ManifestInfo, TagInfo

if TYPE_CHECKING:
    from retag.settings import Settings

ItemKind = Literal["tag", "manifest"]


def inspect_manifest(info: ManifestInfo, raw: bytes) -> ManifestInfo:
    """`info` completed from the manifest's bytes: `subject` and the children of an index.

    ACR's `_manifests` listing does not show `subject`, so an untagged OCI manifest is only known
    not to be a referrer once its body was read. Bytes that are not a JSON object make the
    manifest unknown (`media_type=None`), so it is kept.
    """
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return replace(info, media_type=None)
    has_subject = info.has_subject or isinstance(document.get("subject"), dict)
    references = info.references
    children = document.get("manifests")
    if isinstance(children, list):
        found = tuple(
            c["digest"]
            for c in children
            if isinstance(c, dict) and isinstance(c.get("digest"), str)
        )
        references = tuple(dict.fromkeys((*references, *found)))
    return replace(info, has_subject=has_subject, references=references)


class KeepReason(enum.Enum):
    """Why a tag or manifest is not deleted. Values are the stable names used in reports."""

    SOURCE_TAG = "source-tag"
    ON_SOURCE_DIGEST = "on-source-digest"
    NOT_A_CANDIDATE = "not-a-candidate"
    NEWEST = "newest-n"
    TOO_YOUNG = "too-young"
    LOCKED = "locked"
    MANIFEST_LOCKED = "manifest-locked"
    INCONSISTENT_LISTING = "inconsistent-listing"
    TAGGED = "tagged"
    UNTAGGED_DISABLED = "untagged-disabled"
    REFERENCED_BY_INDEX = "referenced-by-index"
    HAS_SUBJECT = "has-subject"
    UNKNOWN_MEDIA_TYPE = "unknown-media-type"
    # Decided at execution time, not by the planner:
    GAINED_TAG = "gained-tag"
    """An untagged manifest was re-read right before deletion and had a tag again."""
    GONE = "gone"
    """The item no longer existed when we came to delete it (someone else deleted it)."""

    @property
    def is_lock(self) -> bool:
        return self in (KeepReason.LOCKED, KeepReason.MANIFEST_LOCKED)


class DeleteReason(enum.Enum):
    """Why an item is deleted."""

    EXPIRED = "expired"
    """A candidate tag older than min_age and not among the newest `keep`."""
    UNTAGGED = "untagged"
    """A manifest with no tag, old enough, referenced by nothing that stays."""
    UNTAGGED_AFTER_PRUNE = "untagged-after-prune"
    """Like `untagged`, for a manifest whose every tag this plan deletes."""


@dataclass(frozen=True, slots=True)
class Kept:
    kind: ItemKind
    name: str
    """Tag name, or the digest for a manifest."""
    digest: str
    reason: KeepReason

    def to_dict(self) -> dict[str, str]:
        return _item_dict(self)


@dataclass(frozen=True, slots=True)
class Deletion:
    kind: ItemKind
    name: str
    """Tag name, or the digest for a manifest."""
    digest: str
    reason: DeleteReason
    wave: int = 0
    """Manifests only: 0 for roots; a child is in a later wave than every parent deleted with it."""
    parents: tuple[str, ...] = ()
    """Manifests only: digests of indexes in this plan that reference it (deleted first)."""
    tags: tuple[str, ...] = ()
    """Manifests only (`untagged-after-prune`): the tags this plan deletes first."""

    def to_dict(self) -> dict[str, str]:
        return _item_dict(self)


def _item_dict(item: Kept | Deletion) -> dict[str, str]:
    return {
        "kind": item.kind,
        "name": item.name,
        "digest": item.digest,
        "reason": item.reason.value,
    }


@dataclass(frozen=True)
class PrunePolicy:
    """What may be pruned. Build it from settings with `PrunePolicy.from_settings`."""

    source_tags: frozenset[str]
    is_candidate: Callable[[str], bool]
    keep: int
    min_age: timedelta
    untagged: bool
    pushed_at_of: Callable[[str], datetime | None] = lambda _name: None
    """The push time a generated tag's name encodes (`TagTemplate.pushed_at_of`), or None: a tag
    is aged by it, so re-writing an old tag (a moved `lastUpdateTime`) never makes it young, and
    the newest are the newest by it, as Flux orders them (issue 12)."""

    def __post_init__(self) -> None:
        if self.keep < 0:
            raise ValueError(f"keep must be >= 0, got {self.keep}")
        if self.min_age < timedelta(0):
            raise ValueError(f"min_age must not be negative, got {self.min_age}")

    @classmethod
    def for_scope(
        cls,
        scope: Literal["generated", "all"],
        *,
        source_tags: Iterable[str],
        is_generated: Callable[[str], bool],
        keep: int,
        min_age: timedelta,
        untagged: bool,
        pushed_at_of: Callable[[str], datetime | None] | None = None,
    ) -> PrunePolicy:
        sources = frozenset(source_tags)
        if scope == "generated":
            is_candidate = is_generated
        elif scope == "all":

            def is_candidate(tag: str) -> bool:
                return tag not in sources

        else:  # pragma: no cover - guarded by Literal and settings validation
            raise ValueError(f"unknown prune scope {scope!r}")
        if pushed_at_of is None:
            return cls(sources, is_candidate, keep, min_age, untagged)
        return cls(sources, is_candidate, keep, min_age, untagged, pushed_at_of)

    @classmethod
    def from_settings(cls, settings: Settings) -> PrunePolicy:
        """The policy the `PRUNE_*` and `RETAG_*` settings describe."""
        return cls.for_scope(
            settings.prune.scope,
            source_tags=settings.retag.source_tags,
            is_generated=settings.retag.template.is_generated,
            keep=settings.prune.keep,
            min_age=settings.prune.min_age,
            untagged=settings.prune.untagged,
            pushed_at_of=settings.retag.template.pushed_at_of,
        )


@dataclass(frozen=True)
class RepositoryPlan:
    repository: str
    deletions: tuple[Deletion, ...]
    """Tag deletions (oldest first), then manifest deletions by wave."""
    kept: tuple[Kept, ...]
    manifests_listed: bool
    """False when planned without the manifests listing (manifest locks then unknown)."""

    @property
    def tag_deletions(self) -> tuple[Deletion, ...]:
        return tuple(d for d in self.deletions if d.kind == "tag")

    @property
    def manifest_deletions(self) -> tuple[Deletion, ...]:
        return tuple(d for d in self.deletions if d.kind == "manifest")

    def kept_by_reason(self) -> dict[KeepReason, list[Kept]]:
        return group_kept(self.kept)


def group_kept(kept: Iterable[Kept]) -> dict[KeepReason, list[Kept]]:
    groups: dict[KeepReason, list[Kept]] = {}
    for item in kept:
        groups.setdefault(item.reason, []).append(item)
    return groups


def _age_reference(created_on: datetime, last_updated_on: datetime) -> datetime:
    """The later of the two times: an item is as young as its most recent change."""
    return max(created_on, last_updated_on)


def plan_repository(
    repository: str,
    tags: Sequence[TagInfo],
    manifests: Sequence[ManifestInfo] | None,
    policy: PrunePolicy,
    now: datetime,
) -> RepositoryPlan:
    """Decide what to delete in one repository. Pure and deterministic.

    `manifests=None` plans tags only, with the tags' own lock flags (manifest locks unknown) and
    no untagged manifest deletion; the executor always lists manifests.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    kept: list[Kept] = []
    deletions: list[Deletion] = []
    # Many tags share a digest but each listing entry carries its own copy of the string: the
    # plan keeps one copy per digest (memory on registries with 100,000s of tags).
    canonical: dict[str, str] = {}

    def shared(digest: str) -> str:
        return canonical.setdefault(digest, digest)

    # A tag listed twice with different digests moved while we paged: keep it, trust nothing.
    by_name: dict[str, TagInfo] = {}
    conflicting: set[str] = set()
    for tag in tags:
        seen = by_name.get(tag.name)
        if seen is None:
            by_name[tag.name] = tag
        elif seen.digest != tag.digest:
            conflicting.add(tag.name)
        elif tag.last_updated_on > seen.last_updated_on:
            by_name[tag.name] = tag

    manifest_by_digest: dict[str, ManifestInfo] = {}
    if manifests is not None:
        for manifest in manifests:
            manifest_by_digest.setdefault(manifest.digest, manifest)
            # The manifests listing is taken after the tags listing: a tag it shows on another
            # digest was re-pushed in between.
            for name in manifest.tags:
                listed = by_name.get(name)
                if listed is not None and listed.digest != manifest.digest:
                    conflicting.add(name)

    source_digests: set[str] = set()
    for tag in tags:
        if tag.name in policy.source_tags:
            source_digests.add(tag.digest)
    for manifest in manifest_by_digest.values():
        if not policy.source_tags.isdisjoint(manifest.tags):
            source_digests.add(manifest.digest)

    candidates: list[TagInfo] = []
    for name, tag in by_name.items():
        if name in policy.source_tags:
            kept.append(Kept("tag", name, shared(tag.digest), KeepReason.SOURCE_TAG))
        elif tag.digest in source_digests:
            kept.append(Kept("tag", name, shared(tag.digest), KeepReason.ON_SOURCE_DIGEST))
        elif name in conflicting:
            kept.append(Kept("tag", name, shared(tag.digest), KeepReason.INCONSISTENT_LISTING))
        elif not policy.is_candidate(name):
            kept.append(Kept("tag", name, shared(tag.digest), KeepReason.NOT_A_CANDIDATE))
        else:
            candidates.append(tag)

    def newest_key(tag: TagInfo) -> tuple[datetime, str]:
        return (policy.pushed_at_of(tag.name) or tag.last_updated_on, tag.name)

    newest = heapq.nlargest(policy.keep, candidates, key=newest_key) if policy.keep else []
    newest_names = {tag.name for tag in newest}
    expired: list[TagInfo] = []
    for tag in candidates:
        on = manifest_by_digest.get(tag.digest)
        if tag.name in newest_names:
            reason: KeepReason | None = KeepReason.NEWEST
        elif now - _tag_age_reference(tag, policy) < policy.min_age:
            reason = KeepReason.TOO_YOUNG
        elif tag.locked:
            reason = KeepReason.LOCKED
        elif on is not None and on.locked:
            reason = KeepReason.MANIFEST_LOCKED
        else:
            reason = None
        if reason is None:
            expired.append(tag)
        else:
            kept.append(Kept("tag", tag.name, shared(tag.digest), reason))
    expired.sort(key=newest_key)  # oldest first: a time-boxed run removes the oldest garbage
    deleted_tags = {(tag.name, tag.digest) for tag in expired}
    deletions.extend(
        Deletion("tag", t.name, shared(t.digest), DeleteReason.EXPIRED) for t in expired
    )

    if manifests is not None:
        kept_manifests, manifest_deletions = _plan_manifests(
            manifest_by_digest,
            tags,
            deleted_tags=deleted_tags,
            source_digests=source_digests,
            policy=policy,
            now=now,
        )
        kept.extend(kept_manifests)
        deletions.extend(manifest_deletions)

    return RepositoryPlan(repository, tuple(deletions), tuple(kept), manifests is not None)


def _tag_age_reference(tag: TagInfo, policy: PrunePolicy) -> datetime:
    """A generated tag is as old as the push its name records; any other tag as its last change."""
    pushed = policy.pushed_at_of(tag.name)
    return pushed if pushed is not None else _age_reference(tag.created_on, tag.last_updated_on)


def _plan_manifests(
    manifest_by_digest: Mapping[str, ManifestInfo],
    tags: Sequence[TagInfo],
    *,
    deleted_tags: set[tuple[str, str]],
    source_digests: set[str],
    policy: PrunePolicy,
    now: datetime,
) -> tuple[list[Kept], list[Deletion]]:
    kept: list[Kept] = []
    # Tags on each digest: the union of both listings (they are taken at different moments).
    tags_on: dict[str, set[str]] = {}
    for tag in tags:
        tags_on.setdefault(tag.digest, set()).add(tag.name)
    for digest, manifest in manifest_by_digest.items():
        if manifest.tags:
            tags_on.setdefault(digest, set()).update(manifest.tags)

    # 1. Each manifest's own reason to stay, if any (every rule except "referenced").
    own: dict[str, KeepReason] = {}
    for digest, manifest in manifest_by_digest.items():
        if any((name, digest) not in deleted_tags for name in tags_on.get(digest, ())):
            own[digest] = KeepReason.TAGGED
        elif not policy.untagged:
            own[digest] = KeepReason.UNTAGGED_DISABLED
        elif digest in source_digests:
            own[digest] = KeepReason.ON_SOURCE_DIGEST
        elif manifest.has_subject:
            own[digest] = KeepReason.HAS_SUBJECT
        elif manifest.media_type not in KNOWN_MEDIA_TYPES:
            own[digest] = KeepReason.UNKNOWN_MEDIA_TYPE
        elif now - _age_reference(manifest.created_on, manifest.last_updated_on) < policy.min_age:
            own[digest] = KeepReason.TOO_YOUNG
        elif manifest.locked:
            own[digest] = KeepReason.MANIFEST_LOCKED

    # 2. Everything reachable from a manifest that stays, stays (index children, nested indexes).
    protected: set[str] = set()
    stack = [ref for digest in own for ref in manifest_by_digest[digest].references]
    while stack:
        ref = stack.pop()
        if ref not in protected:
            protected.add(ref)
            child = manifest_by_digest.get(ref)
            if child is not None:
                stack.extend(child.references)

    # 3. Reasons in the documented order: "referenced" comes right after the tag/source rules.
    doomed: dict[str, ManifestInfo] = {}
    for digest, manifest in manifest_by_digest.items():
        reason = own.get(digest)
        if digest in protected and reason not in _BEFORE_REFERENCED:
            reason = KeepReason.REFERENCED_BY_INDEX
        if reason is None:
            doomed[digest] = manifest
        else:
            kept.append(Kept("manifest", digest, digest, reason))

    # 4. Parents before children: wave = longest chain of doomed parents above a manifest.
    parents: dict[str, list[str]] = {}
    for digest, manifest in doomed.items():
        for ref in set(manifest.references):
            if ref in doomed:
                parents.setdefault(ref, []).append(digest)
    waves = _waves(doomed, parents)
    planned = [
        Deletion(
            "manifest",
            digest,
            digest,
            DeleteReason.UNTAGGED_AFTER_PRUNE if tags_on.get(digest) else DeleteReason.UNTAGGED,
            wave=waves[digest],
            parents=tuple(sorted(parents.get(digest, ()))),
            tags=tuple(sorted(tags_on.get(digest, ()))),
        )
        for digest in doomed
    ]
    planned.sort(key=lambda d: (d.wave, doomed[d.digest].last_updated_on, d.digest))
    return kept, planned


_BEFORE_REFERENCED = (KeepReason.TAGGED, KeepReason.UNTAGGED_DISABLED, KeepReason.ON_SOURCE_DIGEST)


def _waves(doomed: Mapping[str, ManifestInfo], parents: Mapping[str, list[str]]) -> dict[str, int]:
    """Kahn's algorithm over the doomed subgraph (content addressing rules out cycles)."""
    pending = {digest: len(parents.get(digest, ())) for digest in doomed}
    waves = {digest: 0 for digest, n in pending.items() if n == 0}
    queue = list(waves)
    while queue:
        digest = queue.pop()
        for ref in set(doomed[digest].references):
            if ref in pending:
                waves[ref] = max(waves.get(ref, 0), waves[digest] + 1)
                pending[ref] -= 1
                if pending[ref] == 0:
                    queue.append(ref)
    if len(waves) != len(doomed) or any(pending.values()):
        raise ValueError("manifest references form a cycle")
    return waves
