"""The one add-a-generated-tag engine: the event path, the CLI `tag` and reconciliation all tag a
push through `tag_push`.

The invariant it keeps (README "The promise"): the tag Flux selects for a source tag S is the
newest generated tag of S (by the push time in its name), and it must point to the digest S
points to; no push gets more than one generated tag. So a push of S to digest d:

- gets a NEW generated tag (GET the manifest by digest, PUT the same bytes under the new name,
  verify the digest), unless
- d already carries the newest generated tag of S: a redelivered or replayed event, a
  geo-replica's duplicate with a later timestamp, the pipeline CLI and the Function tagging the
  same push, an identical re-push. Then nothing is written (no PUT, no new ImagePushed, no
  `lastUpdateTime` moved).

A rollback (S moved back to an older digest that carries an OLD generated tag) is not covered:
a newer generated tag sits on another digest, so the rollback gets a new tag that sorts newest.
A push S has since moved away from (a late, reordered or replica event: S is no longer among the
tags on d) is superseded: nothing is written, since its tag could sort newest on a digest Flux
must no longer deploy.

Cost: the tags on d (`_tags?digest=`) are read concurrently with the manifest GET, so a new tag
is 3 requests in about 2 round trips. When d already carries a generated tag of S that is older
than this push, one full tag listing tells a duplicate from a rollback (rare: replica duplicates,
CLI + Function, rollbacks). A small per-process memory of what we tagged lets a redelivery of a
push this process already tagged skip the manifest GET: 1 request.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from retag.logline import clip
from retag.naming import LabelError, TagTemplate, newest_generated
from retag.oci import (
    CONFIG_MAX_BYTES,
    INDEX_MEDIA_TYPES,
    ImageShapeError,
    config_digest,
    config_labels,
    digest_problem,
    first_platform_manifest,
    repository_problem,
    tag_problem,
)
from retag.registry import (
    ConflictError,
    Manifest,
    NotFoundError,
    Registry,
    RegistryError,
    TagInfo,
    carry_context,
)

_T = TypeVar("_T")


@dataclass(frozen=True)
class Push:
    """One push of a source tag: `source_tag` -> `digest` in `repository` at `pushed_at` (UTC)."""

    repository: str
    source_tag: str
    digest: str
    pushed_at: datetime


@dataclass(frozen=True)
class TagResult:
    """What `tag_push` did for one push."""

    tag: str
    """The generated tag that marks this push now: the one written, or the one already there."""
    written: bool
    """True when a new tag was PUT; False when the push was already tagged (nothing written)."""
    reason: str
    superseded: bool = False
    """The source tag no longer points to the digest: nothing written, and `tag` does not exist."""
    skipped: bool = False
    """The template's image label is missing or unusable: nothing written, `tag` is a preview
    (`prod-<revision:.7>-...`) that does not exist, `reason` says which label and why."""


def tag_push(registry: Registry, template: TagTemplate, push: Push) -> TagResult:
    """Give `push` its generated tag, unless its digest already carries the newest generated tag
    of its source tag (module docstring).

    A template with label fields (`{revision}`, `{created}`) reads the image config once a write
    is decided (`_labels`); an image without a usable label is `skipped` (nothing written).

    Raises ValueError for invalid arguments (nothing is sent), NotFoundError when the manifest is
    gone, ConflictError (a same-named tag on another digest is never overwritten),
    PermissionDeniedError, TransientRegistryError, RegistryError.
    """
    repository, source_tag, digest = push.repository, push.source_tag, push.digest
    labelled = bool(template.label_names)
    shown = (template.preview if labelled else template.render)(source_tag, push.pushed_at, digest)
    _check_arguments(repository, digest, None if labelled else shown)
    when = template.push_time(push.pushed_at)
    key = (registry.login_server, repository, digest)
    manifest: Future[Manifest] | None = None
    if _RECENT.covers(key, template, source_tag, when):
        # This process tagged the push already: the tags on the digest confirm it (1 request).
        on_digest = list(registry.list_tags(repository, digest=digest))
    else:
        tags = _submit(lambda: list(registry.list_tags(repository, digest=digest)))
        manifest = _submit(lambda: registry.get_manifest(repository, digest))
        try:
            on_digest = tags.result()
        except BaseException:
            _drain(manifest)
            raise
    done = _decide(template, source_tag, when, shown, on_digest)
    if isinstance(done, TagInfo):
        # d carries an older generated tag of S: a duplicate of that push, or a rollback?
        newest = newest_generated(template, source_tag, registry.list_tags(repository))
        done = (
            TagResult(newest.name, False, f"already tagged: {newest.name} is the newest")
            if newest is not None and newest.digest == digest
            else None
        )
    if done is not None:
        if manifest is not None and done.superseded:
            _raise_if_gone(manifest)  # no tag of the source tag there: does the manifest exist?
        elif manifest is not None:
            _drain(manifest)
        if not done.superseded:
            _RECENT.remember(key, template, source_tag, done.tag)
        return done
    got = manifest.result() if manifest is not None else registry.get_manifest(repository, digest)
    new_tag = shown
    if labelled:
        try:
            new_tag = template.render(
                source_tag, push.pushed_at, digest, _labels(registry, repository, got)
            )
        except LabelError as exc:
            return TagResult(shown, False, str(exc), skipped=True)
        problem = tag_problem(new_tag)
        if problem is not None:
            reason = f"the image labels render {clip(new_tag, 60)!r}, which {problem}"
            return TagResult(shown, False, reason, skipped=True)
    if template.needs_existing_check and _refuse_overwrite(registry, repository, digest, new_tag):
        return TagResult(new_tag, False, f"already tagged: {new_tag} exists")
    _put(registry, repository, digest, new_tag, got)
    _RECENT.remember(key, template, source_tag, new_tag)
    return TagResult(new_tag, True, "generated tag added")


def add_generated_tag(
    registry: Registry, repository: str, digest: str, new_tag: str, *, check_existing: bool
) -> str:
    """Point `new_tag` at manifest `digest` without moving any layer; returns `new_tag`.

    The bare write under `tag_push`: GET the manifest BY DIGEST (the source tag may already point
    elsewhere), PUT its exact bytes with its original media type under `new_tag`, and verify the
    registry computed the same digest (a mismatch raises RegistryError).

    `check_existing=True` first reads `new_tag`: when it already points to `digest` the work is
    done (no write); when it points to another digest ConflictError is raised: we never move a tag
    we did not create for this digest. Callers pass `TagTemplate.needs_existing_check`: with
    {timestamp} and >= 12 digest hex characters a same-named tag on another digest would need a
    48-bit digest-prefix collision pushed in the same second to the same repository.
    """
    _check_arguments(repository, digest, new_tag)
    if check_existing and _refuse_overwrite(registry, repository, digest, new_tag):
        return new_tag
    _put(registry, repository, digest, new_tag, registry.get_manifest(repository, digest))
    return new_tag


# -- the decision (pure) ----------------------------------------------------------------------


def _decide(
    template: TagTemplate,
    source_tag: str,
    when: datetime | None,
    shown: str,
    on_digest: Iterable[TagInfo],
) -> TagResult | TagInfo | None:
    """From the tags on the digest: a TagResult when nothing is to be written; the digest's
    newest generated tag of S when it is OLDER than this push (duplicate or rollback: the caller
    looks wider); None when the digest carries no generated tag of S (write).

    Pushes compare by the push time their tag names encode (`when`, from the template), so the
    decision needs no label values: a digest's labels are its content, so one push time of S on
    one digest renders one name. A template without {timestamp} renders one name per digest:
    any generated tag of S on it is this push's. `shown` is the tag reported when superseded."""
    tags = list(on_digest)
    ours = [t for t in tags if template.is_generated(t.name, source_tag)]
    same = [t for t in ours if when is None or template.pushed_at_of(t.name) == when]
    if same:
        name = max(same, key=lambda t: t.name).name
        return TagResult(name, False, f"already tagged: {name} exists")
    if not any(t.name == source_tag for t in tags):
        # The source tag has moved on since this push (a late, reordered or replica event): a tag
        # now could sort newest on a digest Flux must no longer deploy. The push that moved it
        # has its own event; reconciliation covers a lost one.
        reason = f"superseded: {source_tag} no longer points to this digest"
        return TagResult(shown, False, reason, superseded=True)
    newest = newest_generated(template, source_tag, ours)
    if newest is None:
        return None
    newest_when = template.pushed_at_of(newest.name)
    if when is None or (newest_when is not None and newest_when >= when):
        # The digest carries a generated tag of S from this push or a later one.
        return TagResult(newest.name, False, f"already tagged: {newest.name}")
    return newest


