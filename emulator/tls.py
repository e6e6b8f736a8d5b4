"""TLS for the emulator: a private CA (trustme) and a server certificate for 127.0.0.1/localhost.

The Azure SDK refuses plain http, so the emulator only speaks HTTPS. The CA certificate is written
to `DIR/ca.pem`; clients pass that path as `connection_verify=`. With a persistent data directory
the CA (and its key, `ca-key.pem`) is reused across restarts so old CA bundles stay valid.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import trustme

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"


def load_or_create_ca(directory: Path, *, reuse: bool) -> trustme.CA:
    cert_path = directory / CA_FILE
    key_path = directory / CA_KEY_FILE
    if reuse and cert_path.is_file() and key_path.is_file():
        try:
            return trustme.CA.from_pem(cert_path.read_bytes(), key_path.read_bytes())
        except ValueError:
            pass  # unreadable files: make a fresh CA below
    ca = trustme.CA(organization_name="acr-retag emulator")
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(key_path, ca.private_key_pem.bytes())
    tmp = cert_path.with_suffix(".tmp")
    tmp.write_bytes(ca.cert_pem.bytes())
    os.replace(tmp, cert_path)
    return ca


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert.configure_cert(context)
    return context


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
