"""HTTP layer: routing for /v2, /acr/v1, /oauth2 and the /_emulator admin API, on a threaded
HTTPS server. `Registry.handle()` turns one parsed `Request` into a `Response`; the handler class
deals with sockets, TLS, body framing, fault injection and the request log.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from emulator.auth import TokenService, challenge
from emulator.clock import Clock, format_time, parse_time
from emulator.delivery import Delivery, image_event
from emulator.errors import PAGE_NOT_FOUND, ApiError, error_body, not_found
from emulator.faults import Faults, FaultSettings
from emulator.manifests import OCI_INDEX, OCI_MANIFEST, check_digest, check_name, check_tag
from emulator.storage import Storage
from emulator.store import DeletedManifest, Store
from emulator.topic import Topic, TopicError

LOG = logging.getLogger("emulator")
MAX_BODY = 1024 * 1024 * 1024
MAX_LOG = 1_000_000  # request log entries kept (oldest dropped first)
REDACTED_QUERY = frozenset(
    {"access_token", "refresh_token", "password", "client_secret", "aeg-sas-key"}
)
JSON_TYPE = "application/json; charset=utf-8"


class Headers(Protocol):
    def get(self, name: str, /) -> str | None: ...


# What ACR answers (404 MANIFEST_UNKNOWN) when `Accept` does not list the stored OCI type: Azure/acr
# pull 764 (manifest), Azure/acr-cli pull 132 (index). Same words and rule as distribution: only an
# exact media type admits it (`*/*` does not); other types are served whatever `Accept` says.
NOT_ACCEPTED = {
    OCI_MANIFEST: "OCI manifest found, but accept header does not support OCI manifests",
    OCI_INDEX: "OCI index found, but accept header does not support OCI indexes",
}


@dataclass
class Request:
    method: str
    path: str  # percent-decoded
    query: dict[str, str]
    headers: Headers
    body: bytes = b""
    # Every `scope` of the query string, in order: the docker token protocol repeats the
    # parameter, one per resource (a cross-repository mount asks for two); `query` keeps one.
    scopes: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if value is not None else None

    def accepted(self) -> set[str]:
        """Media types listed in every `Accept` header (parameters dropped)."""
        get_all = getattr(self.headers, "get_all", None)
        values = get_all("Accept") if callable(get_all) else [self.headers.get("Accept")]
        return {
            part.split(";", 1)[0].strip().lower()
            for value in values or []
            if value
            for part in str(value).split(",")
        }


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = JSON_TYPE

    @classmethod
    def json(cls, status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(status, json.dumps(value).encode(), headers or {})

    @classmethod
    def error(cls, exc: ApiError) -> Response:
        return cls(exc.status, exc.body(), dict(exc.headers))


Handler = Callable[[Request, dict[str, str]], Response]
Needed = tuple[str, str, str] | None  # (type, name, action) or None for "any valid token"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: Mapping[str, tuple[Handler, Callable[[dict[str, str]], Needed] | str | None]]


def _repo_scope(action: str) -> Callable[[dict[str, str]], Needed]:
    def needed(params: dict[str, str]) -> Needed:
        return ("repository", params["name"], action)

    return needed


def _catalog(_: dict[str, str]) -> Needed:
    return ("registry", "catalog", "*")


def _ping(_: dict[str, str]) -> Needed:
    return None


class Registry:
    """The emulated registry: state, auth, faults, events and the request log."""

    def __init__(
        self,
        *,
        login_server: str,
        store: Store,
        tokens: TokenService,
        clock: Clock,
        delivery: Delivery,
        faults: Faults,
        storage: Storage | None = None,
        topic: Topic | None = None,
    ) -> None:
        self.login_server = login_server
        self.topic = topic if topic is not None else Topic()  # Event Grid topic (/api/events)
        self.storage = storage  # None: blobs are served by the registry itself (no redirect)
        self.store = store
        self.tokens = tokens
        self.clock = clock
        self.delivery = delivery
        self.faults = faults
        self._log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self._log_lock = threading.Lock()
        self.routes = self._routes()

    # -- request log ------------------------------------------------------------------------------
    def record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return [dict(e) for e in self._log]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    # -- routing ----------------------------------------------------------------------------------
    def _routes(self) -> list[Route]:
        pull, push, delete = _repo_scope("pull"), _repo_scope("push"), _repo_scope("delete")
        read, write = _repo_scope("metadata_read"), _repo_scope("metadata_write")
        name = r"(?P<name>[^?#]+?)"
        table: list[tuple[str, dict[str, tuple[Handler, Any]]]] = [
            (r"/api/events", {"POST": (self.topic_publish, "auth")}),  # own auth (emulator.topic)
            (r"/oauth2/exchange", {"POST": (self.oauth_exchange, "auth")}),
            (
                r"/oauth2/token",
                {"POST": (self.oauth_token, "auth"), "GET": (self.oauth_token, "auth")},
            ),
            (r"/v2/?", {"GET": (self.ping, _ping), "HEAD": (self.ping, _ping)}),
            (r"/v2/_catalog", {"GET": (self.v2_catalog, _catalog)}),
            (rf"/v2/{name}/tags/list", {"GET": (self.v2_tags, pull)}),
            (
                rf"/v2/{name}/manifests/(?P<ref>[^/]+)",
                {
                    "GET": (self.get_manifest, pull),
                    "HEAD": (self.get_manifest, pull),
                    "PUT": (self.put_manifest, push),
                    "DELETE": (self.delete_manifest, delete),
                },
            ),
            (rf"/v2/{name}/blobs/uploads/?", {"POST": (self.start_upload, push)}),
            (
                rf"/v2/{name}/blobs/uploads/(?P<uuid>[^/]+)",
                {
                    "GET": (self.upload_status, push),
                    "PATCH": (self.patch_upload, push),
                    "PUT": (self.finish_upload, push),
                    "DELETE": (self.cancel_upload, push),
                },
            ),
            (
                rf"/v2/{name}/blobs/(?P<digest>[^/]+)",
                {
                    "GET": (self.get_blob, pull),
                    "HEAD": (self.get_blob, pull),
                    "DELETE": (self.delete_blob, delete),
                },
            ),
            (rf"/v2/{name}/referrers/(?P<digest>[^/]+)", {"GET": (self.referrers, pull)}),
            (r"/acr/v1/_catalog", {"GET": (self.acr_catalog, _catalog)}),
            (rf"/acr/v1/{name}/_tags", {"GET": (self.list_tags, read)}),
            (
                rf"/acr/v1/{name}/_tags/(?P<tag>[^/]+)",
                {
                    "GET": (self.get_tag, read),
                    "PATCH": (self.patch_tag, write),
                    "DELETE": (self.delete_tag, delete),
                },
            ),
            (rf"/acr/v1/{name}/_manifests", {"GET": (self.list_manifests, read)}),
            (
                rf"/acr/v1/{name}/_manifests/(?P<digest>[^/]+)",
                {"GET": (self.get_manifest_props, read), "PATCH": (self.patch_manifest, write)},
            ),
            (
                rf"/acr/v1/{name}",
                {
                    "GET": (self.get_repository, read),
                    "PATCH": (self.patch_repository, write),
                    "DELETE": (self.delete_repository, delete),
                },
            ),
        ]
        return [Route(re.compile(f"^{pattern}$"), methods) for pattern, methods in table]

    def is_auth_path(self, path: str) -> bool:
        return path.startswith("/oauth2/")

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except ApiError as exc:
            return Response.error(exc)

    def _handle(self, request: Request) -> Response:
        for route in self.routes:
            match = route.pattern.match(request.path)
            if not match:
                continue
            entry = route.methods.get(request.method)
            if entry is None:
                allowed = ", ".join(sorted(route.methods))
                raise ApiError(
                    405,
                    "UNSUPPORTED",
                    f"method {request.method} not allowed here",
                    {"allowed": allowed},
                    {"Allow": allowed},
                )
            handler, needed = entry
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            if request.path.startswith("/acr/v1/"):
                # ACR's /acr/v1 router only matches valid names, digests and tags: anything else
                # is a plain-text 404 before auth (Go recording
                # TestClient_GetManifestProperties_wrongDigest).
                try:
                    if "name" in params:
                        check_name(params["name"])
                    if "digest" in params:
                        check_digest(params["digest"])
                    if "tag" in params:
                        check_tag(params["tag"])
                except ApiError:
                    return _page_not_found()
            elif "name" in params:
                check_name(params["name"])
            if needed != "auth":
                self._authorize(request, needed(params) if callable(needed) else None)
            return handler(request, params)
        if request.path.startswith("/acr/v1/"):
            return _page_not_found()
        raise not_found("NOT_FOUND", f"no such endpoint: {request.path}")

    def _authorize(self, request: Request, needed: Needed) -> None:
        """401 with ACR's challenge unless the bearer token grants `needed`.

        Facts (Go SDK recordings, 2022-12/2023-01): no token -> no `error`; a valid token
        without the action -> `error="insufficient_scope"`; a bad or expired token ->
        `error="invalid_token"` (JS SDK recordings, 2021-05). Pushes (manifest PUT, uploads)
        challenge for `pull,push` with one detail entry per action.
        """
        authorization = request.header("Authorization")
        message = (
            "authentication required, visit https://aka.ms/acr/authorization for more information."
        )
        if needed is None:
            if self.tokens.is_valid_access(authorization):
                return
            error = "invalid_token" if authorization else None
            raise ApiError(
                401,
                "UNAUTHORIZED",
                message,
                None,
                {"WWW-Authenticate": challenge(self.login_server, None, error)},
            )
        type_, name, action = needed
        verdict = self.tokens.check(authorization, type_, name, action)
        if verdict == "ok":
            return
        actions = ["pull", "push"] if action == "push" else [action]
        scope = f"{type_}:{name}:{','.join(actions)}"
        error = {"invalid": "invalid_token", "insufficient": "insufficient_scope"}.get(verdict)
        raise ApiError(
            401,
            "UNAUTHORIZED",
            message,
            [{"Type": type_, "Name": name, "Action": a} for a in actions],
            {"WWW-Authenticate": challenge(self.login_server, scope, error)},
        )

    # -- auth endpoints ---------------------------------------------------------------------------
    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        form = dict(request.query)
        scopes = list(request.scopes)
        if request.body:
            try:
                text = request.body.decode()
            except UnicodeDecodeError:
                raise ApiError(400, "UNSUPPORTED", "form body must be UTF-8") from None
            pairs = parse_qsl(text, keep_blank_values=True)
            form.update(pairs)
            scopes += [value for key, value in pairs if key == "scope"]
        if scopes:
            # Docker token spec ("Requesting a Token"): `scope` may be given several times;
            # the token covers all of them (space-separated, as one value may also hold).
            form["scope"] = " ".join(scopes)
        return form

    @staticmethod
    def _basic(request: Request) -> tuple[str, str] | None:
        header = request.header("Authorization") or ""
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        return user, password

    def oauth_exchange(self, request: Request, _: dict[str, str]) -> Response:
        return Response.json(200, self.tokens.exchange(self._form(request)))

    def oauth_token(self, request: Request, _: dict[str, str]) -> Response:
        result = self.tokens.token(self._form(request), self._basic(request))
        if request.method == "GET":  # docker token protocol also reads "token"
            return Response.json(200, {"token": result["access_token"], **result})
        return Response.json(200, result)

    # -- /v2 --------------------------------------------------------------------------------------
    def ping(self, _: Request, __: dict[str, str]) -> Response:
        return Response(200, b"{}", {"Docker-Distribution-API-Version": "registry/2.0"})

    def v2_catalog(self, request: Request, _: dict[str, str]) -> Response:
        body, link = self.store.catalog(
            request.query.get("n"), request.query.get("last"), "/v2/_catalog"
        )
        return Response.json(200, body, {"Link": link} if link else {})

    def v2_tags(self, request: Request, p: dict[str, str]) -> Response:
        body, link = self.store.v2_tags(
            p["name"], request.query.get("n"), request.query.get("last")
        )
        return Response.json(200, body, {"Link": link} if link else {})

    def get_manifest(self, request: Request, p: dict[str, str]) -> Response:
        body, media_type, digest = self.store.get_manifest(p["name"], p["ref"])
        refusal = NOT_ACCEPTED.get(media_type)
        if refusal is not None and media_type not in request.accepted():
            raise not_found("MANIFEST_UNKNOWN", refusal)
        return Response(
            200,
            body,
            {"Docker-Content-Digest": digest, "ETag": f'"{digest}"'},
            content_type=media_type,
        )

    def put_manifest(self, request: Request, p: dict[str, str]) -> Response:
        result = self.store.put_manifest(
            p["name"], p["ref"], request.body, request.header("Content-Type")
        )
        self.delivery.emit(
            image_event(
                event_type="Microsoft.ContainerRegistry.ImagePushed",
                action="push",
                when=self.clock.now(),
                repository=result.repository,
                digest=result.digest,
                media_type=result.media_type,
                tag=result.tag,
                size=result.length,
                login_server=self.login_server,
                request_id=str(uuid.uuid4()),
                method="PUT",
                user_agent=request.header("User-Agent") or "",
            )
        )
        headers = {
            "Location": f"/v2/{result.repository}/manifests/{result.digest}",
            "Docker-Content-Digest": result.digest,
        }
        if result.subject:
            # distribution-spec 1.1 "Pushing Manifests with Subject": a registry with the
            # referrers API MUST answer OCI-Subject, else clients maintain the fallback tag.
            headers["OCI-Subject"] = result.subject
        return Response(
            201,
            b"",
            headers,
            log={
                "tag": result.tag,
                "digest": result.digest,
                "previous_digest": result.previous_digest,
            },
            content_type=None,
        )

    def _emit_deleted(self, request: Request, deleted: DeletedManifest) -> None:
        self.delivery.emit(
            image_event(
                event_type="Microsoft.ContainerRegistry.ImageDeleted",
                action="delete",
                when=self.clock.now(),
                repository=deleted.repository,
                digest=deleted.digest,
                media_type=deleted.media_type,
                tag=None,
                size=None,
                login_server=self.login_server,
                request_id=str(uuid.uuid4()),
                method="DELETE",
                user_agent=request.header("User-Agent") or "",
            )
        )

    def delete_manifest(self, request: Request, p: dict[str, str]) -> Response:
        deleted = self.store.delete_manifest(p["name"], p["ref"])
        self._emit_deleted(request, deleted)
        return Response(
            202,
            b"",
            {"Docker-Content-Digest": deleted.digest},
            content_type=None,
            log={"digest": deleted.digest, "tags": list(deleted.tags)},
        )

    def referrers(self, request: Request, p: dict[str, str]) -> Response:
        # OCI distribution-spec 1.1 "Listing Referrers": the answer is an image index served as
        # one (Content-Type), and an applied artifactType filter is named in OCI-Filters-Applied.
        artifact_type = request.query.get("artifactType")
        body = self.store.referrers(p["name"], p["digest"], artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        return Response(200, json.dumps(body).encode(), headers, content_type=OCI_INDEX)

    # -- blobs ------------------------------------------------------------------------------------
    def get_blob(self, request: Request, p: dict[str, str]) -> Response:
        name, digest = p["name"], p["digest"]
        size = self.store.blob_size(name, digest)
        headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
        if request.method == "HEAD":
            return Response(
                200,
                b"",
                {**headers, "Content-Length": str(size)},
                content_type="application/octet-stream",
            )
        if self.storage is not None:
            # ACR redirects blob downloads to storage (307); the client must follow without
            # the registry token (Go SDK recording TestBlobClient_GetBlob, 2022-12: the final
            # answer comes from `Windows-Azure-Blob/1.0`).
            return Response(
                307,
                b"",
                {"Location": self.storage.location(digest), "Docker-Content-Digest": digest},
                content_type=None,
            )
        wanted = request.header("Range")
        if wanted:
            start, end = _parse_range(wanted, size)
            data = self.store.read_blob(name, digest, start, end)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return Response(206, data, headers, content_type="application/octet-stream")
        return Response(
            200,
            self.store.read_blob(name, digest),
            headers,
            content_type="application/octet-stream",
        )

    def delete_blob(self, _: Request, p: dict[str, str]) -> Response:
        self.store.delete_blob(p["name"], p["digest"])
        return Response(202, b"", {"Docker-Content-Digest": p["digest"]}, content_type=None)

    def _upload_headers(self, name: str, upload_id: str, size: int) -> dict[str, str]:
        return {
            # Like ACR (and distribution) the Location carries opaque state in its query.
            "Location": f"/v2/{name}/blobs/uploads/{upload_id}?_nouploadcache=false"
            f"&_state={upload_id}.{size}",
            "Docker-Upload-UUID": upload_id,
            "Range": f"0-{max(size - 1, 0)}",
        }

    def start_upload(self, request: Request, p: dict[str, str]) -> Response:
        name = p["name"]
        mount, source = request.query.get("mount"), request.query.get("from")
        if mount and source:
            check_digest(mount)
            check_name(source)
            # Real registries want `repository:<from>:pull` in the token; anonymous pull is
            # implied when anonymous access allows it.
            can_read = self.tokens.authorizes(
                request.header("Authorization"), "repository", source, "pull"
            ) or self.tokens.anonymous_may("pull")
            if can_read and self.store.mount_blob(name, source, mount):
                return Response(
                    201,
                    b"",
                    {"Location": f"/v2/{name}/blobs/{mount}", "Docker-Content-Digest": mount},
                    content_type=None,
                )
        digest = request.query.get("digest")
        if digest:
            self.store.put_blob(name, digest, request.body)
            return Response(
                201,
                b"",
                {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest},
                content_type=None,
            )
        upload = self.store.start_upload(name)
        return Response(202, b"", self._upload_headers(name, upload.id, 0), content_type=None)

    def upload_status(self, _: Request, p: dict[str, str]) -> Response:
        upload = self.store.upload(p["name"], p["uuid"])
        return Response(
            204,
            b"",
            self._upload_headers(p["name"], upload.id, len(upload.data)),
            content_type=None,
        )

    def patch_upload(self, request: Request, p: dict[str, str]) -> Response:
        upload = self.store.append_upload(
            p["name"], p["uuid"], request.body, request.header("Content-Range")
        )
        return Response(
            202,
            b"",
            self._upload_headers(p["name"], upload.id, len(upload.data)),
            content_type=None,
        )

    def finish_upload(self, request: Request, p: dict[str, str]) -> Response:
        digest = self.store.finish_upload(
            p["name"],
            p["uuid"],
            request.query.get("digest"),
            request.body,
            request.header("Content-Range"),
        )
        return Response(
            201,
            b"",
            {"Location": f"/v2/{p['name']}/blobs/{digest}", "Docker-Content-Digest": digest},
            content_type=None,
        )

    def cancel_upload(self, _: Request, p: dict[str, str]) -> Response:
        self.store.cancel_upload(p["name"], p["uuid"])
        return Response(204, b"", content_type=None)

    # -- /acr/v1 ----------------------------------------------------------------------------------
    def acr_catalog(self, request: Request, _: dict[str, str]) -> Response:
        body, link = self.store.catalog(
            request.query.get("n"), request.query.get("last"), "/acr/v1/_catalog"
        )
        return Response.json(200, body, {"Link": link} if link else {})

    def get_repository(self, _: Request, p: dict[str, str]) -> Response:
        return Response.json(200, self.store.repository(p["name"]))

    def patch_repository(self, request: Request, p: dict[str, str]) -> Response:
        return Response.json(200, self.store.update_repository(p["name"], _json_object(request)))

    def delete_repository(self, request: Request, p: dict[str, str]) -> Response:
        body, deleted = self.store.delete_repository(p["name"])
        for item in deleted:
            self._emit_deleted(request, item)
        return Response.json(202, body)

    def list_tags(self, request: Request, p: dict[str, str]) -> Response:
        q = request.query
        body, link = self.store.list_tags(
            p["name"], q.get("n"), q.get("last"), q.get("orderby"), q.get("digest")
        )
        return Response.json(200, body, {"Link": link} if link else {})

    def get_tag(self, _: Request, p: dict[str, str]) -> Response:
        return Response.json(200, self.store.tag(p["name"], p["tag"]))

    def patch_tag(self, request: Request, p: dict[str, str]) -> Response:
        return Response.json(200, self.store.update_tag(p["name"], p["tag"], _json_object(request)))

    def delete_tag(self, _: Request, p: dict[str, str]) -> Response:
        self.store.delete_tag(p["name"], p["tag"])
        return Response(202, b"", content_type=None, log={"tag": p["tag"]})

    def list_manifests(self, request: Request, p: dict[str, str]) -> Response:
        q = request.query
        body, link = self.store.list_manifests(
            p["name"], q.get("n"), q.get("last"), q.get("orderby")
        )
        return Response.json(200, body, {"Link": link} if link else {})

    def get_manifest_props(self, _: Request, p: dict[str, str]) -> Response:
        return Response.json(200, self.store.manifest_properties(p["name"], p["digest"]))

    def patch_manifest(self, request: Request, p: dict[str, str]) -> Response:
        body = _json_object(request)
        return Response.json(200, self.store.update_manifest(p["name"], p["digest"], body))

    def topic_publish(self, request: Request, _: dict[str, str]) -> Response:
        """Event Grid topic publish: 200 with an empty body, like Event Grid."""
        sas_key = request.header("aeg-sas-key") or request.query.get("aeg-sas-key")
        log = {"content_type": request.header("Content-Type")}
        try:
            count = self.topic.publish(request.header("Authorization"), sas_key, request.body)
        except TopicError as exc:
            return Response(exc.status, exc.body(), log=log)
        return Response(200, b"", log={**log, "events": count}, content_type=None)

    # -- admin API --------------------------------------------------------------------------------
    def admin(self, request: Request) -> Response:
        try:
            return self._admin(request)
        except ApiError as exc:
            return Response.error(exc)
        except ValueError as exc:
            return Response.error(ApiError(400, "INVALID_REQUEST", str(exc)))

    def _admin(self, request: Request) -> Response:
        what = request.path[len("/_emulator/") :].strip("/")
        method = request.method
        if what == "requests" and method == "GET":
            return Response.json(200, self.requests())
        if what == "requests" and method == "DELETE":
            self.clear_requests()
            return Response(204, b"", content_type=None)
        if what == "clock" and method == "GET":
            return Response.json(200, {"now": format_time(self.clock.now())})
        if what == "clock" and method == "PUT":
            body = _json_object(request)
            if "now" in body and isinstance(body["now"], str):
                self.clock.set(parse_time(body["now"]))
            elif (
                "advance" in body
                and isinstance(body["advance"], int | float)
                and not isinstance(body["advance"], bool)
            ):
                self.clock.advance(float(body["advance"]))
            else:
                raise ValueError(
                    'clock body must be {"now": "<iso8601>"} or {"advance": <seconds>}'
                )
            return Response.json(200, {"now": format_time(self.clock.now())})
        if what == "faults" and method == "GET":
            return Response.json(200, self.faults.settings.to_json())
        if what == "faults" and method == "PUT":
            self.faults.configure(FaultSettings.from_json(_json_object(request)))
            return Response.json(200, self.faults.settings.to_json())
        if what == "faults" and method == "DELETE":
            self.faults.configure(FaultSettings())
            return Response(204, b"", content_type=None)
        if what == "subscribers" and method == "GET":
            return Response.json(200, {"subscribers": self.delivery.subscribers()})
        if what == "subscribers" and method == "PUT":
            body = _json_value(request)
            urls = body.get("subscribers") if isinstance(body, dict) else body
            if not isinstance(urls, list):
                raise ValueError('subscribers body must be {"subscribers": [url, ...]} or a list')
            return Response.json(200, {"subscribers": self.delivery.set_subscribers(urls)})
        if what == "events" and method == "GET":
            return Response.json(200, self.delivery.events())
        if what == "events" and method == "DELETE":
            self.delivery.clear()
            return Response(204, b"", content_type=None)
        if what == "deliveries" and method == "GET":
            return Response.json(200, self.delivery.deliveries())
        if what == "topic/events" and method == "GET":
            return Response.json(200, self.topic.events())
        if what == "topic/events" and method == "DELETE":
            self.topic.clear()
            return Response(204, b"", content_type=None)
        if what == "tokens" and method == "GET":
            return Response.json(200, self.tokens.issued())
        raise not_found("NOT_FOUND", f"no admin endpoint {method} /_emulator/{what}")


def _page_not_found() -> Response:
    return Response(404, PAGE_NOT_FOUND, content_type="text/plain; charset=utf-8")


def _json_value(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "INVALID_REQUEST", "body must be valid JSON") from None


def _json_object(request: Request) -> dict[str, Any]:
    value = _json_value(request)
    if not isinstance(value, dict):
        raise ApiError(400, "INVALID_REQUEST", "body must be a JSON object")
    return value


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _parse_range(header: str, size: int) -> tuple[int, int]:
    match = _RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise ApiError(
            416,
            "RANGE_INVALID",
            "invalid Range header",
            {"range": header},
            {"Content-Range": f"bytes */{size}"},
        )
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # suffix range: last N bytes
        start = max(size - int(last), 0)
        end = size - 1
    if start >= size or start > end:
        raise ApiError(
            416,
            "RANGE_INVALID",
            "requested range not satisfiable",
            {"range": header},
            {"Content-Range": f"bytes */{size}"},
        )
    return start, end


# -- HTTP plumbing --------------------------------------------------------------------------------
class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureContainerRegistry"
    sys_version = ""
    timeout = 30
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log (/_emulator/requests) replaces access logs

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (bad request line, unknown method...): a registry-style JSON error."""
        text = message or self.responses.get(code, ("error",))[0]
        if self.request_version == "HTTP/0.9":  # garbage request line: still answer with headers
            self.request_version = self.protocol_version
        body = error_body("UNSUPPORTED" if code in (405, 501) else "INVALID_REQUEST", text)
        try:
            self.send_response(code, text)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_GET
    do_PUT = do_GET
    do_POST = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET
    do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BodyError(400, "malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise _BodyError(413, "request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _BodyError(400, "invalid Content-Length") from None
        if length < 0:
            raise _BodyError(400, "invalid Content-Length")
        if length > MAX_BODY:
            raise _BodyError(413, "request body too large")
        data = self.rfile.read(length)
        if len(data) != length:
            raise _BodyError(400, "request body shorter than Content-Length")
        return data

    def _dispatch(self) -> None:
        started = time.perf_counter()
        registry = self.server.registry
        if registry is None:
            self.close_connection = True
            self._send(Response(503, error_body("UNAVAILABLE", "starting up")))
            return
        split = urlsplit(self.path)
        path = unquote(split.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(pairs)
        scopes = tuple(value for key, value in pairs if key == "scope")
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self._send(Response(exc.status, error_body("INVALID_REQUEST", str(exc))))
            return
        except (OSError, ValueError):
            self.close_connection = True
            return
        request = Request(self.command, path, query, self.headers, body, scopes)
        storage = self.server.storage
        if storage is not None:  # the storage listener: no faults, no registry routes
            response = storage.handle(request)
            storage_entry: dict[str, Any] = {
                "method": self.command,
                "path": path,
                "query": {k: ("***" if k == "sig" else v) for k, v in query.items()},
                "status": response.status,
                "ms": _ms(started),
                **response.log,
            }
            registry.record(storage_entry)
            self._send(response)
            return
        if path.startswith("/_emulator/"):
            self._send(registry.admin(request))
            return
        entry: dict[str, Any] = {
            "method": self.command,
            "path": path,
            "query": {k: ("***" if k in REDACTED_QUERY else v) for k, v in query.items()},
            "status": 0,
            "ms": 0.0,
        }
        decision = registry.faults.decide(is_auth=registry.is_auth_path(path))
        if decision.delay_s:
            time.sleep(decision.delay_s)
        if decision.reset:
            entry.update(status=0, fault="reset", ms=_ms(started))
            registry.record(entry)
            self._abort()
            return
        if decision.throttle_after_s is not None:
            response = Response(
                429,
                error_body("TOOMANYREQUESTS", "too many requests", {}),
                {"Retry-After": str(decision.throttle_after_s)},
            )
            entry["fault"] = "throttled"
        elif decision.error_status is not None:
            status = decision.error_status
            response = Response(
                status, error_body("UNKNOWN", f"injected fault (HTTP {status})", {})
            )
            entry["fault"] = "error"
        else:
            try:
                response = registry.handle(request)
            except Exception:
                LOG.exception("internal error handling %s %s", self.command, path)
                response = Response(500, error_body("UNKNOWN", "internal server error"))
        entry.update(response.log)
        entry["status"] = response.status
        entry["ms"] = _ms(started)
        registry.record(entry)  # before answering, so a client never sees an unlogged answer
        self._send(response)

    def _send(self, response: Response) -> None:
        headers = dict(response.headers)
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(response.body))
        if response.content_type and response.status != 204:
            headers.setdefault("Content-Type", response.content_type)
        if self.server.storage is None:
            headers.setdefault("Docker-Distribution-API-Version", "registry/2.0")
        if self.close_connection:
            headers["Connection"] = "close"
        reason = self.responses.get(response.status, ("",))[0]
        head = [f"{self.protocol_version} {response.status} {reason}"]
        head.append(f"Server: {headers.pop('Server', self.server_version)}")
        head.append(f"Date: {self.date_time_string()}")
        head.extend(f"{key}: {value}" for key, value in headers.items())
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace")
        if self.command != "HEAD" and response.status not in (204, 304):
            data += response.body
        # One write for headers and body (plus TCP_NODELAY): no Nagle/delayed-ACK stalls.
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _abort(self) -> None:
        """Reset the TCP connection (RST) without answering."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw = (
                socket.socket(fileno=self.connection.detach())
                if isinstance(self.connection, ssl.SSLSocket)
                else self.connection
            )
            raw.close()
        except OSError:
            pass


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        registry: Registry | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.registry = registry  # set once the port (hence the login server) is known
        self.storage = storage  # set on the blob storage listener only
        self.ssl_context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the per-connection thread: TLS handshake here, not in the accept loop."""
        request.settimeout(10)
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            return
        with self._connections_lock:
            self._connections.add(tls)
        try:
            RequestHandler(tls, client_address, self)
        except (OSError, ValueError):
            pass
        finally:
            with self._connections_lock:
                self._connections.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("connection error from %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
