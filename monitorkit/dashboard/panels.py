"""The dashboard's panels: host overview, per-core, per-NIC, top processes and application metrics.

Each panel kind (see ``layouts.PANEL_KINDS``) is built by ``build_panel(spec, ctx)``; alerts,
health and the SQL console live in ``alerting.py`` and ``sqlpanel.py``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import panel as pn

from monitorkit.dashboard.actions import AlertActions
from monitorkit.dashboard.charts import Key, Line, TimeChart, Trace
from monitorkit.dashboard.console import SqlConsole
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PANEL_KINDS, PanelSpec
from monitorkit.dashboard.records import Delta, Points, SeriesInfo
from monitorkit.dashboard.style import html_pane

HEADER = 40  # pixels the card header takes from a panel's height
NO_LO = {"nic": "^lo$"}


@dataclass
class PanelContext:
    """What panels share within one view: the feed, actions, the console and a way to tell the user."""

    feed: Feed
    actions: AlertActions | None = None
    console: SqlConsole | None = None
    tick_ms: float = 1000.0
    user: Callable[[], str] = lambda: "dashboard"
    notify: Callable[[str], None] = lambda message: None
    host: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class PanelView:
    """One panel in one view: its body, its charts, and how it takes history and deltas."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext, charts: Iterable[TimeChart] = (), body: Any = None) -> None:
        self.spec = spec
        self.ctx = ctx
        self.kind = spec.kind
        self.title = PANEL_KINDS[spec.kind]
        self.charts = list(charts)
        self.body = body if body is not None else pn.Column(*(c.view for c in self.charts), sizing_mode="stretch_width")
        self.set_height(spec.height)

    def configure(self, spec: PanelSpec) -> None:
        """Take a new spec's options (sizes are the card's)."""
        self.spec = spec

    def set_height(self, height: int) -> None:
        """Give the panel ``height`` pixels (the charts share what the header leaves)."""
        if self.charts:
            each = max(140, (height - HEADER) // len(self.charts))
            for chart in self.charts:
                chart.set_height(each)

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        """Add the lines of any new series this panel draws."""
        for chart in self.charts:
            for key, trace, info in chart.keys_for(series, host):
                chart.add(key, trace, info)

    def history_keys(self) -> set[Key]:
        """Return the (series, kind) keys whose history the panel shows."""
        return {key for chart in self.charts for key in chart.lines}

    def reset(self, history: Mapping[Key, Points], rng: TimeRange) -> None:
        """Show range ``rng`` from ``history``."""
        for chart in self.charts:
            chart.reset(history, rng, self.ctx.tick_ms)

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        """Take one delta; return how many points were streamed."""
        return sum(chart.apply(delta, rng, self.ctx.tick_ms) for chart in self.charts)

    def clear(self) -> None:
        """Forget every line (the host filter changed)."""
        for chart in self.charts:
            chart.clear()

    @property
    def points(self) -> int:
        """Return how many points the panel's charts hold."""
        return sum(chart.points for chart in self.charts)


class ChartSpec(NamedTuple):
    """A chart of a panel: title, traces, unit and y-axis maximum."""

    title: str
    traces: tuple[Trace, ...]
    unit: str = ""
    y_max: float | None = None
    aligned: bool = True  # every series comes from one collector tick (host metrics), not from apps

    def build(self) -> TimeChart:
        """Return a new TimeChart drawing this spec."""
        return TimeChart(self.title, self.traces, unit=self.unit, y_max=self.y_max, aligned=self.aligned)


def _spec(title: str, *traces: Trace, unit: str = "", y_max: float | None = None, aligned: bool = True) -> ChartSpec:
    return ChartSpec(title, traces, unit, y_max, aligned)


CHARTS: dict[str, tuple[ChartSpec, ...]] = {
    "cpu": (_spec("CPU busy", Trace("cpu_percent", "all CPUs", where={"cpu": None}), unit="percent", y_max=100),),
    "memory": (_spec("Memory and swap used", Trace("memory_percent", "memory"), Trace("swap_percent", "swap"),
                     unit="percent", y_max=100),),
    "disk": (
        _spec("Disk space used", Trace("disk_used_percent", "{mount}"), unit="percent", y_max=100),
        _spec("Disk I/O", Trace("disk_read_bytes_total", "{disk} read"), Trace("disk_written_bytes_total", "{disk} write"),
              unit="bytes/s"),
    ),
    "network": (_spec("Network traffic", Trace("net_bytes_recv_total", "{nic} in", exclude=NO_LO),
                      Trace("net_bytes_sent_total", "{nic} out", exclude=NO_LO), unit="bytes/s"),),
    "cores": (_spec("CPU busy per core", Trace("cpu_percent", "cpu {cpu}", where={"cpu": "*"}), unit="percent", y_max=100),),
    "nics": (
        _spec("Traffic per interface", Trace("net_bytes_recv_total", "{nic} in"), Trace("net_bytes_sent_total", "{nic} out"),
              unit="bytes/s"),
        _spec("Errors and drops per interface", Trace("net_errors_in_total", "{nic} errors in"),
              Trace("net_errors_out_total", "{nic} errors out"), Trace("net_drops_in_total", "{nic} drops in"),
              Trace("net_drops_out_total", "{nic} drops out"), unit="per second"),
    ),
}
APP_CHARTS = (
    _spec("Protocol requests per second", Trace("protocol_requests_total", "{protocol} {method} {status}"),
          unit="per second", aligned=False),
    _spec("Tool runs per second", Trace("tool_runs_total", "{tool} {outcome}"), unit="per second", aligned=False),
)
PROCESS_METRICS = ("process_cpu_percent", "process_rss_bytes", "process_threads", "process_open_fds")


def cached_metrics() -> set[str]:
    """Return every metric a chart draws: the feed keeps their recent points for new sessions."""
    names = {t.metric for specs in (*CHARTS.values(), APP_CHARTS) for c in specs for t in c.traces}
    return names | {f"{LatencyChart.METRIC}_bucket"}


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


NOT_SHOWN = ("protocol", "pid", "instance", "job")  # labels the latency legend leaves out


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


class ChartsPanel(PanelView):
    """A panel made of time charts only."""


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
            f"<tr class='mk-{html.escape(r.outcome)}'><td>{_clock(r.started_ms)}</td><td>{html.escape(r.tool)}</td>"
            f"<td>{r.duration_s:.2f} s</td><td>{html.escape(r.outcome)}</td><td>{html.escape(r.error_type or '')}</td></tr>"
            for r in runs
        )
        self.runs.object = (
            "<b>Recent tool runs</b><table class='mk-table'><tr><th>started</th><th>tool</th><th>duration</th>"
            f"<th>outcome</th><th>error</th></tr>{rows or '<tr><td colspan=5>none in the last hour</td></tr>'}</table>"
        )


