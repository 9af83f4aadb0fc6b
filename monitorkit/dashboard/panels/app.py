"""The application panel: protocol requests, latency quantiles from histograms, and recent tool runs."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import Any

import panel as pn

from monitorkit.dashboard.charts import Key, Line, TimeChart, Trace
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView, clock_text
from monitorkit.dashboard.panels.host import chart_spec
from monitorkit.dashboard.records import Delta, Points, SeriesInfo
from monitorkit.dashboard.style import html_pane

APP_CHARTS = (
    chart_spec("Protocol requests per second", Trace("protocol_requests_total", "{protocol} {method} {status}"),
               unit="per second", aligned=False),
    chart_spec("Tool runs per second", Trace("tool_runs_total", "{tool} {outcome}"), unit="per second", aligned=False),
)
NOT_SHOWN = ("protocol", "pid", "instance", "job")  # labels the latency legend leaves out


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """Return the ``q`` quantile from cumulative ``(upper bound, count)`` buckets, as Prometheus does."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return math.nan
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = bound, count
    return lower


class LatencyChart(TimeChart):
    """p50 and p95 request latency per protocol and method, from the duration histogram's bucket rates."""

    METRIC = "protocol_request_duration_seconds"
    QUANTILES = (0.5, 0.95)

    def __init__(self) -> None:
        super().__init__("Request latency (p50, p95)", (), unit="seconds", aligned=False)
        self.groups: dict[tuple[str, ...], dict[int, float]] = {}  # group -> {series_id: le}
        self._group_lines: dict[tuple[str, ...], list[Line]] = {}

    def keys_for(self, series: Iterable[SeriesInfo], host: str | None) -> list[tuple[Key, Trace, SeriesInfo]]:
        for info in series:
            if info.name != f"{self.METRIC}_bucket" or (host is not None and info.host != host) or "le" not in info.labels:
                continue
            rest = tuple(f"{k}={v}" for k, v in sorted(info.labels.items()) if k != "le")
            self.groups.setdefault(rest, {})[info.series_id] = float(info.labels["le"].replace("+Inf", "inf"))
            if rest not in self._group_lines:
                name = " ".join(v.split("=", 1)[1] for v in rest if v.split("=", 1)[0] not in NOT_SHOWN) or "all"
                self._group_lines[rest] = [
                    TimeChart.add(self, (-len(self.lines) - 1, f"q{q}"), Trace(self.METRIC, f"{name} p{int(q * 100)}"), info)
                    for q in self.QUANTILES
                ]
        return []

    def history_keys(self) -> set[Key]:
        """Return the bucket rate keys the quantiles are computed from."""
        return {(sid, "r") for group in self.groups.values() for sid in group}

    def _quantiles(self, rates: Mapping[Key, Points]) -> dict[int, Points]:
        out: dict[int, Points] = {}
        for rest, members in self.groups.items():
            by_time: dict[float, list[tuple[float, float]]] = {}
            for sid, le in members.items():
                pts = rates.get((sid, "r"))
                for t, v in zip(pts.times, pts.values, strict=True) if pts else ():
                    by_time.setdefault(t, []).append((le, v))
            times = sorted(t for t, b in by_time.items() if len(b) == len(members))
            for q, line in zip(self.QUANTILES, self._group_lines[rest], strict=True):
                vals = [histogram_quantile(q, by_time[t]) for t in times]
                keep = [i for i, v in enumerate(vals) if not math.isnan(v)]
                out[id(line)] = Points(tuple(times[i] for i in keep), tuple(vals[i] for i in keep))
        return out

    def reset(self, history: Mapping[Key, Points], rng: TimeRange, tick_ms: float) -> None:
        computed = self._quantiles(history)
        for lines in self._group_lines.values():
            for line in lines:
                times, values = line.history(computed.get(id(line)), rng, tick_ms)
                line.source.data = {"t": times, "v": values}
        self.set_x(rng)

    def apply(self, delta: Delta, rng: TimeRange, tick_ms: float) -> int:
        if not self.groups or not rng.live:
            return 0
        rates = {(sid, "r"): delta.rates[sid] for group in self.groups.values() for sid in group if sid in delta.rates}
        if not rates:
            return 0
        computed = self._quantiles(rates)
        new = {line.key: line.take(computed[id(line)], rng, tick_ms) for lines in self._group_lines.values()
               for line in lines if id(line) in computed}
        return self.stream({k: v for k, v in new.items() if v[0]}, rng)

    def clear(self) -> None:
        super().clear()
        self.groups.clear()
        self._group_lines.clear()


class AppPanel(PanelView):
    """Protocol and tool-execution metrics, with the recent runs of the ``executions`` table."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.latency = LatencyChart()
        charts = [APP_CHARTS[0].build(), self.latency, APP_CHARTS[1].build()]
        self.runs = html_pane("", sizing_mode="stretch_width", styles={"overflow-y": "auto"}, height=220)
        self.empty = html_pane(
            "<p class='mk-empty'>No application metrics yet: applications instrumented with monitorkit.instrument "
            "send <code>protocol_requests_total</code>, <code>protocol_request_duration_seconds</code> and "
            "<code>tool_runs_total</code>.</p>", sizing_mode="stretch_width",
        )
        body = pn.Column(self.empty, pn.GridBox(*(c.view for c in charts), self.runs, ncols=2, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")
        super().__init__(spec, ctx, charts, body)
        self.show_runs(ctx.feed.executions)

    def set_height(self, height: int) -> None:
        for chart in self.charts:
            chart.set_height(max(160, (height - HEADER - 40) // 2))

    def history_keys(self) -> set[Key]:
        return {k for k in super().history_keys() if k[0] >= 0} | self.latency.history_keys()

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        super().on_series(series, host)
        self.empty.visible = not any(chart.lines for chart in self.charts)

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        if delta.executions is not None:
            self.show_runs(delta.executions)
        return super().apply(delta, rng)

    def show_runs(self, runs: Iterable[Any]) -> None:
        """Render the recent tool runs table."""
        rows = "".join(
            f"<tr class='mk-{html.escape(r.outcome)}'><td>{clock_text(r.started_ms)}</td><td>{html.escape(r.tool)}</td>"
            f"<td>{r.duration_s:.2f} s</td><td>{html.escape(r.outcome)}</td><td>{html.escape(r.error_type or '')}</td></tr>"
            for r in runs
        )
        self.runs.object = (
            "<b>Recent tool runs</b><table class='mk-table'><tr><th>started</th><th>tool</th><th>duration</th>"
            f"<th>outcome</th><th>error</th></tr>{rows or '<tr><td colspan=5>none in the last hour</td></tr>'}</table>"
        )