def _labels(registry: Registry, repository: str, manifest: Manifest) -> dict[str, str]:
    """The image config's labels (an index: its first platform manifest's), read once per digest
    per process (content-addressed: they cannot change). Costs the config GET (its 307 and the
    storage GET) and, for an index, the platform manifest's GET first. LabelError when the
    manifest has no image config (an artifact, a broken index)."""
    key = (registry.login_server, repository, manifest.digest)
    known = _LABELS.get(key)
    if known is not None:
        return known
    try:
        image = manifest
        if manifest.media_type in INDEX_MEDIA_TYPES:
            image = registry.get_manifest(repository, first_platform_manifest(manifest.raw))
        config = registry.get_blob(repository, config_digest(image.raw), max_bytes=CONFIG_MAX_BYTES)
        labels = config_labels(config)
    except ImageShapeError as exc:
        raise LabelError("config", f"no image labels to read: {exc}") from None
    _LABELS.put(key, labels)
    return labels


# -- the writes -------------------------------------------------------------------------------


def _check_arguments(repository: str, digest: str, new_tag: str | None) -> None:
    for what, problem in (
        ("repository", repository_problem(repository)),
        ("digest", digest_problem(digest)),
        ("new tag", None if new_tag is None else tag_problem(new_tag)),
    ):
        if problem is not None:
            raise ValueError(f"{what} {problem}")


