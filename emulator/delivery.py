"""Event Grid delivery: ImagePushed / ImageDeleted events POSTed to local webhook subscribers.

Like Event Grid: the body is a JSON array holding one event (Event Grid schema), with header
`aeg-event-type: Notification`; delivery is asynchronous (background workers) and at-least-once:
a failed attempt (connection error, timeout, non-2xx) is retried with exponential backoff, except
400 and 413 which Event Grid does not retry. Subscribers must be loopback http URLs.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from emulator.clock import format_event_time

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
NOT_RETRIED = frozenset({400, 413})
LOCATION = "westus"  # data.location is the registry's region (Event Grid examples: westus)
# Event Grid stamps eventTime when it publishes, after the registry's data.timestamp (the examples
# show 0.19-0.35 s between them).
PUBLISH_DELAY = timedelta(milliseconds=200)
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/"
    "Microsoft.ContainerRegistry/registries/emulator"
)


def check_subscriber(url: str) -> str:
    """Return `url` if it is an http URL on the loopback interface, else raise ValueError."""
    if not isinstance(url, str):
        raise ValueError("subscriber must be a URL string")
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"subscriber {url!r}: only http:// URLs are supported")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"subscriber {url!r}: invalid port") from None
    if parts.hostname not in LOOPBACK_HOSTS or port is None:
        raise ValueError(f"subscriber {url!r}: must be http://127.0.0.1:PORT/... (loopback only)")
    return url


def image_event(
    *,
    event_type: str,
    action: str,
    when: datetime,
    repository: str,
    digest: str,
    media_type: str,
    tag: str | None,
    size: int | None,
    login_server: str,
    request_id: str,
    method: str,
    user_agent: str,
) -> dict[str, Any]:
    """An Event Grid-schema ACR event shaped like the real ones (azure-rest-api-specs
    specification/eventgrid/data-plane/Microsoft.ContainerRegistry/stable/2018-01-01/examples/
    event-grid-schema/image_pushed.json and image_deleted.json): `dataVersion` "2.0", `location`
    a region, ImageDeleted's `subject` the repository alone, `data.timestamp` with 9 fractional
    digits (Learn, event-schema-container-registry) and `eventTime` (7 digits) a little later."""
    target: dict[str, Any] = {"mediaType": media_type}
    if size is not None:
        target["size"] = size
    target["digest"] = digest
    if size is not None:
        target["length"] = size
    target["repository"] = repository
    if tag is not None:
        target["tag"] = tag
    stamp = format_event_time(when, 9, time.time_ns() % 1000)
    event_id = str(uuid.uuid4())
    if action == "delete":
        subject = repository
    else:
        subject = f"{repository}:{tag}" if tag is not None else f"{repository}@{digest}"
    return {
        "id": event_id,
        "topic": TOPIC,
        "subject": subject,
        "eventType": event_type,
        "eventTime": format_event_time(when + PUBLISH_DELAY),
        "data": {
            "id": event_id,
            "timestamp": stamp,
            "action": action,
            "location": LOCATION,
            "target": target,
            "request": {
                "id": request_id,
                "host": login_server,
                "method": method,
                "useragent": user_agent,
            },
        },
        "dataVersion": "2.0",
        "metadataVersion": "1",
    }


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    url: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    record: dict[str, Any] = field(compare=False)


class Delivery:
    def __init__(
        self,
        subscribers: Iterable[str] = (),
        *,
        workers: int = 2,
        max_attempts: int = 30,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        timeout: float = 30.0,
    ) -> None:
        self._subscribers = [check_subscriber(u) for u in subscribers]
        self._events: list[dict[str, Any]] = []
        self._records: list[dict[str, Any]] = []
        self._queue: list[_Job] = []
        self._running = 0
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._threads = [
            threading.Thread(target=self._work, name=f"emulator-delivery-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- configuration ----------------------------------------------------------------------------
    def set_subscribers(self, urls: Iterable[str]) -> list[str]:
        checked = [check_subscriber(u) for u in urls]
        with self._cond:
            self._subscribers = checked
            return list(checked)

    def subscribers(self) -> list[str]:
        with self._cond:
            return list(self._subscribers)

    # -- events -----------------------------------------------------------------------------------
    def emit(self, event: Mapping[str, Any]) -> None:
        with self._cond:
            self._events.append(dict(event))
            for url in self._subscribers:
                record = {
                    "event_id": event["id"],
                    "event_type": event["eventType"],
                    "url": url,
                    "attempts": 0,
                    "delivered": False,
                    "gave_up": False,
                    "last_status": None,
                    "last_error": None,
                }
                self._records.append(record)
                heapq.heappush(
                    self._queue, _Job(time.monotonic(), next(self._seq), url, dict(event), record)
                )
            self._cond.notify_all()

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [json.loads(json.dumps(e)) for e in self._events]

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(r) for r in self._records]

    def clear(self) -> None:
        with self._cond:
            self._events.clear()
            self._records = [r for r in self._records if not (r["delivered"] or r["gave_up"])]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no delivery is queued or in flight (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
            return True

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=2)

    # -- workers ----------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._queue and self._queue[0].due <= time.monotonic():
                        break
                    wait = (self._queue[0].due - time.monotonic()) if self._queue else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                job = heapq.heappop(self._queue)
                self._running += 1
                job.record["attempts"] += 1
                attempt = job.record["attempts"]
            status, error = self._post(job.url, job.event, attempt)
            with self._cond:
                self._running -= 1
                job.record["last_status"] = status
                job.record["last_error"] = error
                if status is not None and 200 <= status < 300:
                    job.record["delivered"] = True
                elif (status in NOT_RETRIED) or attempt >= self.max_attempts:
                    job.record["gave_up"] = True
                else:
                    delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
                    job.due = time.monotonic() + delay
                    heapq.heappush(self._queue, job)
                self._cond.notify_all()

    def _post(self, url: str, event: dict[str, Any], attempt: int) -> tuple[int | None, str | None]:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        body = json.dumps([event]).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "aeg-event-type": "Notification",
            "aeg-subscription-name": "EMULATOR",
            "aeg-delivery-count": str(attempt - 1),
            "aeg-data-version": str(event.get("dataVersion", "")),
            "aeg-metadata-version": str(event.get("metadataVersion", "")),
        }
        connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout
        )
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status, None
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
