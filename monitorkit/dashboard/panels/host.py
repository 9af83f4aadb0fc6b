"""The host panels made of time charts: node-exporter-full's quick and basic rows (cpu, memory, disk, network) and the detail
rows (swap, disk_io, tcp, system, cores, nics).

Every chart names its source metrics and opens its query in the console ("SQL"). Metric names
are the collectors' (``python -m monitorkit.catalog``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from monitorkit.dashboard.charts import TimeChart, Trace
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import PanelContext, PanelView, chart_box, sql_menu
from monitorkit.dashboard.panels.queries import chart_sql
from monitorkit.dashboard.records import SeriesInfo

NO_LO = {"nic": "^lo$"}
TCP = {"kind": "^(udp6?|unix)$"}  # net_connections of TCP (v4 and v6) only


class ChartSpec(NamedTuple):
    """A chart of a panel: title, traces, unit and y-axis maximum."""

    title: str
    traces: tuple[Trace, ...]
    unit: str = ""
    y_max: float | None = None
    aligned: bool = True  # every series comes from one collector tick (host metrics), not from apps

    def build(self, ctx: PanelContext | None = None, title: str | None = None) -> TimeChart:
        """Return a new TimeChart drawing this spec (on the view's shared axes)."""
        return TimeChart(title or self.title, self.traces, unit=self.unit, y_max=self.y_max, aligned=self.aligned,
                         axes=ctx.axes if ctx else None, cpus=ctx.cpus if ctx else None)

    def sql(self, host: str | None, rng: TimeRange | None) -> str:
        """Return the readable query of this chart on ``host`` over ``rng``."""
        return chart_sql(self.title, self.traces, host, rng)


def chart_spec(title: str, *traces: Trace, unit: str = "", y_max: float | None = None, aligned: bool = True) -> ChartSpec:
    """Return the ChartSpec of ``title`` drawing ``traces``."""
    return ChartSpec(title, traces, unit, y_max, aligned)


def _io(metric_in: str, metric_out: str, what: str, unit: str, label: str = "disk") -> ChartSpec:
    return chart_spec(what, Trace(metric_in, f"{{{label}}} read"), Trace(metric_out, f"{{{label}}} write"), unit=unit)


CHARTS: dict[str, tuple[ChartSpec, ...]] = {
    # node-exporter-full's quick and basic rows
    "cpu": (
        chart_spec("CPU busy", Trace("cpu_percent", "all CPUs", where={"cpu": None}), unit="percent", y_max=100),
        chart_spec("CPU by mode", Trace("cpu_seconds_total", "{mode}", exclude={"mode": "^idle$"}, scale=100.0, per="cpus"),
                   unit="percent", y_max=100),
        chart_spec("Load average", Trace("load1", "1 min"), Trace("load5", "5 min"), Trace("load15", "15 min"),
                   Trace("cpu_count", "CPUs")),
    ),
    "memory": (
        chart_spec("Memory and swap used", Trace("memory_percent", "memory"), Trace("swap_percent", "swap"),
                   unit="percent", y_max=100),
        chart_spec("Memory", Trace("memory_used_bytes", "used"), Trace("memory_available_bytes", "available"),
                   Trace("memory_free_bytes", "free"), Trace("memory_total_bytes", "total"), unit="bytes"),
    ),
    "disk": (
        chart_spec("Disk space used", Trace("disk_used_percent", "{mount}"), unit="percent", y_max=100),
        _io("disk_read_bytes_total", "disk_written_bytes_total", "Disk throughput", "bytes/s"),
    ),
    "network": (
        chart_spec("Network traffic", Trace("net_bytes_recv_total", "{nic} in", exclude=NO_LO),
                   Trace("net_bytes_sent_total", "{nic} out", exclude=NO_LO), unit="bytes/s"),
        # Two collectors at their own intervals (sockets every 30 s, the kernel's counters every second):
        # one shared table would cut the socket lines into dots between its rows.
        chart_spec("TCP connections", Trace("net_connections", "{state}", exclude=TCP, group=("state",)),
                   Trace("tcp_current_established", "established (kernel)"), aligned=False),
    ),
    # the detail rows
    "swap": (
        chart_spec("Swap", Trace("swap_used_bytes", "used"), Trace("swap_total_bytes", "total"), unit="bytes"),
        chart_spec("Swap activity", Trace("swap_in_bytes_total", "in"), Trace("swap_out_bytes_total", "out"),
                   unit="bytes/s"),
    ),
    "disk_io": (
        _io("disk_reads_total", "disk_writes_total", "Disk IOPS", "ops/s"),
        chart_spec("Disk utilisation", Trace("disk_busy_seconds_total", "{disk}", scale=100.0), unit="percent", y_max=100),
        chart_spec("Disk latency", Trace("disk_read_seconds_total", "{disk} read", over="disk_reads_total"),
                   Trace("disk_write_seconds_total", "{disk} write", over="disk_writes_total"), unit="seconds"),
    ),
    "tcp": (
        chart_spec("TCP retransmits and errors", Trace("tcp_retransmitted_segments_total", "retransmitted"),
                   Trace("tcp_in_errors_total", "in errors"), Trace("tcp_established_resets_total", "resets"),
                   Trace("tcp_timeouts_total", "timeouts"), Trace("tcp_listen_drops_total", "listen drops"),
                   unit="per second"),
        chart_spec("TCP connections opened", Trace("tcp_active_opens_total", "by this host"),
                   Trace("tcp_passive_opens_total", "accepted"), Trace("tcp_attempt_fails_total", "failed"),
                   unit="per second"),
    ),
    "system": (
        chart_spec("Processes", Trace("processes", "{status}"), Trace("processes_count", "all")),
        chart_spec("Open file descriptors", Trace("process_group_open_fds", "all processes", group=())),
    ),
    "cores": (chart_spec("CPU busy per core", Trace("cpu_percent", "cpu {cpu}", where={"cpu": "*"}), unit="percent",
                         y_max=100),),
    "nics": (
        chart_spec("Traffic", Trace("net_bytes_recv_total", "in"), Trace("net_bytes_sent_total", "out"), unit="bytes/s"),
        chart_spec("Packets, errors and drops", Trace("net_packets_recv_total", "packets in"),
                   Trace("net_packets_sent_total", "packets out"), Trace("net_errors_in_total", "errors in"),
                   Trace("net_errors_out_total", "errors out"), Trace("net_drops_in_total", "drops in"),
                   Trace("net_drops_out_total", "drops out"), unit="packets/s"),
    ),
}
SPLIT_BY = {"nics": "nic"}  # kinds that draw their charts once per value of this label


class ChartsPanel(PanelView):
    """A panel made of time charts only (by default the charts ``CHARTS`` lists for its kind)."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext, charts: Iterable[TimeChart] | None = None) -> None:
        specs = CHARTS[spec.kind] if charts is None else ()
        built = [c.build(ctx) for c in specs] if charts is None else list(charts)
        super().__init__(spec, ctx, built, queries=[s.sql for s in specs])


class SplitChartsPanel(PanelView):
    """Charts drawn once per value of a label: one traffic chart and one errors chart per network interface."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.label = SPLIT_BY[spec.kind]
        self.specs = CHARTS[spec.kind]
        self.values: list[str] = []
        super().__init__(spec, ctx)

    def _split(self, value: str) -> list[ChartSpec]:
        where = {self.label: value}
        return [s._replace(traces=tuple(t._replace(where={**t.where, **where}) for t in s.traces)) for s in self.specs]

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        series = list(series)
        names = {t.metric for s in self.specs for t in s.traces}
        found = sorted({i.labels[self.label] for i in series if i.name in names and self.label in i.labels
                        and (host is None or i.host == host)} - set(self.values))
        if found:
            for value in found:
                self.values.append(value)
                for s in self._split(value):
                    chart = s.build(self.ctx, f"{s.title}: {value}")
                    chart.on_series(self.ctx.feed.series.values(), host)
                    self.charts.append(chart)
                    self.boxes.append(chart_box(chart))
                    self.queries.append(s.sql)
            self.grid.objects = list(self.boxes)
            self.menu = sql_menu(self, self.queries)
            self.body.objects = [self.menu, self.grid]
            self.set_height(self.spec.height)
        super().on_series(series, host)

    def clear(self) -> None:
        self.values, self.charts, self.boxes, self.queries = [], [], [], []
        self.grid.objects = []
