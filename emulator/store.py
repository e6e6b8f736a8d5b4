"""Registry state: repositories, manifests (byte-exact), tags, blobs, uploads and locks.

Thread-safe (one re-entrant lock). With a data directory the state is persisted as `state.json`
plus content-addressed blob files (`blobs/sha256/<hex>`), written atomically shortly after each
change and on close, so it survives a restart. All timestamps come from the emulator `Clock`.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from emulator.clock import Clock, format_time, format_wire_time, parse_time
from emulator.errors import ApiError, bad_request, disallowed, not_found
from emulator.manifests import (
    IMAGE_CONFIG_TYPES,
    check_digest,
    check_name,
    check_tag,
    is_digest,
    parse_manifest,
    platform_of_config,
    sha256_digest,
)

T = TypeVar("T")
DEFAULT_PAGE = 100
MAX_PAGE = 1000  # ACR returns at most 1,000 entries per page whatever `n` says (Azure/acr#749)
STATE_FILE = "state.json"
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CURSORS = 100_000


@dataclass
class Attributes:
    delete_enabled: bool = True
    write_enabled: bool = True
    read_enabled: bool = True
    list_enabled: bool = True

    KEYS = {
        "deleteEnabled": "delete_enabled",
        "writeEnabled": "write_enabled",
        "readEnabled": "read_enabled",
        "listEnabled": "list_enabled",
    }

    def wire(self) -> dict[str, bool]:
        return {key: bool(getattr(self, attr)) for key, attr in self.KEYS.items()}

    @property
    def locked(self) -> bool:
        return not (self.delete_enabled and self.write_enabled)

    def update(self, body: Mapping[str, Any]) -> None:
        changes = {}
        for key, value in body.items():
            if key in self.KEYS:
                if not isinstance(value, bool):
                    raise bad_request(
                        "INVALID_REQUEST", f"{key} must be true or false", {"field": key}
                    )
                changes[self.KEYS[key]] = value
        for attr, value in changes.items():
            setattr(self, attr, value)

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> Attributes:
        attrs = cls()
        if data:
            attrs.update({k: v for k, v in data.items() if isinstance(v, bool)})
        return attrs


@dataclass
class ManifestRecord:
    digest: str
    media_type: str
    length: int
    created: datetime
    updated: datetime
    seq: int
    attrs: Attributes = field(default_factory=Attributes)
    image_size: int = 0
    config_media_type: str | None = None
    architecture: str | None = None
    os: str | None = None
    references: list[dict[str, str]] = field(default_factory=list)
    subject: str | None = None
    artifact_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "mediaType": self.media_type,
            "length": self.length,
            "created": format_time(self.created),
            "updated": format_time(self.updated),
            "seq": self.seq,
            "attrs": self.attrs.wire(),
            "imageSize": self.image_size,
            "configMediaType": self.config_media_type,
            "architecture": self.architecture,
            "os": self.os,
            "references": self.references,
            "subject": self.subject,
            "artifactType": self.artifact_type,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManifestRecord:
        return cls(
            digest=data["digest"],
            media_type=data["mediaType"],
            length=int(data["length"]),
            created=parse_time(data["created"]),
            updated=parse_time(data["updated"]),
            seq=int(data["seq"]),
            attrs=Attributes.load(data.get("attrs")),
            image_size=int(data.get("imageSize", 0)),
            config_media_type=data.get("configMediaType"),
            architecture=data.get("architecture"),
            os=data.get("os"),
            references=list(data.get("references") or []),
            subject=data.get("subject"),
            artifact_type=data.get("artifactType"),
        )


@dataclass
class TagRecord:
    name: str
    digest: str
    created: datetime
    updated: datetime
    seq: int
    attrs: Attributes = field(default_factory=Attributes)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "created": format_time(self.created),
            "updated": format_time(self.updated),
            "seq": self.seq,
            "attrs": self.attrs.wire(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TagRecord:
        return cls(
            name=data["name"],
            digest=data["digest"],
            created=parse_time(data["created"]),
            updated=parse_time(data["updated"]),
            seq=int(data["seq"]),
            attrs=Attributes.load(data.get("attrs")),
        )


@dataclass
class Repository:
    name: str
    created: datetime
    updated: datetime
    attrs: Attributes = field(default_factory=Attributes)
    manifests: dict[str, ManifestRecord] = field(default_factory=dict)
    tags: dict[str, TagRecord] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)

    @property
    def visible(self) -> bool:
        return bool(self.manifests)

    def tags_of(self, digest: str) -> list[str]:
        return sorted(t.name for t in self.tags.values() if t.digest == digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": format_time(self.created),
            "updated": format_time(self.updated),
            "attrs": self.attrs.wire(),
            "manifests": [m.to_json() for m in self.manifests.values()],
            "tags": [t.to_json() for t in self.tags.values()],
            "blobs": sorted(self.blobs),
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> Repository:
        repo = cls(
            name=name,
            created=parse_time(data["created"]),
            updated=parse_time(data["updated"]),
            attrs=Attributes.load(data.get("attrs")),
        )
        for item in data.get("manifests", []):
            record = ManifestRecord.from_json(item)
            repo.manifests[record.digest] = record
        for item in data.get("tags", []):
            tag = TagRecord.from_json(item)
            repo.tags[tag.name] = tag
        repo.blobs = set(data.get("blobs", []))
        return repo


@dataclass
class Upload:
    id: str
    repository: str
    data: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True)
class PutResult:
    repository: str
    digest: str
    tag: str | None
    previous_digest: str | None
    media_type: str
    length: int
    subject: str | None = None  # the manifest's `subject` digest (answered as OCI-Subject)


@dataclass(frozen=True)
class DeletedManifest:
    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...]


class BlobStore:
    """Content-addressed bytes, in memory or under `directory/blobs/sha256/`."""

    def __init__(self, directory: Path | None) -> None:
        self._dir = directory / "blobs" / "sha256" if directory else None
        self._memory: dict[str, bytes] = {}
        self._sizes: dict[str, int] = {}
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            for path in self._dir.iterdir():
                if len(path.name) == 64 and path.is_file():
                    self._sizes["sha256:" + path.name] = path.stat().st_size

    def size(self, digest: str) -> int | None:
        return self._sizes.get(digest)

    def put(self, digest: str, data: bytes) -> None:
        if digest in self._sizes:
            return
        if self._dir is None:
            self._memory[digest] = bytes(data)
        else:
            path = self._dir / digest.split(":", 1)[1]
            tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        self._sizes[digest] = len(data)

    def read(self, digest: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end] inclusive (whole blob by default)."""
        if self._dir is None:
            data = self._memory[digest]
            return data[start : None if end is None else end + 1]
        with (self._dir / digest.split(":", 1)[1]).open("rb") as handle:
            handle.seek(start)
            return handle.read() if end is None else handle.read(end - start + 1)


