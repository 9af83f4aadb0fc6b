"""The health panel: each component's status and the history of its changes."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import Any

import panel as pn
from bokeh.models import ColumnDataSource, FactorRange
from bokeh.plotting import figure

from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView, clock_text
from monitorkit.dashboard.records import Delta, HealthRow, SeriesInfo
from monitorkit.dashboard.style import html_pane

STATUS_COLORS = {"ok": "#12b76a", "degraded": "#f79009", "failing": "#d92d20", "unknown": "#98a2b3"}
COLLECTOR_UP = "monitorkit_collector_up"


class HealthPanel(PanelView):
    """Each component's status (from the health views, or collector_up when none exist) and its history."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.summary = html_pane("", sizing_mode="stretch_width")
        self.source = ColumnDataSource({"component": [], "start": [], "end": [], "color": [], "status": [], "reason": []})
        self.factors = FactorRange()
        self.timeline = figure(height=160, x_axis_type="datetime", y_range=self.factors, sizing_mode="stretch_width",
                               toolbar_location=None, title="Status history",
                               tooltips=[("component", "@component"), ("status", "@status"), ("reason", "@reason")])
        self.timeline.hbar(y="component", left="start", right="end", height=0.7, color="color", source=self.source)
        self.collectors: dict[int, SeriesInfo] = {}
        self._signature: tuple[Any, ...] | None = None
        body = pn.Column(self.summary, pn.pane.Bokeh(self.timeline, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width", scroll=True)
        super().__init__(spec, ctx, (), body)
        self.render()

    def set_height(self, height: int) -> None:
        self.body.height = max(120, height - HEADER)

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        added = False
        for info in series:
            if info.name == COLLECTOR_UP and (host is None or info.host == host):
                self.collectors[info.series_id] = info
                added = True
        if added:
            self.render()

    def clear(self) -> None:
        self.collectors.clear()

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        if delta.health or delta.health_events or any(sid in delta.values or sid in delta.ended
                                                      for sid in self.collectors):
            self.render(delta.polled_ms)
        return 0

    def rows(self) -> list[HealthRow]:
        """Return the component statuses: the health views' when present, else one per collector."""
        feed = self.ctx.feed
        if feed.health:
            return sorted(feed.health.values(), key=lambda r: r.component)
        latest = feed.latest
        out = []
        for sid, info in sorted(self.collectors.items(), key=lambda kv: kv[1].labels.get("collector", "")):
            if sid in latest:
                t, v = latest[sid]
                ok = v >= 1
                out.append(HealthRow(f"collector {info.labels.get('collector', '?')}", "collector_up",
                                     "ok" if ok else "failing", "collecting" if ok else "last collect failed", None, t))
        return out

    def render(self, now_ms: float | None = None) -> None:
        """Redraw the indicators and the history timeline when a status changed."""
        rows = self.rows()
        events = list(self.ctx.feed.health_events)
        signature = (tuple((r.component, r.status, r.reason) for r in rows), len(events))
        if signature == self._signature:
            return
        self._signature = signature
        worst = max((r.status for r in rows), key=lambda s: ("ok", "degraded", "failing").index(s) if s in
                    ("ok", "degraded", "failing") else 0, default="unknown")
        items = "".join(
            f"<tr data-component='{html.escape(r.component)}' data-status='{html.escape(r.status)}'>"
            f"<td><span class='mk-dot' style='background:{STATUS_COLORS.get(r.status, '#98a2b3')}'></span> "
            f"{html.escape(r.component)}</td><td>{html.escape(r.status)}</td><td>{html.escape(r.reason)}</td>"
            f"<td>{clock_text(r.since_ms)}</td></tr>"
            for r in rows
        )
        shown = html.escape(worst)  # a status is whatever a health view returns
        self.summary.object = (
            f"<div id='mk-health' data-status='{shown}'><b>Overall: <span style='color:"
            f"{STATUS_COLORS.get(worst, '#98a2b3')}'>{shown}</span></b>"
            "<table class='mk-table'><tr><th>component</th><th>status</th><th>reason</th><th>since</th></tr>"
            f"{items or '<tr><td colspan=4>no health data yet</td></tr>'}</table></div>"
        )
        self._timeline(rows, events, now_ms)

    def _timeline(self, rows: list[HealthRow], events: list[Any], now_ms: float | None) -> None:
        end = now_ms or time.time() * 1000
        data: dict[str, list[Any]] = {k: [] for k in ("component", "start", "end", "color", "status", "reason")}
        by_component: dict[str, list[Any]] = {}
        for e in sorted(events, key=lambda e: e.time_ms):
            by_component.setdefault(e.component, []).append(e)
        for component, evs in by_component.items():
            for e, nxt in zip(evs, [*evs[1:], None], strict=True):
                data["component"].append(component)
                data["start"].append(e.time_ms)
                data["end"].append(nxt.time_ms if nxt else end)
                data["color"].append(STATUS_COLORS.get(e.status, "#98a2b3"))
                data["status"].append(e.status)
                data["reason"].append(e.reason)
        self.factors.factors = sorted(by_component)
        self.source.data = data
        self.timeline.height = 60 + 22 * len(by_component)  # every component keeps a readable row
        self.timeline.visible = bool(by_component)
