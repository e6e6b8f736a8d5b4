"""What acr-retag needs from a registry: plain data types, errors and a protocol.

Pure: no I/O and no Azure imports. `retag.acr` implements `Registry` with the Azure SDK; the use
cases (retagger, prune, reconcile) only ever see these types, so they can be planned and tested
as pure functions over listings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypeVar


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry stores it: raw bytes, media type, digest."""

    raw: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class TagInfo:
    """One tag of a repository (ACR `_tags` listing)."""

    name: str
    digest: str
    created_on: datetime
    last_updated_on: datetime
    can_delete: bool = True
    can_write: bool = True

    @property
    def locked(self) -> bool:
        return not (self.can_delete and self.can_write)


@dataclass(frozen=True)
class ManifestInfo:
    """One manifest of a repository (ACR `_manifests` listing)."""

    digest: str
    media_type: str | None
    tags: tuple[str, ...]
    created_on: datetime
    last_updated_on: datetime
    references: tuple[str, ...] = ()
    """Digests of the children of an index or manifest list."""
    has_subject: bool = False
    """True for referrers (signatures, SBOMs): they point at another manifest."""
    can_delete: bool = True
    can_write: bool = True
    size: int | None = None

    @property
    def locked(self) -> bool:
        return not (self.can_delete and self.can_write)


# -- roles: the ONE table of which Azure role grants which registry action ---------------------

Need = Literal["pull", "push", "delete", "catalog"]
"""What an operation needs from the registry, coarsely (a role grants one of these)."""

ROLES: dict[Need, tuple[str, str]] = {
    # need: (built-in role, the role on registries with ABAC repository permissions)
    "pull": ("AcrPull", "Container Registry Repository Reader"),
    "push": ("AcrPush", "Container Registry Repository Writer"),
    "delete": ("AcrDelete", "Container Registry Repository Contributor"),
    "catalog": ("AcrPull", "Container Registry Repository Catalog Lister"),
}
_ACTION_NEED: dict[str, Need] = {
    "pull": "pull",
    "metadata_read": "pull",
    "push": "push",
    "metadata_write": "push",
    "delete": "delete",
}


def need_of(action: str) -> Need | None:
    """The need behind an ACR action (`pull`, `push`, `delete`, `metadata_read`, ...) or a whole
    scope (`repository:app:pull,push`: the most demanding action, delete > push > pull, decides;
    `registry:catalog:*` is `catalog`). None when no known action is in it."""
    if action == "catalog" or action.startswith("registry:catalog"):
        return "catalog"
    actions = action.rsplit(":", 1)[-1].split(",")
    for wanted in ("delete", "push", "metadata_write", "pull", "metadata_read"):
        if wanted in actions:
            return _ACTION_NEED[wanted]
    return None


def required_role(action: str) -> str:
    """`AcrPush (or 'Container Registry Repository Writer' on ABAC-enabled registries)` for an
    action or scope (see `need_of`)."""
    need = need_of(action)
    if need is None:
        return "a role granting this action (AcrPull, AcrPush or AcrDelete)"
    role, abac = ROLES[need]
    return f"{role} (or '{abac}' on ABAC-enabled registries)"


class RegistryError(Exception):
    """A registry operation failed for a reason that retrying will not fix."""


class TransientRegistryError(RegistryError):
    """5xx, 429, timeouts, connection resets: retrying later may succeed."""


class NotFoundError(RegistryError):
    """The repository, tag or manifest does not exist."""


class ConflictError(RegistryError):
    """The target exists with other content, or is locked (write/delete disabled)."""


class PermissionDeniedError(RegistryError):
    """401/403: the identity lacks a role on the registry."""


