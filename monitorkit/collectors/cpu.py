"""CPU busy percent, cumulative CPU seconds by mode, load averages and CPU count."""

from __future__ import annotations

from datetime import datetime

from monitorkit.catalog.registry import MetricInfo, register
from monitorkit.collectors.sources import HostSource, PsutilSource
from monitorkit.samples import Sample

CPU_PERCENT = register(MetricInfo(
    "cpu_percent", "gauge", "percent",
    "CPU busy percent since the previous collect; the all-CPU total has no `cpu` label.", ("cpu",)))
CPU_SECONDS = register(MetricInfo(
    "cpu_seconds_total", "counter", "seconds",
    "CPU seconds spent in each mode, summed over all CPUs (modes vary by OS).", ("mode",)))
LOAD1 = register(MetricInfo("load1", "gauge", "processes", "1-minute load average."))
LOAD5 = register(MetricInfo("load5", "gauge", "processes", "5-minute load average."))
LOAD15 = register(MetricInfo("load15", "gauge", "processes", "15-minute load average."))
CPU_COUNT = register(MetricInfo("cpu_count", "gauge", "cpus", "Number of logical CPUs."))


class CpuCollector:
    """Collect CPU usage; psutil keeps the previous reading per thread, so the first percent is 0."""

    def __init__(self, source: HostSource | None = None, interval: float = 1.0) -> None:
        self.name = "cpu"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()

    def collect(self, now: datetime) -> list[Sample]:
        """Return the CPU samples observed at ``now``."""
        src = self.source
        out = [Sample(now, CPU_PERCENT.name, {}, float(src.cpu_percent()))]
        out += [
            Sample(now, CPU_PERCENT.name, {"cpu": str(i)}, float(pct))
            for i, pct in enumerate(src.cpu_percent(percpu=True))
        ]
        out += [
            Sample(now, CPU_SECONDS.name, {"mode": mode}, float(seconds))
            for mode, seconds in src.cpu_times()._asdict().items()
        ]
        load1, load5, load15 = src.getloadavg()
        out += [
            Sample(now, LOAD1.name, {}, float(load1)),
            Sample(now, LOAD5.name, {}, float(load5)),
            Sample(now, LOAD15.name, {}, float(load15)),
        ]
        count = src.cpu_count()
        if count is not None:
            out.append(Sample(now, CPU_COUNT.name, {}, float(count)))
        return out
