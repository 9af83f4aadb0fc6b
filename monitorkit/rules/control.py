"""The owner's control endpoint: a loopback HTTP server for the few writes other processes need.

The Quack endpoint is read-only, so acks, silences and heartbeats from another process are
POSTed here as JSON with ``Authorization: Bearer <token>``; the RuleService publishes
``control_port`` and ``control_token`` in the owner's 0600 sidecar. Handlers are plain
functions ``handler(payload: dict) -> dict`` registered with ``add_route``.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb

from monitorkit.errors import MonitorkitError
from monitorkit.owner.sidecar import OwnerInfo
from monitorkit.rules.errors import ControlError

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Mapping[str, Any]]
MAX_BODY = 1_000_000


class ControlServer:
    """Serve registered routes on 127.0.0.1 (port 0 picks a free one): ``s.add_route("/x", fn); s.start()``."""

    def __init__(self, token: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.routes: dict[str, Handler] = {}
        self._server = ThreadingHTTPServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="monitorkit-control", daemon=True)

    @property
    def port(self) -> int:
        """Return the port listened on."""
        return int(self._server.server_address[1])

    def add_route(self, path: str, handler: Handler) -> None:
        """Call ``handler(json_body)`` for POSTs to ``path``; its dict is the JSON answer."""
        self.routes[path] = handler

    def start(self) -> None:
        """Start serving in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _make_handler(server: ControlServer) -> type[BaseHTTPRequestHandler]:
    class ControlHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("control: " + format, *args)

        def _answer(self, code: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(200, {"ok": True})
            else:
                self._answer(405, {"error": "use POST"})

        def do_POST(self) -> None:
            auth = self.headers.get("Authorization", "")
            if not hmac.compare_digest(auth, f"Bearer {server.token}"):
                self._answer(401, {"error": "wrong or missing control token"})
                return
            handler = server.routes.get(self.path)
            if handler is None:
                self._answer(404, {"error": f"no route {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, {"error": "request too large"})
                return
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._answer(400, {"error": "body must be JSON"})
                return
            try:
                self._answer(200, {"ok": True, **handler(payload)})
            except MonitorkitError as exc:
                self._answer(400, {"error": str(exc), "type": type(exc).__name__})
            except (KeyError, ValueError, TypeError) as exc:  # a malformed payload
                self._answer(400, {"error": f"bad request: {type(exc).__name__}: {exc}"})
            except duckdb.Error as exc:
                self._answer(500, {"error": f"database error: {exc}", "type": type(exc).__name__})

    return ControlHandler


def call(owner: OwnerInfo, path: str, payload: Mapping[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """POST ``payload`` to the owner's control route ``path`` and return its JSON answer."""
    port, token = owner.extra.get("control_port"), owner.extra.get("control_token")
    if not port or not token:
        raise ControlError(f"owner process {owner.pid} has no control endpoint (is its rule engine running?)")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(payload, default=str).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise ControlError(str(message)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ControlError(f"owner process {owner.pid} did not answer on control port {port}: {exc}") from None
