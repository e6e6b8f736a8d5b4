"""Pruning policy, the pure planner and the report model.

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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from retag.logline import format_field, redact
from retag.oci import (  # the one media-type table (some re-exported for tests)
    DOCKER_MANIFEST,  # noqa: F401 (re-exported)
    DOCKER_MANIFEST_LIST,  # noqa: F401 (re-exported)
    KNOWN_MEDIA_TYPES,
    OCI_INDEX,  # noqa: F401 (re-exported)
    OCI_MANIFEST,  # noqa: F401 (re-exported)
    short_digest,
)
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
    ) -> PrunePolicy:
        sources = frozenset(source_tags)
        if scope == "generated":
            is_candidate = is_generated
        elif scope == "all":

            def is_candidate(tag: str) -> bool:
                return tag not in sources

        else:  # pragma: no cover - guarded by Literal and settings validation
            raise ValueError(f"unknown prune scope {scope!r}")
        return cls(sources, is_candidate, keep, min_age, untagged)

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

    newest = heapq.nlargest(policy.keep, candidates, key=_newest_key) if policy.keep else []
    newest_names = {tag.name for tag in newest}
    expired: list[TagInfo] = []
    for tag in candidates:
        on = manifest_by_digest.get(tag.digest)
        if tag.name in newest_names:
            reason: KeepReason | None = KeepReason.NEWEST
        elif now - _age_reference(tag.created_on, tag.last_updated_on) < policy.min_age:
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
    expired.sort(key=_newest_key)  # oldest first: a time-boxed run removes the oldest garbage
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


def _newest_key(tag: TagInfo) -> tuple[datetime, str]:
    return (tag.last_updated_on, tag.name)


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


# --------------------------------------------------------------------------------------------
# Report model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    item: Deletion
    error: str

    def to_dict(self) -> dict[str, str]:
        return {**self.item.to_dict(), "error": self.error}


@dataclass(frozen=True)
class RepositoryResult:
    """What happened in one repository. In dry-run, `deleted` is what delete mode would delete."""

    repository: str
    deleted: tuple[Deletion, ...] = ()
    kept: tuple[Kept, ...] = ()
    failed: tuple[Failure, ...] = ()
    remaining: tuple[Deletion, ...] = ()
    """Planned deletions not attempted because the run's time box ran out."""
    error: str | None = None
    """Listing failed: nothing was planned or deleted here."""
    requests: int = 0
    """HTTP requests this repository cost (listings, deletions, re-reads; retries included)."""
    kept_summary: tuple[tuple[str, int], ...] | None = None
    """Set by `summarised()`: the kept counts by reason once `kept` holds only the locked items."""

    @property
    def kept_by_reason(self) -> dict[KeepReason, list[Kept]]:
        return group_kept(self.kept)

    @property
    def locked(self) -> tuple[Kept, ...]:
        """Items that would have been deleted but for a lock (tag or manifest)."""
        return tuple(k for k in self.kept if k.reason.is_lock)

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None

    def kept_counts(self) -> dict[str, int]:
        if self.kept_summary is not None:
            return dict(self.kept_summary)
        counts: dict[str, int] = {}
        for item in self.kept:
            counts[item.reason.value] = counts.get(item.reason.value, 0) + 1
        return dict(sorted(counts.items()))

    def counts(self) -> dict[str, int]:
        return {
            "deleted_tags": sum(1 for d in self.deleted if d.kind == "tag"),
            "deleted_manifests": sum(1 for d in self.deleted if d.kind == "manifest"),
            "kept": sum(self.kept_counts().values()),
            "locked": len(self.locked),
            "failed": len(self.failed),
            "remaining": len(self.remaining),
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "repository": self.repository,
            "error": self.error,
            "requests": self.requests,
            **self.counts(),
            "kept_by_reason": self.kept_counts(),
            "deleted_items": [d.to_dict() for d in self.deleted],
            "kept_items": [k.to_dict() for k in self.kept],
            "failed_items": [f.to_dict() for f in self.failed],
            "remaining_items": [d.to_dict() for d in self.remaining],
        }

    def log_line(self, mode: str) -> str:
        """One summary line (the timer logs one per repository)."""
        c = self.counts()
        kept = ",".join(f"{k}:{v}" for k, v in self.kept_counts().items()) or "-"
        line = (
            f"prune repository={format_field(self.repository)} mode={mode} "
            f"deleted_tags={c['deleted_tags']} "
            f"deleted_manifests={c['deleted_manifests']} kept={c['kept']} kept_by_reason={kept} "
            f"locked={c['locked']} failed={c['failed']} remaining={c['remaining']} "
            f"requests={self.requests}"
        )
        if self.error:
            line += f" error={redact(self.error)!r}"
        return line

    def summarised(self) -> RepositoryResult:
        """A copy without the per-item list of kept items (the bulk of a big repository), its
        counts preserved; locked items, deletions, failures and remaining items stay."""
        if self.kept_summary is not None:
            return self
        return replace(
            self,
            kept=tuple(k for k in self.kept if k.reason.is_lock),
            kept_summary=tuple(self.kept_counts().items()),
        )


