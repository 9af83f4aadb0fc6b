"""The dashboard's own Tornado routes beside Panel's: ``/healthz``, ``/metrics`` and ``/api/layouts``."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from tornado.web import RequestHandler

from monitorkit.dashboard import exposition
from monitorkit.dashboard.app import LIVE_VIEWS, AppContext
from monitorkit.dashboard.auth import TokenAuth
from monitorkit.dashboard.errors import LayoutError
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.layouts import Layout, layout_from_data, load_json
from monitorkit.rules.health import OVERALL

STATUS_ORDER = ("ok", "degraded", "failing")


def health_summary(feed: Feed, owner: Callable[[], tuple[str, list[Any]]] | None = None) -> dict[str, Any]:
    """Return the overall health: the health views (else collector_up), merged with the owner's in-memory parts.

    ``owner`` is the HealthService's ``snapshot``: checked every tick and answered from memory, so a
    failing writer shows here within a tick, before (or even without) its heartbeat reaching the table.
    """
    if feed.health:
        # The table's `overall` row summarises the table; the summary below is computed again over the
        # components merged with the owner's fresh parts, or a part the owner knows to be well again
        # would keep /healthz failing through a stale overall until the next evaluation.
        comps = [{"component": r.component, "status": r.status, "reason": r.reason}
                 for r in feed.health.values() if r.component != OVERALL]
        source = "health_status"
    else:
        latest = dict(feed.latest)
        up = {f"collector {info.labels.get('collector', '?')}": latest[sid][1] >= 1
              for sid, info in list(feed.series.items()) if info.name == "monitorkit_collector_up" and sid in latest}
        comps = [{"component": name, "status": "ok" if ok else "failing",
                  "reason": "collecting" if ok else "last collect failed"} for name, ok in up.items()]
        source = "collector_up"
    if owner is not None:
        _, parts = owner()
        fresh = {p.component: {"component": p.component, "status": p.status, "reason": p.reason} for p in parts}
        comps = [c for c in comps if c["component"] not in fresh] + list(fresh.values())
        source += "+owner"
    worst = max((c["status"] for c in comps), key=lambda s: STATUS_ORDER.index(s) if s in STATUS_ORDER else 0,
                default="unknown")
    return {"status": worst, "source": source, "components": sorted(comps, key=lambda c: c["component"]),
            "newest_sample_ms": feed.newest_ms}


class _Open(RequestHandler):
    """A handler answering without login on loopback or with ``[serve] public_metrics = true``."""

    auth: TokenAuth
    open_access: bool

    def prepare(self) -> None:
        if not self.open_access and self.auth.known_user(self) is None:
            self.set_status(401)
            self.finish({"error": "sign in, or send Authorization: Bearer <token>"})


class HealthzHandler(_Open):
    """``GET /healthz``: overall and per-component health as JSON (503 when failing)."""

    feed: Feed
    owner_health: Callable[[], Callable[[], tuple[str, list[Any]]] | None]

    def get(self) -> None:
        summary = health_summary(self.feed, self.owner_health())
        self.set_status(503 if summary["status"] == "failing" else 200)
        self.finish(summary)


class MetricsHandler(_Open):
    """``GET /metrics``: the latest sample of every series in Prometheus text format (OpenMetrics if asked)."""

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
        openmetrics = exposition.wants_openmetrics(self.request.headers.get("Accept", ""))
        self.set_header("Content-Type", exposition.OPENMETRICS_TYPE if openmetrics else exposition.CONTENT_TYPE)
        self.finish(exposition.render(dict(feed.series), dict(feed.latest), extra, openmetrics=openmetrics))


class LayoutsApiHandler(RequestHandler):
    """``POST /api/layouts`` with the API key from the owner's 0600 sidecar: save an exported layout.

    The body is ``{"layout": <export file object>, "name": optional override, "default": bool}``.
    """

    app: AppContext
    api_key: str

    def post(self) -> None:
        header = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(header.encode(), f"Bearer {self.api_key}".encode()):
            self.set_status(401)
            self.finish({"error": "wrong or missing API key (it is in the owner's sidecar file)"})
            return
        try:
            layout, default = self._layout()
            self.app.layouts.save(layout, default=default)
        except LayoutError as exc:
            self.set_status(400)
            self.finish({"error": str(exc)})
            return
        self.finish({"saved": layout.name, "panels": len(layout.panels)})

    def _layout(self) -> tuple[Layout, bool]:
        body = load_json(self.request.body or b"{}")
        if not isinstance(body, dict):
            raise LayoutError('the body must be a JSON object: {"layout": {...}, "name": "...", "default": false}')
        name, default = body.get("name"), body.get("default", False)
        if name is not None and not isinstance(name, str):
            raise LayoutError(f"'name' must be a string, got {name!r}")
        if not isinstance(default, bool):
            raise LayoutError(f"'default' must be true or false, got {default!r}")
        if not isinstance(body.get("layout"), dict):
            raise LayoutError("'layout' must be a layout file's JSON object (see `monitorkit layouts export`)")
        return layout_from_data(body["layout"], name), default


def handler_class(base: type[RequestHandler], **attrs: Any) -> type[RequestHandler]:
    return type(base.__name__, (base,), attrs)



def routes(app: AppContext, auth: TokenAuth, *, open_access: bool, api_key: str) -> list[tuple[str, type[RequestHandler]]]:
    """Return the (pattern, handler) pairs the server adds to Panel's: health, metrics and the layouts API."""
    common = {"auth": auth, "open_access": open_access}
    return [
        ("/healthz", handler_class(HealthzHandler, feed=app.feed, owner_health=staticmethod(lambda: app.owner_health),
                                   **common)),
        ("/metrics", handler_class(MetricsHandler, feed=app.feed, reader=app.reader, **common)),
        ("/api/layouts", handler_class(LayoutsApiHandler, app=app, api_key=api_key)),
    ]