def _refuse_overwrite(registry: Registry, repository: str, digest: str, new_tag: str) -> bool:
    """True when `new_tag` already points to `digest`; ConflictError when it points elsewhere."""
    try:
        existing = registry.get_tag(repository, new_tag)
    except NotFoundError:
        return False
    if existing.digest == digest:
        return True
    raise ConflictError(f"tag {new_tag} already exists on {existing.digest}; not overwriting it")


def _put(
    registry: Registry, repository: str, digest: str, new_tag: str, manifest: Manifest
) -> None:
    if manifest.digest != digest:
        raise RegistryError(f"registry returned manifest {manifest.digest} when asked for {digest}")
    written = registry.put_manifest(repository, manifest, new_tag)
    if written != digest:
        raise RegistryError(
            f"tag {new_tag} was written with digest {written}, expected {digest} "
            "(the manifest bytes were not preserved)"
        )


# -- concurrency: the manifest GET and the tags read in parallel -------------------------------

_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def _submit(call: Callable[[], _T]) -> Future[_T]:
    """Run `call` on the shared pool with this thread's time budget and request tallies."""
    global _POOL  # noqa: PLW0603 - one lazily built pool per process
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="acr-retag-tagging")
    return _POOL.submit(carry_context(call))


def _raise_if_gone(future: Future[Manifest]) -> None:
    """NotFoundError when the manifest read found nothing; any other outcome is not needed."""
    try:
        future.result()
    except NotFoundError:
        raise
    except Exception:  # noqa: S110 - only "gone" matters here; the decision is made
        pass


def _drain(future: Future[Manifest]) -> None:
    """Wait for a call whose answer is no longer needed (its errors do not matter then)."""
    with contextlib.suppress(Exception):
        future.result()


# -- what this process tagged recently ---------------------------------------------------------


class _Recent:
    """(login server, repository, digest) -> the newest generated tag this process saw on it.

    Only a hint: `tag_push` always confirms with the registry before deciding not to write."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._tags: OrderedDict[tuple[str, str, str], str] = OrderedDict()

    def covers(
        self,
        key: tuple[str, str, str],
        template: TagTemplate,
        source_tag: str,
        when: datetime | None,
    ) -> bool:
        """True when the tag known on the digest is a generated tag of `source_tag` from a push
        at or after `when` (any, for a template without {timestamp})."""
        with self._lock:
            known = self._tags.get(key)
        if known is None or not template.is_generated(known, source_tag):
            return False
        known_when = template.pushed_at_of(known)
        return when is None or (known_when is not None and known_when >= when)

    def remember(
        self, key: tuple[str, str, str], template: TagTemplate, source_tag: str, tag: str
    ) -> None:
        with self._lock:
            known = self._tags.get(key)
            if known != tag and _not_older(template, source_tag, known, tag):
                tag = known or tag  # keep the newer one we already knew
            self._tags[key] = tag
            self._tags.move_to_end(key)
            while len(self._tags) > self._size:
                self._tags.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._tags.clear()


def _not_older(template: TagTemplate, source_tag: str, known: str | None, tag: str) -> bool:
    """True when `known` is a generated tag of `source_tag` that sorts at or after `tag`."""
    if known is None or not template.is_generated(known, source_tag):
        return False
    known_key, tag_key = template.order_key(known), template.order_key(tag)
    return known_key is not None and tag_key is not None and known_key >= tag_key


class _LabelCache:
    """(login server, repository, digest) -> image labels: exact, since a digest's content (and
    so its labels) never changes. Bounded, thread-safe."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._labels: OrderedDict[tuple[str, str, str], dict[str, str]] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> dict[str, str] | None:
        with self._lock:
            labels = self._labels.get(key)
            if labels is not None:
                self._labels.move_to_end(key)
            return labels

    def put(self, key: tuple[str, str, str], labels: dict[str, str]) -> None:
        with self._lock:
            self._labels[key] = labels
            while len(self._labels) > self._size:
                self._labels.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._labels.clear()


_RECENT = _Recent()
_LABELS = _LabelCache()
