"""A loopback TLS listener that counts connection attempts (for "TLS failures are not retried").

It presents a certificate for 127.0.0.1 issued by its own `trustme` CA, so a client that trusts
another CA (the emulator's, or the system store) fails verification on every handshake; `accepted`
counts the TCP connections, i.e. the handshakes the client attempted. Shared by `tests/acr` and
`benchmarks/bench_retry_layers.py`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from types import TracebackType

import trustme


class CountingTlsServer:
    def __init__(self) -> None:
        self.ca = trustme.CA()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1").configure_cert(self._context)
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.login_server = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self.accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="counting-tls", daemon=True)

    def __enter__(self) -> CountingTlsServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            conn.settimeout(2)
            with contextlib.suppress(OSError), self._context.wrap_socket(conn, server_side=True):
                pass  # the client refuses our certificate: the handshake fails on its side
            conn.close()
