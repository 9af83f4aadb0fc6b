"""The application panel: protocol requests, latency quantiles from histograms, and recent tool runs."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import panel as pn

from monitorkit.dashboard.charts import TimeChart, Trace
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.lines import Line, key_of
from monitorkit.dashboard.panels.base import CHART_MIN_ROW, HEADER, STABLE, PanelContext, PanelView, clock_text
from monitorkit.dashboard.panels.host import chart_spec
from monitorkit.dashboard.records import Delta, SeriesInfo
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


class Quantile:
    """Combine a histogram's bucket rates at one time into its ``q`` quantile (``les`` grows with the inputs)."""

    def __init__(self, q: float, les: list[float]) -> None:
        self.q, self.les = q, les

    def __call__(self, values: Sequence[float]) -> float:
        if any(math.isnan(v) for v in values):
            return math.nan  # a bucket of this scrape has not arrived
        return histogram_quantile(self.q, zip(self.les, values, strict=True))


class LatencyChart(TimeChart):
    """p50 and p95 request latency per protocol and method, from the duration histogram's bucket rates."""

    METRIC = "protocol_request_duration_seconds"
    QUANTILES = (0.5, 0.95)

    def __init__(self, ctx: PanelContext | None = None, metric: str | None = None, title: str = "Request latency (p50, p95)",
                 hidden: Iterable[str] = NOT_SHOWN) -> None:
        super().__init__(title, (), unit="seconds", aligned=False, axes=ctx.axes if ctx else None)
        self.metric = metric or self.METRIC
        self.hidden = tuple(hidden)
        self.source_text = f"{self.metric}_bucket"
        self.groups: dict[tuple[str, ...], list[float]] = {}  # group -> its buckets' upper bounds, in input order

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> list[Line]:
        added: list[Line] = []
        for info in series:
            if info.name != f"{self.metric}_bucket" or (host is not None and info.host != host) or "le" not in info.labels:
                continue
            rest = tuple(f"{k}={v}" for k, v in sorted(info.labels.items()) if k != "le")
            key = key_of(info)
            les = self.groups.get(rest)
            if les is None:
                les = self.groups[rest] = []
                name = " ".join(v.split("=", 1)[1] for v in rest if v.split("=", 1)[0] not in self.hidden) or "all"
                for q in self.QUANTILES:
                    added.append(self.add(("q", q, rest), [key], f"{name} p{int(q * 100)}", combine=Quantile(q, les)))
                les.append(float(info.labels["le"].replace("+Inf", "inf")))
                continue
            if any(key in line.inputs for line in self.lines.values()):
                continue
            les.append(float(info.labels["le"].replace("+Inf", "inf")))
            for q in self.QUANTILES:
                line = self.lines[("q", q, rest)]
                line.inputs.append(key)
                self.by_input.setdefault(key, []).append(line)
        return added

    def clear(self) -> None:
        super().clear()
        self.groups.clear()


class AppPanel(PanelView):
    """Protocol and tool-execution metrics, with the recent runs of the ``executions`` table."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.latency = LatencyChart(ctx)
        self.tool_latency = LatencyChart(ctx, "tool_run_duration_seconds", "Tool run duration (p50, p95)", ("pid", "job"))
        charts = [APP_CHARTS[0].build(ctx), self.latency, APP_CHARTS[1].build(ctx), self.tool_latency]
        self.runs = html_pane("", sizing_mode="stretch_width", styles={"overflow-y": "auto"}, height=220)
        self.empty = html_pane(
            "<p class='mk-empty'>No application metrics yet: applications instrumented with monitorkit.instrument "
            "send <code>protocol_requests_total</code>, <code>protocol_request_duration_seconds</code> and "
            "<code>tool_runs_total</code>; any other metric is charted by an Explore panel.</p>",
            sizing_mode="stretch_width",
        )
        super().__init__(spec, ctx, charts, queries=[APP_CHARTS[0].sql, _quantile_sql(self.latency), APP_CHARTS[1].sql,
                                                     _quantile_sql(self.tool_latency)])
        self.body = pn.Column(self.menu, self.empty, self.grid, self.runs, sizing_mode="stretch_width", margin=0, scroll="y-auto",
                              styles=STABLE)
        self.set_height(spec.height)
        self.show_runs(ctx.feed.executions)

    def set_height(self, height: int) -> None:
        if not hasattr(self, "runs"):
            return  # the base class asks before the body exists
        self.size_charts(max(CHART_MIN_ROW, height - HEADER - 256))
        self.body.height = max(60, height - HEADER)

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


def _quantile_sql(chart: LatencyChart) -> Any:
    def sql(host: str | None, rng: TimeRange | None) -> str:
        from monitorkit.dashboard.panels.queries import histogram_sql

        return histogram_sql(chart.title, chart.metric, host, rng, chart.QUANTILES)

    return sql
