"""A stand-in for a Flux notification-controller `generic-hmac` Receiver, on loopback.

It checks a POST the way the controller does for `type: generic-hmac`
(fluxcd/notification-controller, docs/spec/v1/receivers.md "Generic HMAC": the `X-Signature`
header is `<algorithm>=<hex HMAC of the request body keyed with the Receiver's token>`, with
sha1, sha256 or sha512; a missing or wrong signature is refused), records what it accepted, and
answers 200 (the controller then requests a reconcile of the Receiver's resources). The demo
prints what it received; tests use it to check the signature byte for byte, and to play a dead
or failing Receiver (`status=500`, `delay=...`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def signature_valid(header: str | None, body: bytes, token: str) -> bool:
    """True when `header` is `<alg>=<hex>` and the hex is the HMAC of `body` keyed with `token`."""
    if not header or "=" not in header:
        return False
    algorithm, _, given = header.partition("=")
    digest = _ALGORITHMS.get(algorithm.strip().lower())
    if digest is None:
        return False
    expected = hmac.new(token.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, given.strip())


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (the nudge's timeout) leaves a broken pipe behind: that is the
    point of the slow-Receiver tests, not an error to print on stderr (socketserver's default)."""

    def handle_error(self, request: object, client_address: object) -> None:
        return


@dataclass(frozen=True)
class Nudge:
    """One accepted POST: its path, parsed JSON body and the signature header."""

    path: str
    body: dict[str, Any]
    signature: str


class FluxReceiver:
    """`with FluxReceiver(token) as receiver:`; `receiver.url` is the webhook URL (a path like
    Flux's `/hook/<sha256>`). `status` (default 200) and `delay` (seconds) play failures."""

    def __init__(self, token: str, *, status: int = 200, delay: float = 0.0) -> None:
        self.token = token
        self.status = status
        self.delay = delay
        self.nudges: list[Nudge] = []
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                if not signature_valid(self.headers.get("X-Signature"), body, receiver.token):
                    with receiver._lock:
                        receiver.refused += 1
                    self._answer(401, b"invalid signature")
                    return
                if receiver.status == 200:
                    with receiver._lock:
                        receiver.nudges.append(
                            Nudge(self.path, json.loads(body), self.headers["X-Signature"])
                        )
                self._answer(receiver.status, b"")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        digest = hashlib.sha256(token.encode()).hexdigest()
        self.path = f"/hook/{digest}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def __enter__(self) -> FluxReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