@dataclass
class PruneReport:
    """The outcome of one run. In dry-run, "deleted" means "would be deleted"."""

    mode: Literal["off", "dry-run", "delete"]
    started_at: datetime
    repositories: list[RepositoryResult] = field(default_factory=list)
    unvisited: list[str] = field(default_factory=list)
    """Repositories in scope that were not even planned because the time box ran out."""
    duration_seconds: float = 0.0
    requests: int = 0
    """HTTP requests the run sent (listings, deletions, re-reads, retries, token calls)."""
    timed_out: bool = False
    throttled: int = 0
    """Deletions the registry throttled (or failed transiently) and that were retried later."""
    catalog_error: str | None = None
    """Listing the repositories failed part-way."""

    @property
    def ok(self) -> bool:
        """No deletion failed and every repository could be listed."""
        return self.catalog_error is None and all(r.ok for r in self.repositories)

    @property
    def complete(self) -> bool:
        """Every planned deletion was attempted and every repository in scope visited."""
        return (
            not self.timed_out
            and not self.unvisited
            and not any(r.remaining for r in self.repositories)
        )

    def totals(self) -> dict[str, int]:
        totals = {
            "repositories": len(self.repositories),
            "deleted_tags": 0,
            "deleted_manifests": 0,
            "kept": 0,
            "locked": 0,
            "failed": 0,
            "remaining": 0,
        }
        for r in self.repositories:
            for key, value in r.counts().items():
                totals[key] += value
        totals["errors"] = sum(1 for r in self.repositories if r.error is not None)
        totals["unvisited_repositories"] = len(self.unvisited)
        return totals

    def log_line(self) -> str:
        """One summary line for the whole run."""
        parts = " ".join(f"{k}={v}" for k, v in self.totals().items())
        return (
            f"prune run mode={self.mode} {parts} requests={self.requests} "
            f"throttled={self.throttled} duration_s={self.duration_seconds:.1f} "
            f"complete={str(self.complete).lower()}"
        ) + (f" error={redact(self.catalog_error)!r}" if self.catalog_error else "")

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "started_at": self.started_at.isoformat(),
            "duration_seconds": round(self.duration_seconds, 3),
            "requests": self.requests,
            "ok": self.ok,
            "complete": self.complete,
            "timed_out": self.timed_out,
            "throttled": self.throttled,
            "catalog_error": self.catalog_error,
            "totals": self.totals(),
            "unvisited_repositories": list(self.unvisited),
            "repositories": [r.to_dict() for r in self.repositories],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Every item with its reason (`--json`)."""
        return json.dumps(self.to_dict(), indent=indent)

    def render_table(self) -> str:
        """Human table, one row per repository: deleted, kept by rule, locked, failed, remaining."""
        deleted = "WOULD DELETE" if self.mode == "dry-run" else "DELETED"
        header = [
            "REPOSITORY",
            f"{deleted} TAGS",
            f"{deleted} MANIFESTS",
            "LOCKED",
            "FAILED",
            "REMAINING",
            "KEPT BY RULE",
        ]
        rows: list[list[str]] = []
        for r in self.repositories:
            c = r.counts()
            rule = " ".join(f"{k}={v}" for k, v in r.kept_counts().items()) or "-"
            if r.error:
                rule = f"ERROR {r.error}"
            rows.append([r.repository, *(str(c[k]) for k in _TABLE_COUNTS), rule])
        t = self.totals()
        total_row = ["TOTAL", *(str(t[k]) for k in _TABLE_COUNTS), f"{t['kept']} kept"]
        widths = [
            max(len(row[i]) for row in [header, *rows, total_row]) for i in range(len(header))
        ]

        def line(cells: list[str]) -> str:
            return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

        rule_line = "  ".join("-" * w for w in widths)
        out = [line(header), rule_line, *(line(r) for r in rows), rule_line, line(total_row)]
        summary = (
            f"mode={self.mode} requests={self.requests} throttled={self.throttled} "
            f"duration={self.duration_seconds:.1f}s"
        )
        if not self.complete:
            summary += (
                f"; time box reached: {t['remaining']} deletions and {t['unvisited_repositories']}"
                " repositories left for the next run"
            )
        out.append(summary)
        verb = "would delete" if self.mode == "dry-run" else "deleted"
        for r in self.repositories:
            out.extend(
                f"{verb}: {r.repository} {d.kind} {d.name}"
                f" ({short_digest(d.digest)}; {d.reason.value})"
                for d in r.deleted
            )
            out.extend(
                f"locked: {r.repository} {k.kind} {k.name} ({k.reason.value})" for k in r.locked
            )
            out.extend(
                f"failed: {r.repository} {f.item.kind} {f.item.name}: {f.error}" for f in r.failed
            )
        return "\n".join(out) + "\n"


_TABLE_COUNTS = ("deleted_tags", "deleted_manifests", "locked", "failed", "remaining")