def parse_page_size(value: str | None, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size <= 0:
        raise bad_request(
            "PAGINATION_NUMBER_INVALID", "invalid number of results requested", {"n": value}
        )
    return size


def _page(items: list[T], n: int | None) -> tuple[list[T], bool]:
    if n is None or len(items) <= n:
        return items, False
    return items[:n], True


def _link(path: str, params: dict[str, str]) -> str:
    return f'<{path}?{urlencode(params)}>; rel="next"'


ORDERS = ("", "none", "timedesc", "timeasc")


def _check_continues(upload: Upload, content_range: str | None) -> None:
    """A chunk's Content-Range must start where the upload stands, else 416 (with its Range)."""
    if not content_range:
        return
    try:
        start_text, _, _end = content_range.replace("bytes=", "").partition("-")
        start = int(start_text)
    except ValueError:
        start = -1
    if start != len(upload.data):
        raise ApiError(
            416,
            "BLOB_UPLOAD_INVALID",
            "blob upload invalid",
            {
                "reason": f"Content-Range {content_range!r} does not continue at "
                f"offset {len(upload.data)}"
            },
            {"Range": f"0-{max(len(upload.data) - 1, 0)}"},
        )


class Store:
    def __init__(
        self,
        clock: Clock,
        login_server: str,
        data_dir: Path | None = None,
    ) -> None:
        self.clock = clock
        self.login_server = login_server
        self._lock = threading.RLock()
        self._data_dir = data_dir
        self._blobs = BlobStore(data_dir)
        self._repos: dict[str, Repository] = {}
        self._uploads: dict[str, Upload] = {}
        # (repository, listing, last name) -> (time, seq) where a time-ordered page ended
        self._cursors: OrderedDict[tuple[str, str, str], tuple[datetime, int]] = OrderedDict()
        self._seq = itertools.count(1)
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        if data_dir is not None:
            self._load()
            self._flusher = threading.Thread(
                target=self._flush_loop, name="emulator-store-flush", daemon=True
            )
            self._flusher.start()

    # -- persistence ------------------------------------------------------------------------------
    def _load(self) -> None:
        assert self._data_dir is not None
        path = self._data_dir / STATE_FILE
        if not path.is_file():
            return
        highest = 0
        try:
            data = json.loads(path.read_text())
            for name, repo_data in data.get("repositories", {}).items():
                repo = Repository.from_json(name, repo_data)
                self._repos[name] = repo
                seqs = [m.seq for m in repo.manifests.values()]
                highest = max([highest, *seqs, *(t.seq for t in repo.tags.values())])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Never overwrite state we cannot read: refuse to start instead.
            raise ValueError(
                f"{path}: unreadable emulator state ({type(exc).__name__}: {exc}); "
                "fix the file or use another --data directory"
            ) from None
        self._seq = itertools.count(highest + 1)

    def _changed(self) -> None:
        if self._data_dir is not None:
            self._dirty.set()

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            self._dirty.wait(0.5)
            if self._dirty.is_set():
                self._closed.wait(0.05)  # coalesce bursts of changes
                self.flush()

    def flush(self) -> None:
        if self._data_dir is None:
            return
        with self._lock:
            self._dirty.clear()
            snapshot = {
                "version": 1,
                "repositories": {name: r.to_json() for name, r in self._repos.items()},
            }
            text = json.dumps(snapshot, indent=1, sort_keys=True)
            path = self._data_dir / STATE_FILE
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)

    def close(self) -> None:
        self._closed.set()
        self._dirty.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()

    # -- helpers ----------------------------------------------------------------------------------
    def _repo(self, name: str) -> Repository:
        check_name(name)
        repo = self._repos.get(name)
        if repo is None:
            # ACR's words, no detail (Go SDK recording TestClient_GetRepositoryProperties_wrongName)
            raise not_found("NAME_UNKNOWN", f'repository "{name}" is not found')
        return repo

    def _repo_for_write(self, name: str) -> Repository:
        check_name(name)
        repo = self._repos.get(name)
        if repo is None:
            now = self.clock.now()
            repo = Repository(name=name, created=now, updated=now)
            self._repos[name] = repo
        return repo

    def _resolve(self, repo: Repository, reference: str) -> ManifestRecord:
        if is_digest(reference):
            check_digest(reference)
            record = repo.manifests.get(reference)
        else:
            check_tag(reference)
            tag = repo.tags.get(reference)
            record = repo.manifests.get(tag.digest) if tag else None
        if record is None:
            if not is_digest(reference):  # ACR (Go SDK recording TestClient_GetManifest_wrongTag)
                raise not_found(
                    "MANIFEST_UNKNOWN",
                    f'manifest tagged by "{reference}" is not found',
                    {"Tag": reference},
                )
            raise not_found(
                "MANIFEST_UNKNOWN", "manifest unknown", {"Name": repo.name, "Revision": reference}
            )
        return record

    def _manifest(self, repo: Repository, digest: str) -> ManifestRecord:
        check_digest(digest)
        record = repo.manifests.get(digest)
        if record is None:
            raise not_found(
                "MANIFEST_UNKNOWN", "manifest unknown", {"Name": repo.name, "Revision": digest}
            )
        return record

    def _tag(self, repo: Repository, name: str) -> TagRecord:
        check_tag(name)
        tag = repo.tags.get(name)
        if tag is None:
            raise not_found(
                "TAG_UNKNOWN", "the specified tag does not exist"
            )  # no detail, like ACR
        return tag

    # -- /v2 manifests ----------------------------------------------------------------------------
    def get_manifest(self, name: str, reference: str) -> tuple[bytes, str, str]:
        with self._lock:
            repo = self._repo(name)
            record = self._resolve(repo, reference)
            tag = None if is_digest(reference) else repo.tags[reference]
            if not record.attrs.read_enabled or (tag is not None and not tag.attrs.read_enabled):
                raise disallowed({"Name": name, "Reference": reference})
            return self._blobs.read(record.digest), record.media_type, record.digest

    def put_manifest(
        self, name: str, reference: str, body: bytes, content_type: str | None
    ) -> PutResult:
        check_name(name)
        if is_digest(reference):
            check_digest(reference)
        else:
            check_tag(reference)
        parsed = parse_manifest(body, content_type)
        digest = sha256_digest(body)
        if is_digest(reference) and reference != digest:
            raise bad_request(
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
                {"digest": reference, "computed": digest},
            )
        with self._lock:
            existing = self._repos.get(name)
            if existing is not None and not existing.attrs.write_enabled:
                raise disallowed({"Name": name})
            known_blobs = existing.blobs if existing is not None else set()
            known_manifests = existing.manifests if existing is not None else {}
            missing = [b for b in dict.fromkeys(parsed.blobs) if b not in known_blobs]
            missing += [c.digest for c in parsed.children if c.digest not in known_manifests]
            if missing:  # one entry per missing blob, digest as detail (distribution, ACR)
                raise ApiError(
                    400,
                    "MANIFEST_BLOB_UNKNOWN",
                    "blob unknown to registry",
                    missing[0],
                    more_details=missing[1:],
                )
            tag_name = None if is_digest(reference) else reference
            previous = None
            if tag_name is not None and existing is not None and tag_name in existing.tags:
                current = existing.tags[tag_name]
                previous = current.digest
                holder = existing.manifests.get(current.digest)
                if not current.attrs.write_enabled or (
                    holder is not None and not holder.attrs.write_enabled
                ):
                    raise disallowed({"Name": name, "Tag": tag_name})
            repo = self._repo_for_write(name)
            now = self.clock.now()
            record = repo.manifests.get(digest)
            if record is None:
                record = ManifestRecord(
                    digest=digest,
                    media_type=parsed.media_type,
                    length=len(body),
                    created=now,
                    updated=now,
                    seq=next(self._seq),
                    image_size=len(body) + parsed.declared_size,
                    config_media_type=parsed.config_media_type,
                    references=[
                        {
                            k: v
                            for k, v in (
                                ("digest", c.digest),
                                ("architecture", c.architecture),
                                ("os", c.os),
                            )
                            if v is not None
                        }
                        for c in parsed.children
                    ],
                    subject=parsed.subject,
                    artifact_type=parsed.artifact_type,
                )
                if parsed.config_digest and (
                    parsed.config_media_type in IMAGE_CONFIG_TYPES
                    or parsed.config_media_type is None
                ):
                    size = self._blobs.size(parsed.config_digest)
                    if size is not None and size <= MAX_CONFIG_BYTES:
                        record.architecture, record.os = platform_of_config(
                            self._blobs.read(parsed.config_digest)
                        )
                self._blobs.put(digest, body)
                repo.manifests[digest] = record
                repo.blobs.add(digest)
            elif record.attrs.write_enabled:
                record.updated = now
                record.seq = next(self._seq)
            if tag_name is not None:
                tag = repo.tags.get(tag_name)
                if tag is None:
                    repo.tags[tag_name] = TagRecord(tag_name, digest, now, now, next(self._seq))
                else:
                    tag.digest = digest
                    tag.updated = now
                    tag.seq = next(self._seq)
            repo.updated = now
            self._changed()
            return PutResult(
                name, digest, tag_name, previous, record.media_type, len(body), record.subject
            )

    def delete_manifest(self, name: str, reference: str) -> DeletedManifest:
        if not is_digest(reference):
            # ACR: 405 UNSUPPORTED, no detail (Go recording TestClient_DeleteManifest_wrongDigest)
            # A tag alone is removed with DELETE /acr/v1/<name>/_tags/<tag>.
            raise ApiError(405, "UNSUPPORTED", "A manifest can only be deleted by digest.")
        with self._lock:
            repo = self._repo(name)
            record = self._resolve(repo, reference)
            tags = [repo.tags[t] for t in repo.tags_of(record.digest)]
            if (
                not repo.attrs.delete_enabled
                or not repo.attrs.write_enabled
                or record.attrs.locked
                or any(t.attrs.locked for t in tags)
            ):
                raise disallowed({"Name": name, "Revision": record.digest})
            for tag in tags:
                del repo.tags[tag.name]
            del repo.manifests[record.digest]
            repo.updated = self.clock.now()
            self._changed()
            return DeletedManifest(
                name, record.digest, record.media_type, tuple(t.name for t in tags)
            )

    def referrers(self, name: str, digest: str, artifact_type: str | None) -> dict[str, Any]:
        """OCI 1.1 referrers index for `digest` (manifests whose subject is `digest`)."""
        with self._lock:
            check_name(name)
            check_digest(digest)
            repo = self._repos.get(name)
            entries = []
            for record in repo.manifests.values() if repo else []:
                if record.subject != digest:
                    continue
                entry = self._referrer_descriptor(record)
                if artifact_type and entry.get("artifactType") != artifact_type:
                    continue
                entries.append(entry)
            return {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": entries,
            }

    def _referrer_descriptor(self, record: ManifestRecord) -> dict[str, Any]:
        """distribution-spec 1.1 "Listing Referrers": the descriptor's artifactType is the
        manifest's, else its config's mediaType; the manifest's annotations are copied."""
        entry: dict[str, Any] = {
            "mediaType": record.media_type,
            "digest": record.digest,
            "size": record.length,
        }
        try:
            document = json.loads(self._blobs.read(record.digest))
        except (OSError, ValueError):
            document = {}
        config = document.get("config") if isinstance(document, dict) else None
        effective = record.artifact_type or (
            config.get("mediaType") if isinstance(config, dict) else None
        )
        if isinstance(effective, str) and effective:
            entry["artifactType"] = effective
        annotations = document.get("annotations") if isinstance(document, dict) else None
        if isinstance(annotations, dict) and annotations:
            entry["annotations"] = annotations
        return entry

    # -- /v2 blobs --------------------------------------------------------------------------------
    def blob_size(self, name: str, digest: str) -> int:
        check_name(name)
        check_digest(digest)
        with self._lock:
            repo = self._repos.get(name)
            size = self._blobs.size(digest)
            if repo is None or digest not in repo.blobs or size is None:
                raise not_found("BLOB_UNKNOWN", "blob unknown to registry", digest)
            return size

    def stored_blob_size(self, digest: str) -> int | None:
        """Size of stored content by digest, whatever repository holds it (storage endpoint)."""
        with self._lock:
            return self._blobs.size(digest)

    def read_stored_blob(self, digest: str, start: int = 0, end: int | None = None) -> bytes:
        with self._lock:
            return self._blobs.read(digest, start, end)

    def read_blob(self, name: str, digest: str, start: int = 0, end: int | None = None) -> bytes:
        self.blob_size(name, digest)
        return self._blobs.read(digest, start, end)

    def delete_blob(self, name: str, digest: str) -> None:
        with self._lock:
            self.blob_size(name, digest)
            repo = self._repos[name]
            if not repo.attrs.delete_enabled or not repo.attrs.write_enabled:
                raise disallowed({"Name": name, "Digest": digest})
            repo.blobs.discard(digest)
            self._changed()

    def start_upload(self, name: str) -> Upload:
        check_name(name)
        with self._lock:
            upload = Upload(id=str(uuid.uuid4()), repository=name)
            self._uploads[upload.id] = upload
            return upload

    def upload(self, name: str, upload_id: str) -> Upload:
        with self._lock:
            upload = self._uploads.get(upload_id)
            if upload is None or upload.repository != name:
                raise not_found(
                    "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", {"uuid": upload_id}
                )
            return upload

    def append_upload(
        self, name: str, upload_id: str, data: bytes, content_range: str | None
    ) -> Upload:
        with self._lock:
            upload = self.upload(name, upload_id)
            _check_continues(upload, content_range)
            upload.data.extend(data)
            return upload

    def finish_upload(
        self,
        name: str,
        upload_id: str,
        digest: str | None,
        data: bytes,
        content_range: str | None = None,
    ) -> str:
        if not digest:
            raise bad_request("DIGEST_INVALID", "digest query parameter is required", {})
        check_digest(digest)
        with self._lock:
            upload = self.upload(name, upload_id)
            if data:
                # The closing PUT may carry the last chunk (distribution-spec "Pushing a blob in
                # chunks"); out of order it is refused with 416 like a PATCH, the session kept.
                _check_continues(upload, content_range)
            content = bytes(upload.data) + data
            actual = sha256_digest(content)
            if actual != digest:
                raise bad_request(
                    "DIGEST_INVALID",
                    "provided digest did not match uploaded content",
                    {"digest": digest, "computed": actual},
                )
            self._blobs.put(digest, content)
            repo = self._repo_for_write(name)
            repo.blobs.add(digest)
            del self._uploads[upload_id]
            self._changed()
            return digest

    def put_blob(self, name: str, digest: str, data: bytes) -> str:
        """Monolithic upload (POST ...?digest= with the whole body)."""
        upload = self.start_upload(name)
        return self.finish_upload(name, upload.id, digest, data)

    def cancel_upload(self, name: str, upload_id: str) -> None:
        with self._lock:
            self.upload(name, upload_id)
            del self._uploads[upload_id]

    def mount_blob(self, name: str, source: str, digest: str) -> bool:
        check_name(name)
        check_name(source)
        check_digest(digest)
        with self._lock:
            origin = self._repos.get(source)
            if origin is None or digest not in origin.blobs or self._blobs.size(digest) is None:
                return False
            self._repo_for_write(name).blobs.add(digest)
            self._changed()
            return True

    # -- listings (v2) ----------------------------------------------------------------------------
    def v2_tags(self, name: str, n: str | None, last: str | None) -> tuple[dict[str, Any], str]:
        with self._lock:
            repo = self._repo(name)
            size = parse_page_size(n, None)
            names = sorted(t for t in repo.tags if not last or t > last)
            page, more = _page(names, size)
            link = ""
            if more and size is not None:
                link = _link(f"/v2/{name}/tags/list", {"last": page[-1], "n": str(size)})
            return {"name": name, "tags": page or None}, link  # null when empty, as distribution

    def catalog(self, n: str | None, last: str | None, path: str) -> tuple[dict[str, Any], str]:
        with self._lock:
            size = parse_page_size(n, None if path.startswith("/v2") else DEFAULT_PAGE)
            names = sorted(
                r.name
                for r in self._repos.values()
                if r.visible and r.attrs.list_enabled and (not last or r.name > last)
            )
            page, more = _page(names, size)
            link = _link(path, {"last": page[-1], "n": str(size)}) if more and size else ""
            return {"repositories": page}, link

    # -- /acr/v1 ----------------------------------------------------------------------------------
    def _repo_wire(self, repo: Repository) -> dict[str, Any]:
        return {
            "registry": self.login_server,
            "imageName": repo.name,
            "createdTime": format_wire_time(repo.created),
            "lastUpdateTime": format_wire_time(repo.updated),
            "manifestCount": len(repo.manifests),
            "tagCount": len(repo.tags),
            "changeableAttributes": {**repo.attrs.wire(), "teleportEnabled": False},
        }

    def _tag_wire(self, tag: TagRecord) -> dict[str, Any]:
        return {
            "name": tag.name,
            "digest": tag.digest,
            "createdTime": format_wire_time(tag.created),
            "lastUpdateTime": format_wire_time(tag.updated),
            "signed": False,
            "changeableAttributes": tag.attrs.wire(),
        }

    def _manifest_wire(
        self, repo: Repository, record: ManifestRecord, *, listing: bool = False
    ) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "digest": record.digest,
            "imageSize": record.image_size,
            "createdTime": format_wire_time(record.created),
            "lastUpdateTime": format_wire_time(record.updated),
        }
        if record.architecture:
            wire["architecture"] = record.architecture
        if record.os:
            wire["os"] = record.os
        wire["mediaType"] = record.media_type
        if record.config_media_type:
            wire["configMediaType"] = record.config_media_type
        tags = repo.tags_of(record.digest)
        if tags:
            wire["tags"] = tags
        if record.references and not listing:  # ACR lists indexes without their references
            wire["references"] = [dict(r) for r in record.references]
        if record.subject:
            wire["subject"] = record.subject  # emulator extension: marks referrers
        if record.artifact_type:
            wire["artifactType"] = record.artifact_type
        wire["changeableAttributes"] = record.attrs.wire()
        return wire

    def repository(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._repo_wire(self._repo(name))

    def update_repository(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            repo = self._repo(name)
            repo.attrs.update(body)
            self._changed()
            return self._repo_wire(repo)

    def delete_repository(self, name: str) -> tuple[dict[str, Any], list[DeletedManifest]]:
        with self._lock:
            repo = self._repo(name)
            if (
                repo.attrs.locked
                or any(m.attrs.locked for m in repo.manifests.values())
                or any(t.attrs.locked for t in repo.tags.values())
            ):
                raise disallowed({"Name": name})
            deleted = [
                DeletedManifest(name, m.digest, m.media_type, tuple(repo.tags_of(m.digest)))
                for m in repo.manifests.values()
            ]
            result = {
                "manifestsDeleted": sorted(repo.manifests),
                "tagsDeleted": sorted(repo.tags),
            }
            del self._repos[name]
            self._changed()
            return result, deleted

    def _ordered(
        self,
        items: Iterable[T],
        order: str | None,
        key_name: Callable[[T], str],
        key_time: Callable[[T], tuple[datetime, int]],
        last: str | None,
        *,
        cursor: tuple[str, str],
    ) -> list[T]:
        """Items in the requested order, after `last`.

        By name, "after" is simply `name > last`. By time, "after" is the position `last` had
        when the emulator served it as the last entry of a page (remembered per repository and
        listing), else its current position, else the start: so a page whose `last` tag was
        deleted (or moved) meanwhile resumes where it was, never restarts (no loop) and never
        skips an entry that neither moved nor was deleted. ACR's own behaviour here is unknown.
        """
        order = (order or "").lower()
        if order not in ORDERS:
            raise bad_request(
                "UNSUPPORTED", "orderby must be timedesc or timeasc", {"orderby": order}
            )
        if order in ("timedesc", "timeasc"):
            descending = order == "timedesc"
            ordered = sorted(items, key=key_time, reverse=descending)
            if last:
                position = self._cursors.get((*cursor, last))
                if position is None:
                    position = next((key_time(i) for i in ordered if key_name(i) == last), None)
                if position is not None:
                    mark = position
                    ordered = [
                        i
                        for i in ordered
                        if (key_time(i) < mark if descending else key_time(i) > mark)
                    ]
            return ordered
        ordered = sorted(items, key=key_name)
        return [i for i in ordered if not last or key_name(i) > last]

    def _remember(self, cursor: tuple[str, str], name: str, position: tuple[datetime, int]) -> None:
        """Remember where a time-ordered page ended (bounded, oldest forgotten first)."""
        key = (*cursor, name)
        self._cursors[key] = position
        self._cursors.move_to_end(key)
        while len(self._cursors) > MAX_CURSORS:
            self._cursors.popitem(last=False)

    def list_tags(
        self,
        name: str,
        n: str | None,
        last: str | None,
        orderby: str | None,
        digest: str | None,
    ) -> tuple[dict[str, Any], str]:
        with self._lock:
            repo = self._repo(name)
            size = min(parse_page_size(n, DEFAULT_PAGE) or DEFAULT_PAGE, MAX_PAGE)
            if digest:
                check_digest(digest)
            tags = [
                t
                for t in repo.tags.values()
                if t.attrs.list_enabled and (not digest or t.digest == digest)
            ]
            ordered = self._ordered(
                tags,
                orderby,
                lambda t: t.name,
                lambda t: (t.updated, t.seq),
                last,
                cursor=(name, "tags" + (digest or "")),
            )
            page, more = _page(ordered, size)
            link = ""
            if more and size:
                self._remember(
                    (name, "tags" + (digest or "")), page[-1].name, (page[-1].updated, page[-1].seq)
                )
                params = {"last": page[-1].name, "n": str(size), "orderby": orderby or ""}
                if digest:
                    params["digest"] = digest
                link = _link(f"/acr/v1/{quote(name, safe='')}/_tags", params)
            body = {
                "registry": self.login_server,
                "imageName": name,
                "tags": [self._tag_wire(t) for t in page],
            }
            return body, link

    def tag(self, name: str, tag: str) -> dict[str, Any]:
        with self._lock:
            repo = self._repo(name)
            record = self._tag(repo, tag)
            return {
                "registry": self.login_server,
                "imageName": name,
                "tag": self._tag_wire(record),
            }

    def update_tag(self, name: str, tag: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            repo = self._repo(name)
            record = self._tag(repo, tag)
            record.attrs.update(body)
            self._changed()
            return self.tag(name, tag)

    def delete_tag(self, name: str, tag: str) -> None:
        with self._lock:
            repo = self._repo(name)
            record = self._tag(repo, tag)
            holder = repo.manifests.get(record.digest)
            if (
                record.attrs.locked
                or (holder is not None and holder.attrs.locked)
                or repo.attrs.locked
            ):
                raise disallowed({"Name": name, "Tag": tag})
            del repo.tags[tag]
            repo.updated = self.clock.now()
            self._changed()

    def list_manifests(
        self, name: str, n: str | None, last: str | None, orderby: str | None
    ) -> tuple[dict[str, Any], str]:
        with self._lock:
            repo = self._repo(name)
            size = min(parse_page_size(n, DEFAULT_PAGE) or DEFAULT_PAGE, MAX_PAGE)
            records = [m for m in repo.manifests.values() if m.attrs.list_enabled]
            ordered = self._ordered(
                records,
                orderby,
                lambda m: m.digest,
                lambda m: (m.updated, m.seq),
                last,
                cursor=(name, "manifests"),
            )
            page, more = _page(ordered, size)
            link = ""
            if more and size:
                self._remember(
                    (name, "manifests"), page[-1].digest, (page[-1].updated, page[-1].seq)
                )
                params = {"last": page[-1].digest, "n": str(size), "orderby": orderby or ""}
                link = _link(f"/acr/v1/{quote(name, safe='')}/_manifests", params)
            body = {
                "registry": self.login_server,
                "imageName": name,
                "manifests": [self._manifest_wire(repo, m, listing=True) for m in page],
            }
            return body, link

    def manifest_properties(self, name: str, digest: str) -> dict[str, Any]:
        with self._lock:
            repo = self._repo(name)
            record = self._manifest(repo, digest)
            return {
                "registry": self.login_server,
                "imageName": name,
                "manifest": self._manifest_wire(repo, record),
            }

    def update_manifest(self, name: str, digest: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            repo = self._repo(name)
            record = self._manifest(repo, digest)
            record.attrs.update(body)
            self._changed()
            return self.manifest_properties(name, digest)

    # -- introspection for tests ------------------------------------------------------------------
    def repository_names(self) -> list[str]:
        with self._lock:
            return sorted(n for n, r in self._repos.items() if r.visible)

    def tag_digest(self, name: str, tag: str) -> str | None:
        with self._lock:
            repo = self._repos.get(name)
            record = repo.tags.get(tag) if repo else None
            return record.digest if record else None

    def upload_count(self) -> int:
        with self._lock:
            return len(self._uploads)
