"""Container image content built in memory, pushed over raw HTTP, or written as an OCI layout.

Everything here is real registry content: real gzip-compressed tar layers, configs whose `diff_ids`
match the layers, manifests whose digests are the sha256 of the exact bytes we serialise. Manifests
are serialised the way the tools that produce them do, so that a client re-serialising them with
`json.dumps` gets a different digest (the bug the re-tag design works around):

- Docker v2 schema 2 manifests and manifest lists: Go's `json.MarshalIndent(m, "", "   ")`
  (3-space indentation, no trailing newline), like `docker push`.
- OCI manifests and indexes: compact JSON (`separators=(",", ":")`), like buildkit/containerd.

`push_image()` follows the distribution protocol with `requests` (POST upload, PUT with digest,
relative or absolute `Location`), answering a `Bearer` challenge the way ACR's anonymous flow does
(POST `grant_type=password` with the challenge's service and scope to the realm).
`write_oci_layout()` writes an OCI image layout directory that `skopeo copy oci:DIR:TAG ...` reads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"

MANIFEST_MEDIA_TYPES = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
ACCEPT_ALL_MANIFESTS = ", ".join(MANIFEST_MEDIA_TYPES)

PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_json(document: Mapping[str, Any]) -> bytes:
    """Serialise like Go's json.MarshalIndent(v, "", "   "), as `docker push` does."""
    return json.dumps(document, indent=3, ensure_ascii=False).encode()


def compact_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest, **extra}


@dataclass(frozen=True)
class Image:
    """One manifest (raw bytes exactly as pushed) plus everything it references.

    `blobs` are the config and layers of an image manifest (empty for an index/list); `children`
    are the platform manifests of an index/list (pushed by digest before the index itself).
    `subject` is set for an OCI referrer (the manifest it refers to must be pushed first).
    """

    raw: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[Image, ...] = ()
    platform: tuple[str, str] | None = None  # (os, architecture) when this is an index child
    subject: Image | None = field(default=None, repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed

    @property
    def is_index(self) -> bool:
        return self.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest, **extra}

    def all_blobs(self) -> Iterator[Blob]:
        """Every blob this image needs in the registry (children's blobs included), deduplicated."""
        seen: set[str] = set()
        for image in (*self.children, self):
            for blob in image.blobs:
                if blob.digest not in seen:
                    seen.add(blob.digest)
                    yield blob


def _rng(seed: int | None) -> random.Random:
    return random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "big"))


def random_layer(
    rng: random.Random, size: int = 512, media_type: str = OCI_LAYER
) -> tuple[Blob, str]:
    """A gzip-compressed tar holding one file of random bytes; returns (blob, diff_id)."""
    payload = rng.randbytes(size)
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(f"data-{rng.getrandbits(32):08x}.bin")
        info.size = len(payload)
        info.mtime = 0
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(payload))
    tar_bytes = tar_buffer.getvalue()
    compressed = gzip.compress(tar_bytes, mtime=0)
    return Blob(compressed, media_type), sha256_digest(tar_bytes)


def image_config(
    diff_ids: list[str],
    *,
    os_name: str = "linux",
    architecture: str = "amd64",
    marker: str = "",
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "architecture": architecture,
        "os": os_name,
        "created": "2026-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": {"test.marker": marker, **(labels or {})},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "tests/support/images.py"}],
    }


def _single(
    *,
    docker: bool,
    layers: int,
    layer_size: int,
    os_name: str,
    architecture: str,
    seed: int | None,
    annotations: Mapping[str, str] | None = None,
    subject: Image | None = None,
    labels: Mapping[str, str] | None = None,
) -> Image:
    rng = _rng(seed)
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    built = [random_layer(rng, layer_size, layer_type) for _ in range(layers)]
    config_doc = image_config(
        [diff_id for _, diff_id in built],
        os_name=os_name,
        architecture=architecture,
        marker=f"{rng.getrandbits(64):016x}",
        labels=labels,
    )
    config = Blob(compact_json(config_doc), DOCKER_CONFIG if docker else OCI_CONFIG)
    layer_blobs = [blob for blob, _ in built]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [blob.descriptor() for blob in layer_blobs],
    }
    if subject is not None:
        document["subject"] = subject.descriptor()
    if annotations:
        document["annotations"] = dict(annotations)
    raw = docker_json(document) if docker else compact_json(document)
    return Image(
        raw=raw,
        media_type=document["mediaType"],
        blobs=(config, *layer_blobs),
        subject=subject,
    )


