"""The served dashboard: a Panel/Bokeh server on its own IOLoop thread inside the owner process.

``DashboardServer`` guards every page with the token login and adds the routes of ``http.py``;
each browser session gets one ``DashboardView`` fed by the shared Feed.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import ipaddress
import logging
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

import panel as pn
from panel.io.document import unlocked
from panel.io.resources import LOCAL_DIST
from panel.io.state import set_curdoc
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler
from tornado.websocket import WebSocketClosedError

from monitorkit.dashboard import links
from monitorkit.dashboard.app import AppContext, DashboardView
from monitorkit.dashboard.auth import TokenAuth
from monitorkit.dashboard.errors import DashboardError
from monitorkit.dashboard.gate import FailedLogins, LoginGate
from monitorkit.dashboard.guard import guard_routes
from monitorkit.dashboard.http import routes
from monitorkit.dashboard.login import TokenProvider
from monitorkit.dashboard.records import Delta, merge_deltas

log = logging.getLogger(__name__)
# What a Bokeh session token carries of the page request (it is readable by scripts on the page):
# no cookie (the login one, or those other local apps set), no Authorization header.
SESSION_HEADERS = ["Host", "User-Agent", "Accept-Language"]

def is_loopback(address: str) -> bool:
    """Tell whether ``address`` only accepts connections from this machine."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def origin_hosts(address: str, extra: tuple[str, ...] = ()) -> set[str]:
    """Return the host names a browser may use to reach a server on ``address`` (its websocket origins)."""
    hosts = {"localhost", "127.0.0.1", *extra}
    if address in ("", "0.0.0.0", "::"):
        import psutil

        hosts |= {socket.gethostname(), socket.getfqdn()}
        hosts |= {a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET}
    else:
        hosts.add(address)
    return hosts


def session_factory(app: AppContext) -> Callable[[], Any]:
    """Return the Panel app function: one DashboardView per browser session, fed by the shared feed."""

    def make() -> Any:
        doc = pn.state.curdoc
        if doc is None:
            raise DashboardError("the dashboard app runs inside a Bokeh server session only")
        # Panel sets this only when it renders the page; an update sent before that (the feed
        # starts at once) would point stylesheets at Panel's CDN, unreachable offline.
        doc._template_variables.setdefault("dist_url", LOCAL_DIST)
        # The address asks for a layout and range (/?layout=ops&range=6h); the name of who acts is typed in
        # the alerts panel (one login token is shared: the account says nothing about the person).
        layout, problems = links.requested(pn.state.session_args, app.layouts)
        view = DashboardView(app, layout, user=lambda: "")
        for problem in problems:
            view.notify(problem)
        if pn.state.location is not None:
            links.follow(view, pn.state.location)

        pending: list[Delta] = []
        lock = threading.Lock()

        def deliver(delta: Delta) -> None:
            session = getattr(doc.session_context, "_session", None)
            if session is None or session.connection_count == 0 or session.destroyed:
                return  # the tab is gone (or reconnecting): nothing could receive this update
            with lock:
                pending.append(delta)
                if len(pending) > 1:
                    return  # a callback is already queued: it will take this delta too
            try:
                doc.add_next_tick_callback(flush)
            except (AttributeError, RuntimeError, ValueError):  # the session closed between the check and now
                with lock:
                    pending.clear()

        def flush() -> None:
            # One queued callback per session at most: a busy server sends a lagging session one
            # merged update instead of replaying every tick it missed.
            with lock:
                batch = pending[:]
                pending.clear()
            if not batch:
                return
            # Every change of this tick goes out as ONE websocket message (Panel's unlocked()):
            # Bokeh alone sends one message per changed property, some 30 per tick and session.
            with set_curdoc(doc), unlocked():
                view.apply(merge_deltas(batch))

        sub, snapshot = app.feed.subscribe(deliver)
        view.start(snapshot)

        def destroyed(session_context: Any) -> None:
            app.feed.unsubscribe(sub)
            collect_soon()

        pn.state.on_session_destroyed(destroyed)
        return view.root

    return make


