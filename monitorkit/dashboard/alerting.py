"""The alerts panel (firing and recent alerts, acknowledge and silence) and the health panel."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any

import panel as pn
from bokeh.models import ColumnDataSource, FactorRange
from bokeh.plotting import figure

from monitorkit.dashboard.errors import AlertActionError
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels import HEADER, PanelContext, PanelView, _clock
from monitorkit.dashboard.records import AlertRow, Delta, HealthRow, SeriesInfo
from monitorkit.dashboard.style import html_pane

SEVERITY_COLORS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3"}
STATUS_COLORS = {"ok": "#12b76a", "degraded": "#f79009", "failing": "#d92d20", "unknown": "#98a2b3"}
SILENCE_CHOICES = {"1 h": 1, "4 h": 4, "24 h": 24}
COLLECTOR_UP = "monitorkit_collector_up"


def _labels(labels: dict[str, str] | Any) -> str:
    shown = {k: v for k, v in dict(labels).items() if k not in ("alertname", "severity")}
    return ", ".join(f"{html.escape(k)}={html.escape(str(v))}" for k, v in sorted(shown.items()))


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


class AlertsPanel(PanelView):
    """Firing and pending alerts with Acknowledge and Silence buttons, then the last day's resolved ones."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.duration = pn.widgets.Select(label="Silence for", options=list(SILENCE_CHOICES), value="1 h", width=90)
        self.comment = pn.widgets.TextInput(label="Comment", placeholder="why (kept with the ack or silence)", width=260)
        self.message = html_pane("", css_classes=["mk-message"], sizing_mode="stretch_width")
        self.active = pn.Column(sizing_mode="stretch_width")
        self.recent = html_pane("", sizing_mode="stretch_width")
        self._signature: tuple[Any, ...] | None = None
        body = pn.Column(pn.Row(self.duration, self.comment), self.message, self.active, self.recent,
                         sizing_mode="stretch_width", scroll=True)
        super().__init__(spec, ctx, (), body)
        self.render()

    def set_height(self, height: int) -> None:
        self.body.height = max(120, height - HEADER)

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        if delta.alerts:
            self.render()
        return 0

    def render(self) -> None:
        """Rebuild the lists when an alert's state, acknowledgement or silence changed."""
        alerts = sorted(self.ctx.feed.alerts.values(), key=lambda a: (a.state != "firing", -(a.since_ms or 0)))
        signature = tuple((a.id, a.state, a.acked_by, a.silenced_by) for a in alerts)
        if signature == self._signature:
            return
        self._signature = signature
        active = [a for a in alerts if a.state in ("firing", "pending")]
        self.active.objects = [self._row(a) for a in active] or [
            html_pane("<p class='mk-ok' id='mk-no-alerts'>No alert is firing.</p>", sizing_mode="stretch_width")
        ]
        resolved = [a for a in alerts if a.state not in ("firing", "pending")][:50]
        rows = "".join(
            f"<tr><td>{_clock(a.resolved_ms or a.updated_ms)}</td><td>{html.escape(a.rule)}</td><td>{_labels(a.labels)}</td>"
            f"<td>{html.escape(a.state)}</td><td>{html.escape(a.acked_by or '')}</td></tr>"
            for a in resolved
        )
        self.recent.object = (
            "<b>Recent (last 24 h)</b><table class='mk-table'><tr><th>resolved</th><th>rule</th><th>labels</th>"
            f"<th>state</th><th>acked by</th></tr>{rows or '<tr><td colspan=5>none</td></tr>'}</table>"
        )

    def _row(self, alert: AlertRow) -> Any:
        color = SEVERITY_COLORS.get(alert.severity, "#475467")
        acked = f" · acknowledged by {html.escape(alert.acked_by)}" if alert.acked_by else ""
        silenced = f" · silenced (#{alert.silenced_by})" if alert.silenced_by else ""
        text = html_pane(
            f"<div class='mk-alert' data-alert-id='{alert.id}' data-state='{html.escape(alert.state)}'>"
            f"<span class='mk-badge' style='background:{color}'>{html.escape(alert.severity)}</span> "
            f"<b>{html.escape(alert.rule)}</b> <span class='mk-state'>{html.escape(alert.state)}</span>{acked}{silenced}"
            f"<br><small>{_labels(alert.labels)} · since {_clock(alert.since_ms)} · value {_num(alert.value)}"
            f"</small><br>{html.escape(alert.summary)}</div>",
            sizing_mode="stretch_width",
        )
        ack = pn.widgets.Button(label="Acknowledge", color="primary", width=120, disabled=bool(alert.acked_by) or
                                self.ctx.actions is None, css_classes=["mk-ack"])
        silence = pn.widgets.Button(label="Silence", color="warning", width=90, disabled=bool(alert.silenced_by) or
                                    self.ctx.actions is None, css_classes=["mk-silence"])
        ack.on_click(partial(self._clicked, alert, "ack"))
        silence.on_click(partial(self._clicked, alert, "silence"))
        return pn.Row(text, ack, silence, sizing_mode="stretch_width", styles={"border-bottom": "1px solid #eaecf0"})

    def _clicked(self, alert: AlertRow, what: str, event: Any = None) -> None:
        self._act(alert, what)

    def _act(self, alert: AlertRow, what: str) -> None:
        actions = self.ctx.actions
        if actions is None:
            self.message.object = "<span class='mk-error'>This dashboard cannot change alerts (read-only).</span>"
            return
        by = self.ctx.user()
        comment = self.comment.value or "from the dashboard"
        try:
            if what == "ack":
                actions.acknowledge(alert, by=by, comment=comment)
                done = f"Alert {alert.id} ({html.escape(alert.rule)}) acknowledged by {html.escape(by)}."
            else:
                hours = SILENCE_CHOICES[self.duration.value]
                sid = actions.silence(alert, duration=timedelta(hours=hours), by=by, comment=comment)
                done = f"Silence #{sid} created for {hours} h on {html.escape(alert.rule)}."
        except AlertActionError as exc:
            self.message.object = f"<span class='mk-error'>{html.escape(str(exc))}</span>"
            return
        self.message.object = f"<span class='mk-done'>{done}</span>"


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
        if delta.health or delta.health_events or any(sid in delta.values for sid in self.collectors):
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
            f"<td>{_clock(r.since_ms)}</td></tr>"
            for r in rows
        )
        self.summary.object = (
            f"<div id='mk-health' data-status='{worst}'><b>Overall: <span style='color:"
            f"{STATUS_COLORS.get(worst, '#98a2b3')}'>{worst}</span></b>"
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
        self.timeline.visible = bool(by_component)