def docker_image(
    *,
    layers: int = 1,
    layer_size: int = 512,
    os_name: str = "linux",
    architecture: str = "amd64",
    seed: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> Image:
    """A Docker v2 schema 2 image, manifest pretty-printed with 3 spaces like `docker push`;
    `labels` go into the config's `config.Labels` (as `docker build --label` puts them)."""
    return _single(
        docker=True,
        layers=layers,
        layer_size=layer_size,
        os_name=os_name,
        architecture=architecture,
        seed=seed,
        labels=labels,
    )


def oci_image(
    *,
    layers: int = 1,
    layer_size: int = 512,
    os_name: str = "linux",
    architecture: str = "amd64",
    seed: int | None = None,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Image:
    """An OCI image manifest (compact JSON); `labels` go into the config's `config.Labels`."""
    return _single(
        docker=False,
        layers=layers,
        layer_size=layer_size,
        os_name=os_name,
        architecture=architecture,
        seed=seed,
        annotations=annotations,
        labels=labels,
    )


def _index(
    *,
    docker: bool,
    layer_size: int,
    seed: int | None,
    labels: Mapping[str, str] | None = None,
    attestation_first: bool = False,
) -> Image:
    rng = _rng(seed)
    children = tuple(
        _with_platform(
            _single(
                docker=docker,
                layers=1,
                layer_size=layer_size,
                os_name=os_name,
                architecture=arch,
                seed=rng.getrandbits(64),
                labels=labels if labels is None else {**labels, "platform": f"{os_name}/{arch}"},
            ),
            (os_name, arch),
        )
        for os_name, arch in PLATFORMS
    )
    descriptors = [
        child.descriptor(platform={"architecture": child.platform[1], "os": child.platform[0]})
        for child in children
        if child.platform is not None
    ]
    if attestation_first:
        # buildx's provenance attestation: an image manifest with platform unknown/unknown.
        attestation = _single(
            docker=docker,
            layers=1,
            layer_size=64,
            os_name="unknown",
            architecture="unknown",
            seed=rng.getrandbits(64),
            labels={"org.opencontainers.image.revision": "not-the-image"},
        )
        children = (attestation, *children)
        descriptors.insert(
            0,
            attestation.descriptor(
                platform={"architecture": "unknown", "os": "unknown"},
                annotations={"vnd.docker.reference.type": "attestation-manifest"},
            ),
        )
    media_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": descriptors,
    }
    raw = docker_json(document) if docker else compact_json(document)
    return Image(raw=raw, media_type=media_type, children=children)


def _with_platform(image: Image, platform: tuple[str, str]) -> Image:
    return Image(
        raw=image.raw,
        media_type=image.media_type,
        blobs=image.blobs,
        platform=platform,
        subject=image.subject,
    )


def oci_index(
    *,
    layer_size: int = 512,
    seed: int | None = None,
    labels: Mapping[str, str] | None = None,
    attestation_first: bool = False,
) -> Image:
    """An OCI image index with two OCI image children: linux/amd64 and linux/arm64 (each child's
    config gets `labels` plus `platform=<os>/<arch>`); `attestation_first` lists a buildx-style
    attestation manifest (unknown/unknown) before them."""
    return _index(
        docker=False,
        layer_size=layer_size,
        seed=seed,
        labels=labels,
        attestation_first=attestation_first,
    )


def docker_manifest_list(
    *, layer_size: int = 512, seed: int | None = None, labels: Mapping[str, str] | None = None
) -> Image:
    """A Docker manifest list (3-space indentation) with two Docker v2 children (amd64, arm64)."""
    return _index(docker=True, layer_size=layer_size, seed=seed, labels=labels)


def referrer(
    subject: Image,
    *,
    artifact_type: str = "application/vnd.example.sbom.v1+json",
    seed: int | None = None,
) -> Image:
    """An OCI artifact manifest whose `subject` is `subject` (an OCI referrer, e.g. an SBOM)."""
    rng = _rng(seed)
    empty_config = Blob(b"{}", OCI_EMPTY_CONFIG)
    payload = Blob(rng.randbytes(128), artifact_type)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty_config.descriptor(),
        "layers": [payload.descriptor()],
        "subject": subject.descriptor(),
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }
    return Image(
        raw=compact_json(document),
        media_type=OCI_MANIFEST,
        blobs=(empty_config, payload),
        subject=subject,
    )


