"""The owner API: ONE loopback HTTP server with one bearer token; services register their routes on it.

Quack readers are read-only, so everything another process writes goes here: samples and
tool runs (``owner/ingest.py``), acknowledgements, silences, heartbeats and reloads (rules),
and later receivers. ``run_owner`` starts it and publishes ``api_port`` and ``api_token`` in
the owner's 0600 sidecar; ``owner/client.py`` is the one client.

Every input is bounded before a handler sees it: a Content-Length is required and checked
against the route's limit, large bodies share a byte budget, idle connections are closed,
and the number of open connections is capped, so no client can pin memory or threads.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import select
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from monitorkit.errors import MonitorkitError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 2**20
JSON_BODY_BYTES = 1_000_000
BODY_BUDGET_BYTES = 128 * 2**20  # bytes of request bodies held at once, over all connections
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 10.0  # seconds a client may stall (before or within a request) before its socket is closed
MAX_JSON_DEPTH = 32


class Request(NamedTuple):
    """What a route handler gets: the path, the headers it may need, the whole body, and whether the client is still there."""

    method: str
    path: str
    content_type: str
    body: bytes
    headers: Mapping[str, str]
    client_alive: Callable[[], bool] = lambda: True


class Response(NamedTuple):
    """What a route handler returns."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        """Return a plain-text answer."""
        return cls(status, message.encode())

    @classmethod
    def json(cls, status: int, payload: Mapping[str, Any]) -> Response:
        """Return a JSON answer."""
        return cls(status, json.dumps(payload, default=str).encode(), "application/json")


Handler = Callable[[Request], Response]


class Route(NamedTuple):
    """A registered route: its handler and the largest body it accepts."""

    handler: Handler
    max_body: int


class BadRequest(MonitorkitError, ValueError):
    """A request the API refuses as malformed (answered 400 with the message)."""


def _depth(value: Any, limit: int) -> int:
    """Return the nesting depth of decoded JSON, stopping past ``limit``."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        level = nxt
    return depth


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body (empty: ``{}``), refusing other shapes, deep nesting and huge integers."""
    try:
        payload = json.loads(body or b"{}", parse_int=_bounded_int)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body must be a JSON object: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"body must be a JSON object, not {type(payload).__name__}")
    if _depth(payload, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return payload


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 18:
        raise ValueError(f"integer {text[:20]}... is out of range")
    return int(text)


def json_route(fn: Callable[[dict[str, Any]], Mapping[str, Any]]) -> Handler:
    """Wrap ``fn(payload) -> dict`` as a handler: JSON in, ``{"ok": true, ...}`` out, typed errors as 4xx/5xx."""
    import duckdb  # only owner processes register JSON routes; the client side never imports this

    def handler(request: Request) -> Response:
        try:
            payload = parse_json_object(request.body)
            return Response.json(200, {"ok": True, **fn(payload)})
        except MonitorkitError as exc:
            return Response.json(400, {"error": str(exc), "type": type(exc).__name__})
        except (KeyError, ValueError, TypeError, OverflowError) as exc:  # a malformed payload
            return Response.json(400, {"error": f"bad request: {type(exc).__name__}: {exc}"})
        except duckdb.Error as exc:
            return Response.json(500, {"error": f"database error: {exc}", "type": type(exc).__name__})

    return handler


class _Budget:
    """Bytes of request bodies held at once: a request waits for room, or is refused after ``IDLE_TIMEOUT``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._cond = threading.Condition()

    def take(self, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.used + n <= self.total, timeout) and self._grab(n)

    def _grab(self, n: int) -> bool:
        self.used += n
        return True

    def give(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # connections the kernel holds before accept(): a burst is refused by us, not reset
    api: OwnerApi

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Over the cap, a new connection is closed at once instead of pinning one more thread.
        if not self.api.slots.acquire(blocking=False):
            self.api.refused_connections += 1
            return False
        return True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.api.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "monitorkit-owner/1"
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("owner api %s - %s", self.address_string(), format % args)

    def _send(self, answer: Response) -> None:
        self.server.api.count(self.path.partition("?")[0], answer.status)
        if self.server.api.stopped:
            # A kept-alive connection outlives the listener: close it, so the client reconnects to the next owner.
            self.close_connection = True
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True  # the body (if any) was not read: the stream is out of step
        self._send(Response.json(status, {"error": message}))

    def _client_alive(self) -> bool:
        """Tell whether the client still holds its end: a closed socket reads as EOF without blocking."""
        try:
            ready, _, _ = select.select([self.connection], [], [], 0)
            return not ready or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(Response.json(200, {"ok": True}))
        else:
            self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        given = self.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {api.token}".encode()):
            self._refuse(401, "missing or wrong token: read api_token from the owner's sidecar file")
            return
        route = api.routes.get((method, self.path.partition("?")[0]))
        if route is None and (api.starting or api.stopping):
            # Services register their routes while the owner starts and remove them while it stops:
            # a peer retries a 503 (a 404 it drops, losing a remote-write batch over a restart).
            when = "starting and this route is not registered yet" if api.starting else "stopping"
            self._refuse(503, f"the owner is {when}; retry shortly")
            return
        if route is None:
            known = sorted(path for m, path in api.routes if m == method)
            self._refuse(404 if known or method == "POST" else 405, f"no route {method} {self.path}; known: {', '.join(known)}")
            return
        raw = self.headers.get("Content-Length")
        if raw is None and method == "GET":
            raw = "0"
        if raw is None or not raw.strip().isdigit():
            self._refuse(411 if raw is None else 400, f"a Content-Length of 0 or more is required, not {raw!r}")
            return
        length = int(raw)
        if length > route.max_body:
            self._refuse(413, f"body of {length} bytes is over the limit of {route.max_body} bytes; send smaller batches")
            return
        if not api.budget.take(length, IDLE_TIMEOUT):
            self._refuse(503, "the owner is busy reading other large requests; retry shortly")
            return
        try:
            try:
                body = self.rfile.read(length)
            except (TimeoutError, OSError):
                self.close_connection = True
                return
            if len(body) != length:
                self._refuse(400, f"body ended after {len(body)} of {length} bytes")
                return
            request = Request(method, self.path, self.headers.get("Content-Type", ""), body, dict(self.headers.items()),
                              self._client_alive)
            try:
                answer = route.handler(request)
            except BadRequest as exc:
                answer = Response.json(400, {"error": str(exc)})
            except Exception as exc:  # one broken handler must not take the API (or the owner) down
                log.exception("owner api route %s %s failed", method, self.path)
                answer = Response.json(500, {"error": f"{type(exc).__name__}: {exc}"})
        finally:
            api.budget.give(length)
        self._send(answer)


class OwnerApi:
    """Serve registered routes on 127.0.0.1 with one token: ``api.add_route("POST", "/x", h); api.start()``."""

    def __init__(self, token: str | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 max_connections: int = MAX_CONNECTIONS, body_budget: int = BODY_BUDGET_BYTES) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.routes: dict[tuple[str, str], Route] = {}
        self.counts: dict[tuple[str, int], int] = {}
        self.refused_connections = 0
        self.starting = False  # True while services are still registering routes (run_owner sets it)
        self.stopping = False  # True once services start removing their routes (run_owner sets it)
        self.stopped = False
        self.slots = threading.BoundedSemaphore(max_connections)
        self.budget = _Budget(body_budget)
        self._lock = threading.Lock()
        self._server = _Server((host, port), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="monitorkit-api", daemon=True)

    @property
    def port(self) -> int:
        """Return the port listened on."""
        return int(self._server.server_address[1])

    @property
    def running(self) -> bool:
        """Tell whether the serving thread is alive."""
        return self._thread.is_alive()

    def add_route(self, method: str, path: str, handler: Handler, *, max_body: int = JSON_BODY_BYTES) -> None:
        """Answer ``method path`` with ``handler(Request)``; bodies over ``max_body`` bytes get 413."""
        key = (method.upper(), path)
        if key in self.routes:
            raise ValueError(f"route {method} {path} is registered twice")
        self.routes[key] = Route(handler, min(max_body, self.budget.total))

    def remove_route(self, method: str, path: str) -> None:
        """Stop answering ``method path`` (a service that stops)."""
        self.routes.pop((method.upper(), path), None)

    def count(self, path: str, status: int) -> None:
        """Count one answered request by route path (``other`` for unknown ones) and status."""
        key = (path if any(p == path for _, p in self.routes) else "other", status)
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def answered(self, paths: Sequence[str]) -> dict[int, int]:
        """Return how many requests to ``paths`` were answered, by status."""
        out: dict[int, int] = {}
        with self._lock:
            for (path, status), n in self.counts.items():
                if path in paths:
                    out[status] = out.get(status, 0) + n
        return out

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (kept-alive connections are closed after their next answer)."""
        self.stopped = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def answering(self, timeout: float = 1.0) -> bool:
        """Tell whether the API answers its own health route (for the owner's health)."""
        from monitorkit.owner.client import request

        try:
            return request(self.port, "GET", "/health", "", "", b"", timeout).status == 200
        except OSError:
            return False

