"""How much time does the emulator add per request? (`python benchmarks/emulator_overhead.py`)

Measures, on loopback over one keep-alive TLS connection (http.client, the thinnest client):
- `tls_floor`: a bare TLS echo server answering a fixed HTTP response (the transport's own cost);
- `emulator`: the emulator answering an authorised GET of a manifest by digest;
and prints the medians plus the emulator's own handler time from its request log. The emulator's
overhead is `emulator - tls_floor`; the requirement is < 2 ms.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from emulator import Emulator
from tests.support import images

ROUNDS = 2000


def _timed(connection: http.client.HTTPSConnection, path: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status
    return time.perf_counter() - started


def _floor(context: ssl.SSLContext, client_context: ssl.SSLContext) -> list[float]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"

    def serve() -> None:
        raw, _ = listener.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with context.wrap_socket(raw, server_side=True) as tls:
            reader = tls.makefile("rb")
            while True:
                line = reader.readline()
                if not line:
                    return
                while reader.readline() not in (b"\r\n", b""):
                    pass
                tls.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=client_context)
    samples = [_timed(connection, "/", {}) for _ in range(ROUNDS)]
    connection.close()
    listener.close()
    return samples


def main() -> None:
    with Emulator() as acr:
        repo = "bench/overhead"
        image = images.oci_image(seed=1)
        images.push_image(acr.endpoint, repo, image, "v1", verify=acr.ca_bundle)
        token = requests.post(
            acr.endpoint + "/oauth2/token",
            data={
                "grant_type": "password",
                "service": acr.login_server,
                "scope": f"repository:{repo}:pull",
            },
            verify=acr.ca_bundle,
            timeout=10,
        ).json()["access_token"]
        client_context = ssl.create_default_context(cafile=acr.ca_bundle)
        host, port = acr.login_server.split(":")
        connection = http.client.HTTPSConnection(host, int(port), context=client_context)
        headers = {"Authorization": f"Bearer {token}", "Accept": image.media_type}
        path = f"/v2/{repo}/manifests/{image.digest}"
        for _ in range(50):
            _timed(connection, path, headers)
        acr.clear_requests()
        emulator = [_timed(connection, path, headers) for _ in range(ROUNDS)]
        handler = [r["ms"] for r in acr.requests()]
        connection.close()
        import trustme

        ca = trustme.CA()
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(server_context)
        floor_client = ssl.create_default_context()
        ca.configure_trust(floor_client)
        floor = _floor(server_context, floor_client)

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000.0

    print(f"rounds per series:              {ROUNDS}")
    print(f"TLS floor round trip (median):  {ms(floor):.3f} ms")
    print(f"emulator round trip (median):   {ms(emulator):.3f} ms")
    print(
        f"emulator p95 round trip:        {statistics.quantiles(emulator, n=20)[18] * 1000:.3f} ms"
    )
    print(f"emulator handler time (median): {statistics.median(handler):.3f} ms")
    print(f"added per request (median):     {ms(emulator) - ms(floor):.3f} ms (limit 2 ms)")


if __name__ == "__main__":
    main()
