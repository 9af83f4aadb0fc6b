"""System memory and swap: sizes in bytes, percents, and cumulative swap traffic."""

from __future__ import annotations

from datetime import datetime

from monitorkit.catalog.registry import MetricInfo, register
from monitorkit.collectors.sources import HostSource, PsutilSource
from monitorkit.samples import Sample

MEMORY_TOTAL = register(MetricInfo("memory_total_bytes", "gauge", "bytes", "Physical memory installed."))
MEMORY_AVAILABLE = register(MetricInfo(
    "memory_available_bytes", "gauge", "bytes", "Memory that can be given to processes without swapping."))
MEMORY_USED = register(MetricInfo("memory_used_bytes", "gauge", "bytes", "Memory in use, as the OS defines it."))
MEMORY_FREE = register(MetricInfo("memory_free_bytes", "gauge", "bytes", "Memory not used at all (caches excluded)."))
MEMORY_PERCENT = register(MetricInfo(
    "memory_percent", "gauge", "percent", "Percent of memory not available: (total - available) / total."))
SWAP_TOTAL = register(MetricInfo("swap_total_bytes", "gauge", "bytes", "Swap space configured."))
SWAP_USED = register(MetricInfo("swap_used_bytes", "gauge", "bytes", "Swap space in use."))
SWAP_PERCENT = register(MetricInfo("swap_percent", "gauge", "percent", "Percent of swap space in use."))
SWAP_IN = register(MetricInfo(
    "swap_in_bytes_total", "counter", "bytes", "Bytes swapped in from disk since boot (0 on Windows)."))
SWAP_OUT = register(MetricInfo(
    "swap_out_bytes_total", "counter", "bytes", "Bytes swapped out to disk since boot (0 on Windows)."))


class MemoryCollector:
    """Collect memory and swap figures from one virtual_memory() and one swap_memory() call."""

    def __init__(self, source: HostSource | None = None, interval: float = 1.0) -> None:
        self.name = "memory"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()

    def collect(self, now: datetime) -> list[Sample]:
        """Return the memory samples observed at ``now``."""
        mem = self.source.virtual_memory()
        swap = self.source.swap_memory()
        pairs = [
            (MEMORY_TOTAL, mem.total),
            (MEMORY_AVAILABLE, mem.available),
            (MEMORY_USED, mem.used),
            (MEMORY_FREE, mem.free),
            (MEMORY_PERCENT, mem.percent),
            (SWAP_TOTAL, swap.total),
            (SWAP_USED, swap.used),
            (SWAP_PERCENT, swap.percent),
            (SWAP_IN, swap.sin),
            (SWAP_OUT, swap.sout),
        ]
        return [Sample(now, info.name, {}, float(value)) for info, value in pairs]
