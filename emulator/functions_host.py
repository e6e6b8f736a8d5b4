"""A stand-in for the Azure Functions host, for `function_app.app` (Python v2 programming model).

`func` (Core Tools) cannot run here, so this module does what the host and the Python worker do
for our two trigger kinds, using the worker's own pieces:

- indexing: `app.get_functions()`, each function's binding JSON and user function;
- Event Grid webhook (`POST /runtime/webhooks/EventGrid?functionName=NAME` with header
  `aeg-event-type: Notification`): the host splits the JSON array and invokes the function once per
  event; each event is decoded by `azure.functions.eventgrid.EventGridEventInConverter.decode`
  from a `Datum(type="json")`, exactly as the worker does (a `CloudEvent` when it has
  `specversion`). `SubscriptionValidation` answers the handshake. Any failed invocation makes the
  answer 500, so Event Grid redelivers; an unparsable body is 400, which Event Grid does not retry;
- timers (`POST /admin/functions/NAME`, like `func start`): the function is called with
  `azure.functions.timer.TimerRequest(past_due=...)`.

It serves plain HTTP on loopback, like `func start` on port 7071.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequest

log = logging.getLogger("emulator.functions_host")

EVENT_GRID_TRIGGER = "eventGridTrigger"
TIMER_TRIGGER = "timerTrigger"


@dataclass(frozen=True)
class IndexedFunction:
    name: str
    trigger_type: str
    arg_name: str
    bindings: dict[str, Any]
    user_function: Callable[..., Any]


@dataclass(frozen=True)
class Invocation:
    function: str
    ok: bool
    duration_ms: float
    error: str | None = None


@dataclass
class DeliveryResult:
    status: int
    invocations: list[Invocation] = field(default_factory=list)
    body: bytes = b""


def index_functions(app: Any) -> dict[str, IndexedFunction]:
    """Index a `func.FunctionApp` the way the worker does (name -> trigger, binding, callable)."""
    indexed: dict[str, IndexedFunction] = {}
    for function in app.get_functions():
        trigger = function.get_trigger()
        if trigger is None:
            continue
        bindings = json.loads(function.get_function_json())
        trigger_binding = next(b for b in bindings["bindings"] if b["name"] == trigger.name)
        indexed[function.get_function_name()] = IndexedFunction(
            name=function.get_function_name(),
            trigger_type=trigger_binding["type"],
            arg_name=trigger.name,
            bindings=trigger_binding,
            user_function=function.get_user_function(),
        )
    return indexed


class FunctionsHost:
    """Invokes the indexed functions of one app as the host and worker would."""

    def __init__(self, app: Any) -> None:
        self.functions = index_functions(app)
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []

    def function(self, name: str, trigger_type: str) -> IndexedFunction:
        found = self.functions.get(name)
        if found is None or found.trigger_type != trigger_type:
            raise LookupError(f"no {trigger_type} function named {name!r}")
        return found

    def deliver_event_grid(self, name: str, body: bytes, event_type_header: str) -> DeliveryResult:
        """Handle one webhook POST from Event Grid; returns the HTTP answer the host would give."""
        try:
            function = self.function(name, EVENT_GRID_TRIGGER)
        except LookupError as error:
            return DeliveryResult(404, body=str(error).encode())
        try:
            payload = json.loads(body)
        except ValueError:
            return DeliveryResult(400, body=b"request body is not JSON")
        events = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(event, dict) for event in events):
            return DeliveryResult(400, body=b"every event must be a JSON object")
        if event_type_header == "SubscriptionValidation":
            code = (events[0].get("data") or {}).get("validationCode") if events else None
            answer = json.dumps({"validationResponse": code}).encode()
            return DeliveryResult(200, body=answer)
        if event_type_header != "Notification":
            return DeliveryResult(400, body=b"aeg-event-type must be Notification")
        result = DeliveryResult(200)
        for event in events:
            datum = meta.Datum(type="json", value=json.dumps(event))
            invocation = self._invoke(function, functools.partial(_decode_event, datum))
            result.invocations.append(invocation)
            if not invocation.ok:
                result.status = 500
        return result

    def run_timer(self, name: str, *, past_due: bool = False) -> Invocation:
        function = self.function(name, TIMER_TRIGGER)
        return self._invoke(function, lambda: TimerRequest(past_due=past_due))

    def _invoke(self, function: IndexedFunction, make_argument: Callable[[], Any]) -> Invocation:
        started = time.monotonic()
        try:
            function.user_function(**{function.arg_name: make_argument()})
        except Exception as error:  # the host logs a failed invocation and carries on
            log.warning("Executed 'Functions.%s' (Failed): %s", function.name, error)
            invocation = Invocation(function.name, False, _ms(started), f"{type(error).__name__}")
        else:
            invocation = Invocation(function.name, True, _ms(started))
        with self._lock:
            self.invocations.append(invocation)
        return invocation


def _decode_event(datum: meta.Datum) -> Any:
    return EventGridEventInConverter.decode(datum, trigger_metadata={})


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


class FunctionsHostServer:
    """`func start` on loopback: the Event Grid webhook and the admin endpoint for timers."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        """`app` is a `func.FunctionApp` or an already indexed `FunctionsHost` (an app can be
        indexed only once, like in the worker)."""
        self.host = app if isinstance(app, FunctionsHost) else FunctionsHost(app)
        functions_host = self.host

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if url.path.lower() == "/runtime/webhooks/eventgrid":
                    name = (parse_qs(url.query).get("functionName") or [""])[0]
                    header = self.headers.get("aeg-event-type", "")
                    result = functions_host.deliver_event_grid(name, body, header)
                    self._answer(result.status, result.body)
                elif url.path.startswith("/admin/functions/"):
                    name = url.path.removeprefix("/admin/functions/")
                    try:
                        functions_host.run_timer(name)
                    except LookupError as error:
                        self._answer(404, str(error).encode())
                    else:
                        self._answer(202, b"")
                else:
                    self._answer(404, b"not found")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def webhook_url(self, function_name: str) -> str:
        return f"{self.url}/runtime/webhooks/EventGrid?functionName={function_name}"

    def __enter__(self) -> FunctionsHostServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
