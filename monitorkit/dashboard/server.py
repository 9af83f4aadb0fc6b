"""The served dashboard: a Panel/Bokeh server on its own IOLoop thread inside the owner process.

``DashboardService`` (a runtime Service) wires the store to one shared Feed, guards every
page with the token login, and adds ``/healthz``, ``/metrics`` and ``/api/layouts``.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

import panel as pn
from panel.io.resources import LOCAL_DIST
from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from monitorkit.config import Settings, parse_duration
from monitorkit.dashboard import exposition
from monitorkit.dashboard.actions import RulesActions
from monitorkit.dashboard.app import LIVE_VIEWS, AppContext, DashboardView, LayoutBackend
from monitorkit.dashboard.auth import USER, TokenAuth, ensure_token, login_url
from monitorkit.dashboard.console import SqlConsole
from monitorkit.dashboard.errors import DashboardError, LayoutError
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.layouts import from_file_json
from monitorkit.dashboard.panels import cached_metrics
from monitorkit.dashboard.reader import StoreReader
from monitorkit.dashboard.records import Delta, merge_deltas
from monitorkit.errors import MonitorkitError

log = logging.getLogger(__name__)
HIDDEN_TABLES = frozenset({"dashboard_credentials"})  # the console never shows the login hash
STATUS_ORDER = ("ok", "degraded", "failing")


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
        view = DashboardView(app, app.layouts.default(), user=lambda: USER)  # one login token, one user

        pending: list[Delta] = []
        lock = threading.Lock()

        def deliver(delta: Delta) -> None:
            session = getattr(doc.session_context, "_session", None)
            if session is not None and session.connection_count == 0:
                return  # the tab is gone (or reconnecting): nothing could receive this update
            with lock:
                pending.append(delta)
                if len(pending) > 1:
                    return  # a callback is already queued: it will take this delta too
            doc.add_next_tick_callback(flush)

        def flush() -> None:
            # One queued callback per session at most: a busy server sends a lagging session one
            # merged update instead of replaying every tick it missed.
            with lock:
                batch = pending[:]
                pending.clear()
            view.apply(merge_deltas(batch))

        sub, snapshot = app.feed.subscribe(deliver)
        view.start(snapshot)

        def destroyed(session_context: Any) -> None:
            app.feed.unsubscribe(sub)
            collect_soon()

        pn.state.on_session_destroyed(destroyed)
        return view.root

    return make


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


def health_summary(feed: Feed) -> dict[str, Any]:
    """Return the overall health: from the health views when they report, else from collector_up."""
    if feed.health:
        comps = [{"component": r.component, "status": r.status, "reason": r.reason} for r in feed.health.values()]
        source = "health_status"
    else:
        latest = dict(feed.latest)
        up = {f"collector {info.labels.get('collector', '?')}": latest[sid][1] >= 1
              for sid, info in list(feed.series.items()) if info.name == "monitorkit_collector_up" and sid in latest}
        comps = [{"component": name, "status": "ok" if ok else "failing",
                  "reason": "collecting" if ok else "last collect failed"} for name, ok in up.items()]
        source = "collector_up"
    worst = max((c["status"] for c in comps), key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 0,
                default="unknown")
    return {"status": worst, "source": source, "components": sorted(comps, key=lambda c: c["component"]),
            "newest_sample_ms": feed.newest_ms}


class _Open(RequestHandler):
    """A handler answering without login on loopback or with ``[serve] public_metrics = true``."""

    auth: TokenAuth
    open_access: bool

    def prepare(self) -> None:
        if not self.open_access and self.auth.user(self) is None:
            self.set_status(401)
            self.finish({"error": "sign in, or send Authorization: Bearer <token>"})


class HealthzHandler(_Open):
    """``GET /healthz``: overall and per-component health as JSON (503 when failing)."""

    feed: Feed

    def get(self) -> None:
        summary = health_summary(self.feed)
        self.set_status(503 if summary["status"] == "failing" else 200)
        self.finish(summary)


class MetricsHandler(_Open):
    """``GET /metrics``: the latest sample of every series in Prometheus text format."""

    feed: Feed
    reader: Any

    def get(self) -> None:
        feed = self.feed
        extra = [
            exposition.Extra("monitorkit_dashboard_sessions", "gauge", {}, feed.subscribers),
            exposition.Extra("monitorkit_dashboard_views", "gauge", {}, len(LIVE_VIEWS)),
            exposition.Extra("monitorkit_dashboard_polls_total", "counter", {}, feed.polls),
            exposition.Extra("monitorkit_dashboard_ticks_total", "counter", {}, feed.triggers),
            exposition.Extra("monitorkit_dashboard_store_queries_total", "counter", {}, self.reader.queries),
        ]
        self.set_header("Content-Type", exposition.CONTENT_TYPE)
        self.finish(exposition.render(dict(feed.series), dict(feed.latest), extra))


class LayoutsApiHandler(RequestHandler):
    """``POST /api/layouts`` with the API key from the owner's 0600 sidecar: save an exported layout."""

    app: AppContext
    api_key: str

    def post(self) -> None:
        header = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(header.encode(), f"Bearer {self.api_key}".encode()):
            self.set_status(401)
            self.finish({"error": "wrong or missing API key (it is in the owner's sidecar file)"})
            return
        try:
            body = json.loads(self.request.body or b"{}")
            layout = from_file_json(json.dumps(body.get("layout")), body.get("name"))
            self.app.layouts.save(layout, default=bool(body.get("default")))
        except (ValueError, LayoutError) as exc:
            self.set_status(400)
            self.finish({"error": str(exc)})
            return
        self.finish({"saved": layout.name, "panels": len(layout.panels)})