class ProcessesPanel(PanelView):
    """The busiest processes at the last collection: CPU, memory, threads and open files."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.table = html_pane("", sizing_mode="stretch_width", styles={"overflow-y": "auto"})
        self.series: dict[int, SeriesInfo] = {}
        super().__init__(spec, ctx, (), pn.Column(self.table, sizing_mode="stretch_width"))
        self.render()

    def set_height(self, height: int) -> None:
        self.table.height = max(100, height - HEADER)

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        added = False
        for info in series:
            if info.name in PROCESS_METRICS and (host is None or info.host == host):
                self.series[info.series_id] = info
                added = True
        if added:
            self.render()

    def clear(self) -> None:
        self.series.clear()

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        if any(sid in delta.values for sid in self.series):
            self.render()
        return 0

    def render(self) -> None:
        """Rebuild the table from the latest values of the last collection."""
        latest = self.ctx.feed.latest
        values = {sid: latest[sid] for sid in list(self.series) if sid in latest}
        newest = max((t for sid, (t, _) in values.items() if self.series[sid].name == "process_cpu_percent"), default=None)
        rows: dict[tuple[str, str, str], dict[str, float]] = {}
        for sid, (t, v) in values.items():
            info = self.series[sid]
            if newest is None or t < newest:
                continue
            key = (info.labels.get("pid", ""), info.labels.get("name", ""), info.labels.get("user", ""))
            rows.setdefault(key, {})[info.name] = v
        ordered = sorted(rows.items(), key=lambda kv: -kv[1].get("process_cpu_percent", 0.0))
        body = "".join(
            f"<tr><td>{html.escape(pid)}</td><td>{html.escape(name)}</td><td>{html.escape(user)}</td>"
            f"<td>{m.get('process_cpu_percent', 0):.1f}</td><td>{m.get('process_rss_bytes', 0) / 2**20:.1f}</td>"
            f"<td>{m.get('process_threads', 0):.0f}</td><td>{m.get('process_open_fds', 0):.0f}</td></tr>"
            for (pid, name, user), m in ordered
        )
        when = f" at {_clock(newest)}" if newest else ""
        self.table.object = (
            f"<table class='mk-table' id='mk-processes'><caption>Top processes{when}</caption><tr><th>pid</th><th>name</th>"
            f"<th>user</th><th>CPU %</th><th>RSS MiB</th><th>threads</th><th>open files</th></tr>"
            f"{body or '<tr><td colspan=7>no process samples yet</td></tr>'}</table>"
        )


def _clock(ms: float | None) -> str:
    if ms is None:
        return ""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def build_panel(spec: PanelSpec, ctx: PanelContext) -> PanelView:
    """Return the PanelView of ``spec.kind``."""
    if spec.kind in CHARTS:
        return ChartsPanel(spec, ctx, [c.build() for c in CHARTS[spec.kind]])
    if spec.kind == "app":
        return AppPanel(spec, ctx)
    if spec.kind == "processes":
        return ProcessesPanel(spec, ctx)
    if spec.kind in ("alerts", "health"):
        from monitorkit.dashboard.alerting import AlertsPanel, HealthPanel

        return (AlertsPanel if spec.kind == "alerts" else HealthPanel)(spec, ctx)
    from monitorkit.dashboard.sqlpanel import SqlPanel

    return SqlPanel(spec, ctx)
