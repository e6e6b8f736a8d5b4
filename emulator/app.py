"""`Emulator`: the in-process handle (context manager) on a running emulator."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Collection, Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from emulator.auth import REPOSITORY_ACTIONS, TokenService
from emulator.clock import Clock
from emulator.delivery import Delivery, check_subscriber
from emulator.faults import Faults, FaultSettings
from emulator.server import EmulatorHTTPServer, Registry
from emulator.storage import Storage
from emulator.store import Store
from emulator.tls import CA_FILE, load_or_create_ca, server_context

LOOPBACK = frozenset({"127.0.0.1", "localhost"})


class Emulator:
    """A local ACR + Event Grid emulator serving HTTPS on 127.0.0.1.

    >>> with Emulator() as acr:  # doctest: +SKIP
    ...     client = ContainerRegistryClient(acr.endpoint, None, connection_verify=acr.ca_bundle)
    """

    def __init__(
        self,
        *,
        anonymous: bool = True,
        data_dir: str | Path | None = None,
        subscribers: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        anonymous_actions: Collection[str] | None = None,
        blob_redirect: bool = True,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"host must be 127.0.0.1 or localhost (loopback only), not {host!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, not {port}")
        if anonymous_actions is not None:
            unknown = sorted(set(anonymous_actions) - set(REPOSITORY_ACTIONS))
            if unknown:
                raise ValueError(
                    f"unknown anonymous action(s) {', '.join(unknown)}; "
                    f"choose from {', '.join(REPOSITORY_ACTIONS)}"
                )
        self._host = "127.0.0.1"
        self._port = port
        self._anonymous = anonymous
        self._anonymous_actions = anonymous_actions
        self._persistent = data_dir is not None
        self._data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._subscribers = [check_subscriber(url) for url in subscribers]
        self._temp: str | None = None
        self._blob_redirect = blob_redirect
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._storage_server: EmulatorHTTPServer | None = None
        self._storage_thread: threading.Thread | None = None
        self._storage_endpoint: str | None = None
        self._registry: Registry | None = None
        self.clock = Clock()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        if self._data_dir is None:
            self._temp = tempfile.mkdtemp(prefix="acr-emulator-")
            directory = Path(self._temp)
        else:
            directory = self._data_dir
            directory.mkdir(parents=True, exist_ok=True)
        ca = load_or_create_ca(directory, reuse=self._persistent)
        self._ca_bundle = str(directory / CA_FILE)
        delivery = Delivery(self._subscribers)
        # Bind first (port 0 picks a free port), then build the registry that needs the name.
        try:
            server = EmulatorHTTPServer((self._host, self._port), server_context(ca))
        except Exception:
            delivery.close()
            raise
        port = server.server_address[1]
        login_server = f"{self._host}:{port}"
        try:
            store = Store(self.clock, login_server, self._data_dir)
        except Exception:
            server.server_close()
            delivery.close()
            raise
        tokens = TokenService(
            login_server, anonymous=self._anonymous, anonymous_actions=self._anonymous_actions
        )
        storage = None
        if self._blob_redirect:
            # Blob downloads are redirected here: another host name (localhost, not 127.0.0.1)
            # on another port, like ACR's storage endpoints.
            storage = Storage(store)
            try:
                storage_server = EmulatorHTTPServer(
                    (self._host, 0), server_context(ca), storage=storage
                )
            except Exception:
                server.server_close()
                delivery.close()
                store.close()
                raise
            storage.endpoint = f"https://localhost:{storage_server.server_address[1]}"
            self._storage_endpoint = storage.endpoint
            self._storage_server = storage_server
        self._registry = Registry(
            login_server=login_server,
            store=store,
            tokens=tokens,
            clock=self.clock,
            delivery=delivery,
            faults=Faults(),
            storage=storage,
        )
        server.registry = self._registry
        if self._storage_server is not None:
            self._storage_server.registry = self._registry  # for the shared request log
            self._storage_thread = threading.Thread(
                target=self._storage_server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="emulator-storage",
                daemon=True,
            )
            self._storage_thread.start()
        self._server = server
        self._login_server = login_server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="emulator-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        storage_server, self._storage_server = self._storage_server, None
        for each in (server, storage_server):
            if each is None:
                continue
            each.shutdown()
            each.server_close()
            each.close_connections()
        for thread in (self._thread, self._storage_thread):
            if thread is not None:
                thread.join(timeout=5)
        registry = self._registry
        if registry is not None:
            registry.delivery.wait_idle(2.0)  # give queued deliveries a last chance
            registry.delivery.close()
            registry.store.close()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    close = stop

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("the emulator is not running (use `with Emulator() as acr:`)")
        return self._registry

    @property
    def login_server(self) -> str:
        self.registry  # noqa: B018 - raises when not started
        return self._login_server

    @property
    def endpoint(self) -> str:
        return f"https://{self.login_server}"

    @property
    def storage_endpoint(self) -> str | None:
        """`https://localhost:PORT` of the blob storage listener (None with blob_redirect=False)."""
        self.registry  # noqa: B018
        return self._storage_endpoint

    @property
    def ca_bundle(self) -> str:
        self.registry  # noqa: B018
        return self._ca_bundle

    @property
    def data_dir(self) -> str | None:
        return str(self._data_dir) if self._data_dir is not None else None

    # -- admin conveniences (mirror /_emulator/) --------------------------------------------------
    def requests(self) -> list[dict[str, Any]]:
        return self.registry.requests()

    def clear_requests(self) -> None:
        self.registry.clear_requests()

    def set_faults(
        self,
        *,
        latency_ms: float = 0,
        error_rate: float = 0.0,
        error_status: int = 503,
        reset_rate: float = 0.0,
        rate_limit_per_second: float | None = None,
        throttle_rate: float = 0.0,
        throttle_retry_after: int = 1,
        seed: int | None = None,
        include_auth: bool = False,
    ) -> None:
        self.registry.faults.configure(
            FaultSettings(
                latency_ms=float(latency_ms),
                error_rate=error_rate,
                error_status=error_status,
                reset_rate=reset_rate,
                rate_limit_per_second=rate_limit_per_second,
                throttle_rate=throttle_rate,
                throttle_retry_after=throttle_retry_after,
                seed=seed,
                include_auth=include_auth,
            )
        )

    def clear_faults(self) -> None:
        self.registry.faults.configure(FaultSettings())

    def now(self) -> datetime:
        return self.clock.now()

    def set_clock(self, when: datetime) -> datetime:
        return self.clock.set(when)

    def advance_clock(self, seconds: float) -> datetime:
        return self.clock.advance(seconds)

    def set_subscribers(self, urls: Iterable[str]) -> list[str]:
        return self.registry.delivery.set_subscribers(urls)

    def subscribers(self) -> list[str]:
        return self.registry.delivery.subscribers()

    def events(self) -> list[dict[str, Any]]:
        return self.registry.delivery.events()

    def deliveries(self) -> list[dict[str, Any]]:
        return self.registry.delivery.deliveries()

    def clear_events(self) -> None:
        self.registry.delivery.clear()

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        return self.registry.delivery.wait_idle(timeout)

    # -- Event Grid topic (emulator.topic) --------------------------------------------------------
    @property
    def topic_endpoint(self) -> str:
        """`https://127.0.0.1:PORT/api/events`: publish CloudEvents here."""
        return f"{self.endpoint}/api/events"

    @property
    def topic_key(self) -> str:
        """The topic's access key (`aeg-sas-key` header, or `AzureKeyCredential`)."""
        return self.registry.topic.key

    def topic_events(self) -> list[dict[str, Any]]:
        """CloudEvents published to the topic, oldest first (mirrors /_emulator/topic/events)."""
        return self.registry.topic.events()

    def clear_topic_events(self) -> None:
        self.registry.topic.clear()

    def issued_tokens(self) -> list[str]:
        return self.registry.tokens.issued()

    def tag_digest(self, repository: str, tag: str) -> str | None:
        """Digest a tag points at (None if absent); direct state read, no HTTP, not logged."""
        return self.registry.store.tag_digest(repository, tag)
