"""The blob storage endpoint that blob downloads are redirected to (like ACR's 307 to
`*.blob.core.windows.net` or `<registry>.<region>.data.azurecr.io`).

A registry `GET /v2/<name>/blobs/<digest>` answers `307 Temporary Redirect` with a `Location` on
this second HTTPS listener (`https://localhost:PORT/...`: another host name than the registry's
`127.0.0.1`, so clients drop the registry's `Authorization` header as they must for another
host). The URL carries a signed-URL-like query (`sv, sr, se, sp, sig`, like a SAS): the signature
(HMAC over the path and expiry) authorises the read, and a request that also carries an
`Authorization` header is refused with 403 and flagged in the request log
(`"authorization": true`): the registry's bearer token must never reach storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from emulator.server import Request, Response
    from emulator.store import Store

SAS_VERSION = "2018-03-28"
LINK_SECONDS = 20 * 60
SERVER = "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"
ACCOUNT = "emulatorregistry"
_PATH_RE = re.compile(
    rf"^/{ACCOUNT}/docker/registry/v2/blobs/sha256/(?P<prefix>[a-f0-9]{{2}})/"
    r"(?P<hex>[a-f0-9]{64})/data$"
)
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _storage_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return status, body.encode()


class Storage:
    """Signs download locations for the registry and serves them on the storage listener."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.endpoint = ""  # https://localhost:PORT, set once the listener is bound
        self._secret = secrets.token_bytes(32)

    def _signature(self, path: str, expiry: str) -> str:
        mac = hmac.new(self._secret, f"{path}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    def location(self, digest: str) -> str:
        """Absolute, signed, time-limited URL of a blob."""
        hex_ = digest.split(":", 1)[1]
        path = f"/{ACCOUNT}/docker/registry/v2/blobs/sha256/{hex_[:2]}/{hex_}/data"
        expiry = datetime.fromtimestamp(time.time() + LINK_SECONDS, UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        query = {
            "sv": SAS_VERSION,
            "sr": "b",
            "se": expiry,
            "sp": "r",
            "sig": self._signature(path, expiry),
        }
        return f"{self.endpoint}{path}?{urlencode(query)}"

    def handle(self, request: Request) -> Response:
        from emulator.server import Response

        log: dict[str, Any] = {
            "endpoint": "storage",
            "authorization": request.header("Authorization") is not None,
        }

        def error(status: int, code: str, message: str) -> Response:
            status, body = _storage_error(status, code, message)
            return Response(
                status, body, {"Server": SERVER}, log=log, content_type="application/xml"
            )

        if request.method not in ("GET", "HEAD"):
            return error(405, "UnsupportedHttpVerb", "The resource doesn't support the verb.")
        match = _PATH_RE.match(request.path)
        if not match or match.group("prefix") != match.group("hex")[:2]:
            return error(404, "ResourceNotFound", "The specified resource does not exist.")
        if log["authorization"]:
            # Real storage would try to authenticate the bearer token and fail; either way a
            # registry token reaching storage is a client bug, so it fails loudly here.
            return error(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request: an Authorization header was sent "
                "with a signed URL (the registry token must not be forwarded to storage).",
            )
        expiry = request.query.get("se", "")
        signature = request.query.get("sig", "")
        expected = self._signature(request.path, expiry)
        if not hmac.compare_digest(signature, expected):
            return error(403, "AuthenticationFailed", "Signature did not match.")
        try:
            expires = datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return error(403, "AuthenticationFailed", "Signed expiry time is invalid.")
        if expires.timestamp() < time.time():
            return error(403, "AuthenticationFailed", "Signed expiry time has passed.")
        digest = "sha256:" + match.group("hex")
        size = self.store.stored_blob_size(digest)
        if size is None:
            return error(404, "BlobNotFound", "The specified blob does not exist.")
        headers = {
            "Server": SERVER,
            "Accept-Ranges": "bytes",
            "ETag": f'"0x{digest[7:23].upper()}"',
            "Last-Modified": formatdate(usegmt=True),
            "x-ms-blob-type": "BlockBlob",
            "x-ms-version": SAS_VERSION,
        }
        if request.method == "HEAD":
            headers["Content-Length"] = str(size)
            return Response(200, b"", headers, log=log, content_type="application/octet-stream")
        wanted = request.header("Range")
        if wanted:
            span = _range(wanted, size)
            if span is None:
                status, body = _storage_error(
                    416, "InvalidRange", "The range specified is invalid for the current size."
                )
                headers["Content-Range"] = f"bytes */{size}"
                return Response(status, body, headers, log=log, content_type="application/xml")
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            data = self.store.read_stored_blob(digest, start, end)
            return Response(206, data, headers, log=log, content_type="application/octet-stream")
        data = self.store.read_stored_blob(digest)
        return Response(200, data, headers, log=log, content_type="application/octet-stream")


def _range(header: str, size: int) -> tuple[int, int] | None:
    match = _RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    if start >= size or start > end:
        return None
    return start, end
