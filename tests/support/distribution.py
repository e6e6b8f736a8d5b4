"""Debian's `docker-registry` (CNCF distribution 2.8.2) over TLS, as a reference registry for tests.

Use the session fixture `distribution` (import it into a conftest: `from tests.support.distribution
import distribution`), or `start_distribution(directory)` as a context manager for a private one.

The registry serves HTTPS with a `trustme` CA for 127.0.0.1, `http.relativeurls: true` (relative
`Location` headers, like ACR), `storage.delete.enabled: true` and filesystem storage under the given
directory. Its config has no "port 0", so we bind 127.0.0.1:0 to pick a free port, release it and
start the registry on it, retrying with a new port if someone took it in between.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import trustme

from tests.support.system import require_command

READY_TIMEOUT_SECONDS = 15.0
PORT_ATTEMPTS = 5


@dataclass(frozen=True)
class Distribution:
    endpoint: str  # "https://127.0.0.1:PORT"
    login_server: str  # "127.0.0.1:PORT"
    ca_bundle: str  # path to the CA certificate (PEM) that signed the server certificate
    cert_dir: (
        str  # a directory holding only `ca.crt`, for `skopeo --dest-cert-dir`/`--src-cert-dir`
    )
    root: Path  # config, certificates, log and storage live here
    log_path: Path
    pid: int
    startup_seconds: float  # from spawn to the first 200 on /v2/

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _write_tls(root: Path) -> tuple[Path, Path, Path]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = root / "ca.pem"
    cert_path = root / "server.pem"
    key_path = root / "server.key"
    ca.cert_pem.write_to_path(str(ca_path))
    server.private_key_pem.write_to_path(str(key_path))
    server.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    return ca_path, cert_path, key_path


def _config(root: Path, port: int, cert: Path, key: Path) -> dict[str, object]:
    # JSON is YAML, so the registry reads this as its config.yml.
    return {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            "relativeurls": True,
            "tls": {"certificate": str(cert), "key": str(key)},
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }


def _wait_ready(
    process: subprocess.Popen[bytes], endpoint: str, ca_bundle: str, deadline: float
) -> bool:
    """True once /v2/ answers 200; False if the process exited (e.g. port taken)."""
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if session.get(f"{endpoint}/v2/", verify=ca_bundle, timeout=1).status_code == 200:
                    return True
            except requests.ConnectionError:
                pass
            time.sleep(0.01)
    raise TimeoutError(f"docker-registry at {endpoint} not ready after {READY_TIMEOUT_SECONDS}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def start_distribution(root: Path) -> Iterator[Distribution]:
    """Run a fresh docker-registry storing everything under `root`; stop it on exit."""
    binary = require_command("docker-registry")
    root.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = _write_tls(root)
    cert_dir = root / "certs.d"
    cert_dir.mkdir(exist_ok=True)
    (cert_dir / "ca.crt").write_bytes(ca_path.read_bytes())
    log_path = root / "registry.log"
    config_path = root / "config.yml"
    for _attempt in range(PORT_ATTEMPTS):
        port = free_port()
        config_path.write_text(json.dumps(_config(root, port, cert_path, key_path), indent=2))
        endpoint = f"https://127.0.0.1:{port}"
        started = time.monotonic()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [binary, "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            ready = _wait_ready(process, endpoint, str(ca_path), started + READY_TIMEOUT_SECONDS)
        except BaseException:
            _stop(process)
            raise
        if not ready:
            continue  # exited: most likely the port was taken between probe and bind
        try:
            yield Distribution(
                endpoint=endpoint,
                login_server=f"127.0.0.1:{port}",
                ca_bundle=str(ca_path),
                cert_dir=str(cert_dir),
                root=root,
                log_path=log_path,
                pid=process.pid,
                startup_seconds=time.monotonic() - started,
            )
        finally:
            _stop(process)
        return
    raise RuntimeError(
        f"docker-registry did not start after {PORT_ATTEMPTS} attempts; log:\n"
        + log_path.read_text(errors="replace")[-2000:]
    )


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    """One docker-registry (distribution 2.8.2) over TLS for the whole test session."""
    with start_distribution(tmp_path_factory.mktemp("distribution")) as registry:
        yield registry
