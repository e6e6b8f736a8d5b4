"""`AcrRegistry`: the `retag.registry.Registry` protocol on top of `azure-containerregistry`.

The package `retag.acr` is the edge of the application: the only code importing
`azure.containerregistry` and `azure.identity` (ruff TID251 enforces it). Nothing else in `retag/`
imports it at module import time; callers import it inside the function that needs a registry, so
`import function_app` stays cheap (issue 3: cold start).

One concept per module:

- `auth`: JWT expiry, Bearer challenges, the scope of a request, the per-scope token cache;
- `transport`: the one transport every request passes through (deadline, the ONE retry layer,
  bearer auth, request counting, permanent TLS failures);
- `errors`: SDK exceptions -> `retag.registry` errors with one-line messages naming the role;
- `wire`: ACR's JSON -> `TagInfo`/`ManifestInfo`, paging via `Link`;
- `client` (here): the adapter, built from settings, one per process (`registry_for`).

Public parts only: the SDK's `ContainerRegistryClient` for manifests, tags and blobs; for the raw
JSON listings, an `azure.core.PipelineClient` of our own over the same transport (public
`send_request`), instead of the generated client the SDK keeps private.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

from azure.containerregistry import ContainerRegistryClient
from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import (
    HeadersPolicy,
    HttpLoggingPolicy,
    ProxyPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from retag.acr import wire
from retag.acr.auth import Authenticator
from retag.acr.errors import http_error, map_exception
from retag.acr.transport import (
    NO_RETRY,
    AcrTransport,
    RetryRules,
    TransportOptions,
    environment_settings,
    trust_description,
)
from retag.logline import redact
from retag.oci import IMAGE_PARTS, OCI_MANIFEST
from retag.registry import Manifest, ManifestInfo, RegistryError, TagInfo
from retag.settings import DEFAULT_AUDIENCE, check_ca_bundle, parse_login_server
from retag.timeutil import as_utc

if TYPE_CHECKING:
    from retag.settings import RegistrySettings

_T = TypeVar("_T")

__all__ = ["AcrRegistry", "CredentialSpec", "check_credential", "registry_for"]

CredentialSpec = Literal["default", "anonymous"] | TokenCredential
_USER_AGENT = "acr-retag"


def _token_credential(credential: CredentialSpec) -> TokenCredential | None:
    if credential == "default":
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    if credential == "anonymous":
        return None
    if isinstance(credential, str) or not hasattr(credential, "get_token"):
        raise ValueError(
            f"credential must be 'default', 'anonymous' or a TokenCredential, got {credential!r}"
        )
    return credential


class AcrRegistry:
    """`retag.registry.Registry` for Azure Container Registry (and our emulator).

    One SDK client, transport and token cache per instance; thread-safe (the sweeps share one
    instance between threads). Build one per process (`registry_for`).

    `credential`: "default" (`DefaultAzureCredential`, honours AZURE_CLIENT_ID), "anonymous"
    (ACR anonymous pull, the emulator, public registries) or any `TokenCredential`.
    `ca_bundle`: PEM file of CAs for TLS (never taken from REQUESTS_CA_BUNDLE implicitly).
    `deadline_seconds` bounds each registry call (retries, `Retry-After` and token calls included;
    each page of a listing is one call). `retry_*`: the transport's one retry layer (module
    `transport`). `page_size` is the `n` of listings. `clock` (Unix seconds) is only for tests of
    token expiry. Requests are counted per thread with `retag.registry.tally_requests()`.
    """

    def __init__(
        self,
        login_server: str,
        *,
        credential: CredentialSpec,
        audience: str = DEFAULT_AUDIENCE,
        ca_bundle: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        retry_total: int = 3,
        deadline_seconds: float = 20.0,
        retry_backoff_factor: float = 0.5,
        retry_backoff_max: float = 8.0,
        page_size: int = wire.PAGE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self._login_server = parse_login_server(login_server)
        except ValueError as exc:
            raise ValueError(f"login server: {exc}") from None
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("deadline_seconds", deadline_seconds),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
        if retry_total < 0:
            raise ValueError(f"retry_total must be >= 0, got {retry_total!r}")
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000, got {page_size!r}")
        if ca_bundle:
            try:
                ca_bundle = check_ca_bundle(ca_bundle)
            except ValueError as exc:
                raise ValueError(f"ca_bundle: {exc}") from None
        self._page_size = page_size
        token_credential = _token_credential(credential)
        self._anonymous = token_credential is None
        endpoint = self.endpoint
        self._authenticator = Authenticator(
            endpoint, token_credential, audience.rstrip("/") + "/.default", clock
        )
        verify, proxies = environment_settings(self._login_server, ca_bundle)
        inner = RequestsTransport(
            connection_timeout=connect_timeout,
            read_timeout=read_timeout,
            connection_verify=verify,
            use_env_settings=False,
        )
        inner.open()  # create the session now, not racily from the first worker threads
        options = TransportOptions(
            host=self._login_server,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline_seconds=deadline_seconds,
            retry=RetryRules(retry_total, retry_backoff_factor, retry_backoff_max),
            trust=trust_description(ca_bundle),
        )
        self._transport = AcrTransport(inner, self._authenticator, options)
        self._client = ContainerRegistryClient(
            endpoint,
            token_credential,
            audience=audience,
            transport=self._transport,
            retry_policy=NO_RETRY,  # the transport is the one retry layer
            user_agent=_USER_AGENT,
            proxies=proxies,
        )
        self._raw: PipelineClient[Any, Any] = PipelineClient(
            endpoint,
            pipeline=Pipeline(
                transport=self._transport,
                policies=[
                    HeadersPolicy({"Accept": "application/json"}),
                    UserAgentPolicy(user_agent=_USER_AGENT),
                    ProxyPolicy(proxies=proxies),
                    HttpLoggingPolicy(),  # the SDK's request log, quieted like the SDK's
                ],
            ),
        )

    @classmethod
    def from_settings(cls, settings: RegistrySettings, **options: Any) -> AcrRegistry:
        """An adapter for the app settings (`ACR_LOGIN_SERVER`, `ACR_CREDENTIAL`, `ACR_AUDIENCE`,
        `ACR_CA_BUNDLE`); `options` are the keyword arguments of the constructor (timeouts...)."""
        return cls(
            settings.login_server,
            credential=settings.credential,
            audience=settings.audience,
            ca_bundle=settings.ca_bundle,
            **options,
        )

    # -- housekeeping --------------------------------------------------------------------------
    @property
    def login_server(self) -> str:
        return self._login_server

    @property
    def endpoint(self) -> str:
        return "https://" + self._login_server

    @property
    def authenticator(self) -> Authenticator:
        """The token cache and credential (read by `check_credential`)."""
        return self._authenticator

    def close(self) -> None:
        self._client.close()
        self._raw.close()
        self._transport.close()  # the clients' close() leaves the shared transport open

    def __enter__(self) -> AcrRegistry:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "anonymous" if self._anonymous else "token"
        return f"AcrRegistry({self._login_server!r}, {mode})"

    @contextmanager
    def _mapped(self, action: str, target: str) -> Iterator[None]:
        try:
            yield
        except wire.WireError as exc:
            raise map_exception(exc, action, target, self._login_server) from exc
        except RegistryError:
            raise
        except (AzureError, ValueError, KeyError) as exc:
            attempts = self._transport.attempts()
            error = map_exception(exc, action, target, self._login_server, attempts=attempts)
            raise error from exc

    def _fail(self, action: str, target: str, message: str) -> NoReturn:
        raise RegistryError(redact(f"{action} {target} on {self._login_server}: {message}"))

    # -- manifests -----------------------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest by tag or digest, byte-exact (the SDK keeps only the parsed JSON, so the
        raw 200 response is captured with azure-core's `raw_response_hook`)."""
        target = f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
        captured: dict[str, Any] = {}

        def capture(pipeline_response: Any) -> None:
            response = pipeline_response.http_response
            if response.status_code == 200:
                captured["raw"] = response.read()
                captured["content_type"] = response.headers.get("Content-Type")

        with self._mapped("pull", target):
            result = self._client.get_manifest(repository, reference, raw_response_hook=capture)
        raw = captured.get("raw")
        if not isinstance(raw, bytes):
            self._fail("pull", target, "the manifest response body was not captured")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if digest != result.digest:
            self._fail("pull", target, f"body digest {digest} != registry digest {result.digest}")
        media_type = wire.media_type(captured.get("content_type") or result.media_type)
        if not media_type:
            self._fail("pull", target, "the registry sent no Content-Type for the manifest")
        return Manifest(raw=raw, media_type=media_type, digest=digest)

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A blob (the image config, for label fields) with the SDK's `download_blob`: ACR
        answers 307 to storage and azure-core's RedirectPolicy follows it; the bearer layer of
        our transport only ever authorises the login server, so storage never sees the registry
        token (tests/acr: the emulator's storage listener refuses a request that carries one)."""
        target = f"{repository}@{digest}"
        chunks: list[bytes] = []
        size = 0
        with self._mapped("pull", target):
            for chunk in self._client.download_blob(repository, digest):
                size += len(chunk)
                if size > max_bytes:
                    self._fail("pull", target, f"the blob is larger than {max_bytes} bytes")
                chunks.append(chunk)
        data = b"".join(chunks)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            self._fail("pull", target, "the blob's bytes do not match its digest")
        return data

    def put_manifest(self, repository: str, manifest: Manifest, tag: str) -> str:
        """PUT `manifest.raw` unchanged under `tag` with its media type; returns the registry's
        digest (the SDK checks it against the bytes sent, so re-serialisation cannot slip in)."""
        with self._mapped("push", f"{repository}:{tag}"):
            return self._client.set_manifest(
                repository, io.BytesIO(manifest.raw), tag=tag, media_type=manifest.media_type
            )

    def get_manifest_info(self, repository: str, digest: str) -> ManifestInfo:
        target = f"{repository}@{digest}"
        path = f"/acr/v1/{wire.quote(repository)}/_manifests/{wire.quote(digest)}"
        with self._mapped("metadata_read", target):
            entry = wire.json_object(self._send_get(path)).get("manifest")
            if not isinstance(entry, Mapping):
                self._fail("metadata_read", target, "the registry sent no manifest attributes")
            return wire.manifest_info_from_json(entry)

    def list_manifests(self, repository: str) -> Iterator[ManifestInfo]:
        path = f"/acr/v1/{wire.quote(repository)}/_manifests"
        yield from self._paged(path, {}, "manifests", repository, wire.manifest_info_from_json)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest by digest (and with it every tag on it). Missing: no error."""
        if not digest.startswith("sha256:"):
            raise ValueError(f"delete_manifest needs a digest (sha256:...), got {digest!r}")
        with self._mapped("delete", f"{repository}@{digest}"):
            self._client.delete_manifest(repository, digest)

    # -- tags ----------------------------------------------------------------------------------
    def get_tag(self, repository: str, tag: str) -> TagInfo:
        with self._mapped("metadata_read", f"{repository}:{tag}"):
            props = self._client.get_tag_properties(repository, tag)
            return TagInfo(
                name=props.name,
                digest=props.digest,
                created_on=as_utc(props.created_on),
                last_updated_on=as_utc(props.last_updated_on),
                can_delete=props.can_delete is not False,
                can_write=props.can_write is not False,
            )

    def list_tags(self, repository: str, *, digest: str | None = None) -> Iterator[TagInfo]:
        """Every tag (pages of `page_size`, following `Link`); with `digest`, only the tags on it
        (ACR's `_tags?digest=` filter). No `orderby`: the registry's default order.

        Same request as the SDK's `list_tag_properties(results_per_page=n, digest=...)`, but the
        JSON is read directly (`wire.tag_info_from_json`), not through the SDK's deserializer."""
        query = {} if digest is None else {"digest": digest}
        path = f"/acr/v1/{wire.quote(repository)}/_tags"
        yield from self._paged(path, query, "tags", repository, wire.tag_info_from_json)

    def delete_tag(self, repository: str, tag: str) -> None:
        """Delete the tag only (the manifest stays). A tag that is already gone is not an error."""
        with self._mapped("delete", f"{repository}:{tag}"):
            self._client.delete_tag(repository, tag)

    # -- repositories --------------------------------------------------------------------------
    def list_repositories(self) -> Iterator[str]:
        with self._mapped("catalog", "repositories"):
            yield from self._client.list_repository_names(results_per_page=self._page_size)

    # -- pushing (CLI `push-sample`, demo) -------------------------------------------------------
    def push_image(
        self,
        repository: str,
        tag: str,
        config: bytes,
        layers: list[bytes],
        *,
        media_type: str = OCI_MANIFEST,
    ) -> str:
        """Upload the config and layer blobs, then PUT an image manifest under `tag`.

        Docker v2 manifests are written with 3-space indentation, like `docker push` does.
        Returns the manifest digest.
        """
        if media_type not in IMAGE_PARTS:
            raise ValueError(f"push_image supports {' and '.join(IMAGE_PARTS)}")
        config_type, layer_type = IMAGE_PARTS[media_type]
        descriptors = []
        with self._mapped("push", f"{repository}:{tag}"):
            for blob in (config, *layers):
                digest, size = self._client.upload_blob(repository, io.BytesIO(blob))
                descriptors.append({"digest": digest, "size": size})
        document = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, **descriptors[0]},
            "layers": [{"mediaType": layer_type, **d} for d in descriptors[1:]],
        }
        raw = json.dumps(document, indent=None if media_type == OCI_MANIFEST else 3).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        pushed = self.put_manifest(repository, Manifest(raw, media_type, digest), tag)
        if pushed != digest:
            self._fail("push", f"{repository}:{tag}", f"registry digest {pushed} != {digest}")
        return pushed

    # -- raw JSON through our own pipeline over the same transport -----------------------------
    def _send_get(self, path_or_url: str) -> Any:
        """GET a path (or a `Link` URL, relative ones resolved against the endpoint as the SDK's
        pager does) with the public `PipelineClient.send_request`; non-200 raises like the SDK."""
        request = HttpRequest("GET", self._raw.format_url(path_or_url))
        response = self._raw.send_request(request)
        if response.status_code != 200:
            response.read()
            raise http_error(response)
        return response

    def _paged(
        self,
        path: str,
        query: Mapping[str, str],
        field: str,
        target: str,
        parse: Callable[[Mapping[str, Any]], _T],
    ) -> Iterator[_T]:
        """`wire.paged` over `_send_get`, errors mapped as a metadata read of `target`."""
        url = wire.first_page(path, self._page_size, query)
        with self._mapped("metadata_read", target):
            yield from wire.paged(self._send_get, url, field, parse)


_registries: dict[RegistrySettings, AcrRegistry] = {}
_registries_lock = threading.Lock()


def registry_for(settings: RegistrySettings) -> AcrRegistry:
    """The process-wide `AcrRegistry` for `settings`: built once per worker process (client,
    credential, connection pool and token cache are then reused by every invocation), thread-safe.
    """
    registry = _registries.get(settings)
    if registry is not None:
        return registry
    with _registries_lock:
        registry = _registries.get(settings)
        if registry is None:
            registry = _registries[settings] = AcrRegistry.from_settings(settings)
        return registry


def check_credential(registry: AcrRegistry) -> float | None:
    """`acr-retag doctor`: the expiry of a Microsoft Entra token for the registry audience (None
    for an anonymous adapter); see `auth.Authenticator.entra_token_expiry`."""
    return registry.authenticator.entra_token_expiry()