class Registry(Protocol):
    """The registry operations the use cases need. Implemented by `retag.acr.AcrRegistry`.

    Adapters call `note_request()` for every HTTP request they send (token calls included), so
    that a use case counts its own requests with `tally_requests()`: the only request counter."""

    @property
    def login_server(self) -> str: ...

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest by tag or digest, byte-exact. Raises NotFoundError."""
        ...

    def put_manifest(self, repository: str, manifest: Manifest, tag: str) -> str:
        """PUT the manifest's exact bytes under `tag`; returns the digest the registry computed."""
        ...

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A blob's bytes, checked against `digest` (the image config, for label fields).
        Registries redirect blob downloads (ACR: 307 to storage); the registry token never
        goes there. Raises NotFoundError; RegistryError when the blob is over `max_bytes`."""
        ...

    def get_tag(self, repository: str, tag: str) -> TagInfo:
        """Properties of one tag. Raises NotFoundError."""
        ...

    def get_manifest_info(self, repository: str, digest: str) -> ManifestInfo:
        """Properties of one manifest. Raises NotFoundError."""
        ...

    def list_repositories(self) -> Iterator[str]: ...

    def list_tags(self, repository: str, *, digest: str | None = None) -> Iterator[TagInfo]:
        """All tags (largest page size, following `Link`), optionally only those on `digest`."""
        ...

    def list_manifests(self, repository: str) -> Iterator[ManifestInfo]: ...

    def delete_tag(self, repository: str, tag: str) -> None:
        """Delete the tag only, never the manifest."""
        ...

    def delete_manifest(self, repository: str, digest: str) -> None: ...


_budget = threading.local()


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Every registry call made by this thread inside the block ends `seconds` from now at the
    latest, however many calls the block makes (retries, token calls and `Retry-After` included).

    The event path runs in one budget because Event Grid gives up on a delivery after 30 s and
    sends it again: the whole invocation must end well before that. Budgets nest; the inner one
    never extends the outer one. Adapters read `budget_deadline()`.
    """
    if not seconds > 0:
        raise ValueError(f"time budget must be positive, got {seconds!r}")
    outer: float | None = getattr(_budget, "deadline", None)
    deadline = time.monotonic() + seconds
    _budget.deadline = deadline if outer is None else min(deadline, outer)
    try:
        yield
    finally:
        _budget.deadline = outer


def budget_deadline() -> float | None:
    """The `time.monotonic()` by which this thread's registry calls must end, if any."""
    deadline: float | None = getattr(_budget, "deadline", None)
    return deadline


@dataclass
class RequestTally:
    """Registry requests sent by one thread inside a `tally_requests()` block."""

    count: int = 0


_tallies = threading.local()


@contextmanager
def tally_requests() -> Iterator[RequestTally]:
    """Count the registry requests THIS thread sends inside the block (token calls included).

    One adapter serves every concurrent invocation of a worker process, so a per-adapter count
    would include the other threads' requests; a tally is per thread. Tallies nest (an outer one
    also counts the inner block's requests). Adapters call `note_request()`. Work spread over a
    pool opens a tally in each worker and sums them.
    """
    tally = RequestTally()
    outer: tuple[RequestTally, ...] = getattr(_tallies, "active", ())
    _tallies.active = (*outer, tally)
    try:
        yield tally
    finally:
        _tallies.active = outer


_tally_lock = threading.Lock()


def note_request() -> None:
    """Called by adapters for every HTTP request they send: counts it in this thread's tallies."""
    active: tuple[RequestTally, ...] = getattr(_tallies, "active", ())
    if active:
        with _tally_lock:  # a tally may be shared with helper threads (`carry_context`)
            for tally in active:
                tally.count += 1


_R = TypeVar("_R")


def carry_context(call: Callable[[], _R]) -> Callable[[], _R]:
    """`call`, to run on another thread under THIS thread's time budget and request tallies (a
    use case that issues two registry calls at once stays inside one budget and one count)."""
    deadline: float | None = getattr(_budget, "deadline", None)
    tallies: tuple[RequestTally, ...] = getattr(_tallies, "active", ())

    def run() -> _R:
        outer_deadline = getattr(_budget, "deadline", None)
        outer_tallies = getattr(_tallies, "active", ())
        _budget.deadline, _tallies.active = deadline, tallies
        try:
            return call()
        finally:
            _budget.deadline, _tallies.active = outer_deadline, outer_tallies

    return run