def quiet_closed_sockets(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop the "never retrieved" report of an update written to a tab that closed meanwhile; report the rest."""
    if isinstance(context.get("exception"), (WebSocketClosedError, StreamClosedError)):
        log.debug("an update was not delivered: its tab closed")
        return
    loop.default_exception_handler(context)


_gc_pending = threading.Event()


def release_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise; a closed session's megabytes would stay)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim


def collect_soon(delay: float = 2.0) -> None:
    """Run one garbage collection shortly after sessions end (Bokeh documents hold reference cycles)."""
    if _gc_pending.is_set():
        return
    _gc_pending.set()

    def collect() -> None:
        _gc_pending.clear()
        gc.collect()
        release_memory()

    IOLoop.current().call_later(delay, collect)


class DashboardServer:
    """Run the Panel server for ``app`` on a thread with its own IOLoop: ``start()``, ``url``, ``stop()``."""

    def __init__(self, app: AppContext, auth: TokenAuth, *, address: str = "127.0.0.1", port: int = 0,
                 public_metrics: bool = False, api_key: str | None = None, session_lifetime: float = 15.0,
                 origins: tuple[str, ...] = (), failures: FailedLogins | None = None) -> None:
        self.app = app
        self.auth = auth
        self.gate = LoginGate(auth, failures)
        self.loop_restarts = 0
        self.address = address
        self.requested_port = port
        self.open_metrics = public_metrics or is_loopback(address)
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.session_lifetime_ms = int(session_lifetime * 1000)
        self.origins = origins
        self.port = 0
        self._server: Any = None
        self._loop: IOLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        """Return the base URL (``http://127.0.0.1:PORT``)."""
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def _patterns(self) -> list[tuple[str, type[RequestHandler]]]:
        return routes(self.app, self.auth, open_access=self.open_metrics, api_key=self.api_key)

    def _run(self) -> None:
        from panel.io.server import get_server

        try:
            aio = asyncio.new_event_loop()
            aio.set_exception_handler(quiet_closed_sockets)
            asyncio.set_event_loop(aio)
            loop = IOLoop.current()
            server = get_server(
                {"/": session_factory(self.app)}, port=self.requested_port, address=self.address, loop=loop,
                start=False, show=False, title="monitorkit", auth_provider=TokenProvider(self.auth, self.gate),
                cookie_secret=secrets.token_hex(32), extra_patterns=self._patterns(),
                unused_session_lifetime_milliseconds=self.session_lifetime_ms,
                check_unused_sessions_milliseconds=max(500, self.session_lifetime_ms // 2),
                include_headers=SESSION_HEADERS, include_cookies=[],
            )
            guard_routes(server._tornado, self.gate)
            port = int(server.port or 0)
            server._tornado.websocket_origins.update(f"{host}:{port}" if ":" not in host else host
                                                     for host in origin_hosts(self.address, self.origins))
            server.start()
        except BaseException as exc:  # handed to start() in the calling thread
            self._error = exc
            self._ready.set()
            return
        self._server, self._loop, self.port = server, loop, port
        self._ready.set()
        self._serve(loop)
        loop.close(all_fds=True)

    def _serve(self, loop: IOLoop) -> None:
        # A BaseException escaping a callback ends run_forever(); the loop itself is intact, so it
        # runs on: one bad callback must not leave every client without an answer.
        while not self._stopping:
            try:
                loop.start()
                return
            except BaseException as exc:
                self.loop_restarts += 1
                log.error("the dashboard IOLoop was stopped by %s; serving on (restart %d)", type(exc).__name__,
                          self.loop_restarts, exc_info=True)

    def start(self, timeout: float = 60.0) -> None:
        """Start serving and return once the port listens; raise DashboardError if it cannot."""
        self._thread = threading.Thread(target=self._run, name="monitorkit-dashboard-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise DashboardError(f"the dashboard server did not start within {timeout:.0f} s")
        if self._error is not None:
            raise DashboardError(f"cannot serve the dashboard on {self.address}:{self.requested_port}: {self._error}")

    def stop(self) -> None:
        """Stop the server and its IOLoop thread."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        def shutdown() -> None:
            server.stop()
            loop.stop()

        self._stopping = True
        self.gate.close()

        loop.add_callback(shutdown)
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._loop = self._server = None
