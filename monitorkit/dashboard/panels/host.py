"""The host panels made of time charts only: cpu, memory, disk, network, cores and nics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from monitorkit.dashboard.charts import TimeChart, Trace
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import PanelContext, PanelView

NO_LO = {"nic": "^lo$"}


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


def chart_spec(title: str, *traces: Trace, unit: str = "", y_max: float | None = None, aligned: bool = True) -> ChartSpec:
    """Return the ChartSpec of ``title`` drawing ``traces``."""
    return ChartSpec(title, traces, unit, y_max, aligned)


CHARTS: dict[str, tuple[ChartSpec, ...]] = {
    "cpu": (chart_spec("CPU busy", Trace("cpu_percent", "all CPUs", where={"cpu": None}), unit="percent", y_max=100),),
    "memory": (chart_spec("Memory and swap used", Trace("memory_percent", "memory"), Trace("swap_percent", "swap"),
                          unit="percent", y_max=100),),
    "disk": (
        chart_spec("Disk space used", Trace("disk_used_percent", "{mount}"), unit="percent", y_max=100),
        chart_spec("Disk I/O", Trace("disk_read_bytes_total", "{disk} read"),
                   Trace("disk_written_bytes_total", "{disk} write"), unit="bytes/s"),
    ),
    "network": (chart_spec("Network traffic", Trace("net_bytes_recv_total", "{nic} in", exclude=NO_LO),
                           Trace("net_bytes_sent_total", "{nic} out", exclude=NO_LO), unit="bytes/s"),),
    "cores": (chart_spec("CPU busy per core", Trace("cpu_percent", "cpu {cpu}", where={"cpu": "*"}), unit="percent",
                         y_max=100),),
    "nics": (
        chart_spec("Traffic per interface", Trace("net_bytes_recv_total", "{nic} in"),
                   Trace("net_bytes_sent_total", "{nic} out"), unit="bytes/s"),
        chart_spec("Errors and drops per interface", Trace("net_errors_in_total", "{nic} errors in"),
                   Trace("net_errors_out_total", "{nic} errors out"), Trace("net_drops_in_total", "{nic} drops in"),
                   Trace("net_drops_out_total", "{nic} drops out"), unit="per second"),
    ),
}


class ChartsPanel(PanelView):
    """A panel made of time charts only (by default the charts ``CHARTS`` lists for its kind)."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext, charts: Iterable[TimeChart] | None = None) -> None:
        super().__init__(spec, ctx, [c.build() for c in CHARTS[spec.kind]] if charts is None else charts)