# --------------------------------------------------------------------------------------------
# Raw HTTP client for /v2 (distribution protocol), with the ACR/anonymous bearer-token dance.

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split `Bearer realm="...",service="...",scope="..."` into ("bearer", {params})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class V2Session:
    """A `requests.Session` bound to one registry that answers auth challenges transparently.

    On `401` with a `Bearer` challenge it POSTs the challenge's realm with
    `grant_type=password`, `service`, `scope` (and `username`/`password` when `auth` is given;
    otherwise anonymous, as ACR's anonymous pull/push and our emulator accept), then retries once
    with the access token. Tokens are cached per scope. `Basic` challenges use `auth`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        verify: str | bool,
        auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.http = requests.Session()
        self.http.verify = verify
        self.http.trust_env = False  # ignore proxies / REQUESTS_CA_BUNDLE from the environment
        self._tokens: dict[str, str] = {}
        self.token_requests = 0

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url.lstrip("/"))

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """One request, answering an auth challenge; a blob GET's `307` to storage (ACR, the
        emulator) is followed once, WITHOUT the registry token, unless `allow_redirects` is
        given (the redirect answer is then in `response.history`)."""
        follow = kwargs.pop("allow_redirects", None) is None and method in ("GET", "HEAD")
        response = self._request(method, path_or_url, **kwargs)
        location = response.headers.get("Location")
        if follow and response.status_code == 307 and location:
            headers = {
                k: v for k, v in (kwargs.get("headers") or {}).items() if k != "Authorization"
            }
            target = urljoin(response.url, location)
            timeout = kwargs.get("timeout", self.timeout)
            followed = self.http.request(
                method, target, headers=headers, timeout=timeout, allow_redirects=False
            )
            followed.history = [response]
            return followed
        return response

    def _request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False
        url = self.url(path_or_url)
        headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        response = self.http.request(method, url, headers=headers, **kwargs)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(challenge)
        if scheme == "bearer" and "realm" in params:
            token = self._token(params)
            retry_headers = {**headers, "Authorization": f"Bearer {token}"}
        elif scheme == "basic" and self.auth is not None:
            retry_headers = headers
            kwargs["auth"] = self.auth
        else:
            return response
        return self.http.request(method, url, headers=retry_headers, **kwargs)

    def _token(self, params: Mapping[str, str]) -> str:
        scope = params.get("scope", "")
        cached = self._tokens.get(scope)
        if cached is not None:
            return cached
        form = {"grant_type": "password", "service": params.get("service", ""), "scope": scope}
        if self.auth is not None:
            form["username"], form["password"] = self.auth
        self.token_requests += 1
        answer = self.http.post(params["realm"], data=form, timeout=self.timeout)
        answer.raise_for_status()
        body = answer.json()
        token = body.get("access_token") or body.get("token")
        if not isinstance(token, str) or not token:
            raise RuntimeError(f"token endpoint {params['realm']} returned no access_token")
        self._tokens[scope] = token
        return token

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> V2Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol steps ---------------------------------------------------------------------

    def upload_blob(self, repository: str, blob: Blob) -> requests.Response:
        """Monolithic upload: POST /blobs/uploads/ then PUT <Location>?digest=... with the bytes.

        Skips the upload when HEAD says the blob already exists. Returns the final response.
        """
        head = self.request("HEAD", f"/v2/{repository}/blobs/{blob.digest}")
        if head.status_code == 200:
            return head
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/")
        if started.status_code != 202:
            raise PushError("POST blob upload", started)
        location = self.upload_location(started)
        separator = "&" if "?" in location else "?"
        done = self.request(
            "PUT",
            f"{location}{separator}digest={blob.digest}",
            data=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code != 201:
            raise PushError(f"PUT blob {blob.digest}", done)
        return done

    def upload_location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise PushError("upload answer without Location", response)
        # Relative locations (distribution with relativeurls, ACR) resolve against the request URL.
        return urljoin(response.url, location)

    def put_manifest(
        self, repository: str, reference: str, raw: bytes, media_type: str
    ) -> requests.Response:
        return self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            data=raw,
            headers={"Content-Type": media_type},
        )

    def get_manifest(
        self, repository: str, reference: str, *, method: str = "GET", accept: str | None = None
    ) -> requests.Response:
        return self.request(
            method,
            f"/v2/{repository}/manifests/{reference}",
            headers={"Accept": accept or ACCEPT_ALL_MANIFESTS},
        )


class PushError(RuntimeError):
    def __init__(self, step: str, response: requests.Response) -> None:
        super().__init__(f"{step}: HTTP {response.status_code} {response.text[:500]}")
        self.response = response


def push_image(
    base_url: str,
    repository: str,
    image: Image,
    tag: str | None = None,
    *,
    verify: str | bool,
    auth: tuple[str, str] | None = None,
    session: V2Session | None = None,
) -> str:
    """Push `image` (blobs, children by digest, then itself by tag or digest); return its digest.

    Raises PushError with the registry's answer when any step is refused.
    """
    owned = session is None
    client = session or V2Session(base_url, verify=verify, auth=auth)
    try:
        _push(client, repository, image, tag)
    finally:
        if owned:
            client.close()
    return image.digest


def _push(client: V2Session, repository: str, image: Image, tag: str | None) -> None:
    if image.subject is not None:
        _push(client, repository, image.subject, None)
    for blob in image.blobs:
        client.upload_blob(repository, blob)
    for child in image.children:
        _push(client, repository, child, None)
    response = client.put_manifest(repository, tag or image.digest, image.raw, image.media_type)
    if response.status_code != 201:
        raise PushError(f"PUT manifest {repository}:{tag or image.digest}", response)
    returned = response.headers.get("Docker-Content-Digest")
    if returned is not None and returned != image.digest:
        raise PushError(f"registry computed digest {returned}, expected {image.digest}", response)


# --------------------------------------------------------------------------------------------
# OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)


def write_oci_layout(directory: str | os.PathLike[str], image: Image, tag: str) -> Path:
    """Write (or add to) an OCI image layout holding `image` under `tag`; return the directory.

    Use as `skopeo copy oci:DIR:TAG docker://...`. Adding a second tag to an existing layout keeps
    the entries already in `index.json` (an entry with the same tag is replaced).
    """
    root = Path(directory)
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def write(data: bytes) -> None:
        path = blobs_dir / hashlib.sha256(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)

    for item in (image.subject, image) if image.subject is not None else (image,):
        for blob in item.all_blobs():
            write(blob.data)
        for child in item.children:
            write(child.raw)
        write(item.raw)

    index_path = root / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "manifests": []}
    if index_path.exists():
        index = json.loads(index_path.read_text())
    ref_key = "org.opencontainers.image.ref.name"
    manifests = [m for m in index["manifests"] if m.get("annotations", {}).get(ref_key) != tag]
    manifests.append(image.descriptor(annotations={ref_key: tag}))
    index["manifests"] = manifests
    index_path.write_text(json.dumps(index, indent=2))
    return root
