"""The owner-side dashboard service that ``monitorkit serve`` starts: feed, console, login and the server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from monitorkit.config import Settings, parse_duration
from monitorkit.dashboard.actions import RulesActions
from monitorkit.dashboard.app import AppContext, LayoutBackend
from monitorkit.dashboard.auth import TokenAuth, ensure_token, login_url
from monitorkit.dashboard.console import HIDDEN_TABLES, SqlConsole
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.panels import cached_metrics
from monitorkit.dashboard.reader import StoreReader
from monitorkit.dashboard.server import DashboardServer
from monitorkit.owner.api import json_route
from monitorkit.owner.context import OwnerContext

log = logging.getLogger(__name__)
TOKEN_ROUTE = "/v1/dashboard/token"  # the owner API route `monitorkit token` calls


class DashboardService:
    """The owner-side service started by ``monitorkit serve``: feed, console, login and the Panel server."""

    name = "dashboard"

    def __init__(self) -> None:
        self.server: DashboardServer | None = None
        self.feed: Feed | None = None
        self.console: SqlConsole | None = None
        self.token: str | None = None
        self.url = ""
        self._hook: Callable[[datetime], None] | None = None
        self._ctx: OwnerContext | None = None

    def start(self, ctx: OwnerContext) -> None:
        """Start polling the store once per tick, then serve; publish the URL in the owner's sidecar."""
        settings: Settings = ctx.settings
        store = ctx.owner.store
        self._ctx = ctx
        reader = StoreReader(store)
        tick = float(ctx.scheduler.tick)
        feed = Feed(reader, tick=tick, window=parse_duration(settings.get("serve.cache_window", "15m")).total_seconds(),
                    cached=cached_metrics(), before_poll=store.flush)
        feed.prime()
        credential, self.token = ensure_token(store, token=settings.get("serve.token"),
                                              rotate=bool(settings.get("serve.new_token", False)))
        owner = ctx.owner.info
        # In the owner's process the console runs on its own cursor: joins, macros and PIVOT, as readers may.
        self.console = SqlConsole.in_owner(store, feed.tables - HIDDEN_TABLES)
        backend = LayoutBackend(reader, write=lambda fn: store.submit(fn).result(30))
        app = AppContext(feed, reader, backend, RulesActions(ctx.owner.db, settings), self.console, tick,
                         owner_health=self._owner_health)
        server = DashboardServer(
            app, TokenAuth(credential), address=str(settings.get("serve.address", "127.0.0.1")),
            port=int(settings.get("serve.port", 5006)), public_metrics=bool(settings.get("serve.public_metrics", False)),
            session_lifetime=parse_duration(settings.get("serve.session_lifetime", "15s")).total_seconds(),
            origins=tuple(settings.get("serve.allow_origin", ()) or ()),
        )
        server.start()
        self.server, self.feed = server, feed
        self._hook = feed.trigger
        ctx.scheduler.tick_hooks.append(self._hook)
        feed.start(triggered=True)
        self.url = server.url
        if owner is not None:
            ctx.owner.publish(dashboard_url=self.url, dashboard_api_key=server.api_key)
        # `monitorkit token` (and `serve --new-token` against this server) asks for a fresh login URL here.
        ctx.api.add_route("POST", TOKEN_ROUTE, json_route(self._new_token))

    def _new_token(self, payload: dict[str, object]) -> dict[str, object]:
        """Issue a new login token (the old one and every open login stop working); return the login URL."""
        assert self._ctx is not None and self.server is not None
        credential, token = ensure_token(self._ctx.owner.store, rotate=True)
        self.server.auth.rotate(credential)
        self.token = token
        log.warning("a new dashboard login token was issued through the owner API; earlier logins are signed out")
        return {"url": login_url(self.url, token)}

    def _owner_health(self) -> tuple[str, list[Any]]:
        """Return the owner's HealthService snapshot (looked up when asked: it may start after this service)."""
        service = self._ctx.services.get("health") if self._ctx is not None else None
        snapshot = getattr(service, "snapshot", None)
        return snapshot() if callable(snapshot) else ("ok", [])

    @property
    def login_url(self) -> str:
        """Return the URL to open: with ``?token=`` when a token was issued at this start."""
        return login_url(self.url, self.token)

    def stop(self) -> None:
        """Stop polling and serving."""
        if self._ctx is not None:
            self._ctx.api.remove_route("POST", TOKEN_ROUTE)
        if self._hook is not None and self._ctx is not None and self._hook in self._ctx.scheduler.tick_hooks:
            self._ctx.scheduler.tick_hooks.remove(self._hook)
        if self.feed is not None:
            self.feed.stop()
        if self.server is not None:
            self.server.stop()
        if self.console is not None:
            self.console.close()