def _handler(base: type[RequestHandler], **attrs: Any) -> type[RequestHandler]:
    return type(base.__name__, (base,), attrs)


class DashboardServer:
    """Run the Panel server for ``app`` on a thread with its own IOLoop: ``start()``, ``url``, ``stop()``."""

    def __init__(self, app: AppContext, auth: TokenAuth, *, address: str = "127.0.0.1", port: int = 0,
                 public_metrics: bool = False, api_key: str | None = None, session_lifetime: float = 15.0,
                 origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.auth = auth
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

    @property
    def url(self) -> str:
        """Return the base URL (``http://127.0.0.1:PORT``)."""
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def _patterns(self) -> list[tuple[str, type[RequestHandler]]]:
        feed = self.app.feed
        common = {"auth": self.auth, "open_access": self.open_metrics}
        return [
            ("/healthz", _handler(HealthzHandler, feed=feed, **common)),
            ("/metrics", _handler(MetricsHandler, feed=feed, reader=self.app.reader, **common)),
            ("/api/layouts", _handler(LayoutsApiHandler, app=self.app, api_key=self.api_key)),
        ]

    def _run(self) -> None:
        from panel.io.server import get_server

        try:
            asyncio.set_event_loop(asyncio.new_event_loop())
            loop = IOLoop.current()
            server = get_server(
                {"/": session_factory(self.app)}, port=self.requested_port, address=self.address, loop=loop,
                start=False, show=False, title="monitorkit", auth_provider=self.auth.provider(),
                cookie_secret=secrets.token_hex(32), extra_patterns=self._patterns(),
                unused_session_lifetime_milliseconds=self.session_lifetime_ms,
                check_unused_sessions_milliseconds=max(500, self.session_lifetime_ms // 2),
            )
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
        loop.start()
        loop.close(all_fds=True)

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

        loop.add_callback(shutdown)
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._loop = self._server = None


class DashboardService:
    """The owner-side service started by ``monitorkit serve``: feed, console, login and the Panel server."""

    name = "dashboard"

    def __init__(self) -> None:
        self.server: DashboardServer | None = None
        self.feed: Feed | None = None
        self.console: SqlConsole | None = None
        self.token: str | None = None
        self.url = ""
        self._hook: Callable[..., None] | None = None
        self._ctx: Any = None

    def start(self, ctx: Any) -> None:
        """Start polling the store once per tick, then serve; publish the URL in the owner's sidecar."""
        settings: Settings = ctx.settings
        store = ctx.owner.store
        reader = StoreReader(store)
        tick = float(ctx.scheduler.tick)
        feed = Feed(reader, tick=tick, window=parse_duration(settings.get("serve.cache_window", "15m")).total_seconds(),
                    cached=cached_metrics(), before_poll=store.flush)
        feed.prime()
        credential, self.token = ensure_token(store, token=settings.get("serve.token"),
                                              rotate=bool(settings.get("serve.new_token", False)))
        owner = ctx.owner.info
        tables = feed.tables - HIDDEN_TABLES
        try:
            self.console = SqlConsole.for_owner(owner.port, owner.token, tables) if owner is not None else None
        except MonitorkitError as exc:
            log.warning("SQL console unavailable: %s", exc)
        backend = LayoutBackend(reader, write=lambda fn: store.submit(fn).result(30))
        app = AppContext(feed, reader, backend, RulesActions(ctx.owner.db, settings), self.console, tick)
        server = DashboardServer(
            app, TokenAuth(credential), address=str(settings.get("serve.address", "127.0.0.1")),
            port=int(settings.get("serve.port", 5006)), public_metrics=bool(settings.get("serve.public_metrics", False)),
            session_lifetime=parse_duration(settings.get("serve.session_lifetime", "15s")).total_seconds(),
            origins=tuple(settings.get("serve.allow_origin", ()) or ()),
        )
        server.start()
        self.server, self.feed, self._ctx = server, feed, ctx
        self._hook = feed.trigger
        ctx.scheduler.tick_hooks.append(self._hook)
        feed.start(triggered=True)
        self.url = server.url
        if owner is not None:
            ctx.owner.publish(dashboard_url=self.url, dashboard_api_key=server.api_key)

    @property
    def login_url(self) -> str:
        """Return the URL to open: with ``?token=`` when a token was issued at this start."""
        return login_url(self.url, self.token)

    def stop(self) -> None:
        """Stop polling and serving."""
        if self._hook is not None and self._ctx is not None and self._hook in self._ctx.scheduler.tick_hooks:
            self._ctx.scheduler.tick_hooks.remove(self._hook)
        if self.feed is not None:
            self.feed.stop()
        if self.server is not None:
            self.server.stop()
        if self.console is not None:
            self.console.close()
