"""Host collectors (CPU, memory, disks, network, sockets, processes, kernel counters) and the default set."""

from monitorkit.collectors.base import Collector
from monitorkit.collectors.canned import CannedProcess, CannedSource
from monitorkit.collectors.connections import ConnectionsCollector
from monitorkit.collectors.cpu import CpuCollector
from monitorkit.collectors.defaults import default_collectors
from monitorkit.collectors.disk import DiskIOCollector, DiskUsageCollector
from monitorkit.collectors.kernel import KernelCollector
from monitorkit.collectors.memory import MemoryCollector
from monitorkit.collectors.network import NetworkCollector
from monitorkit.collectors.processes import ProcessesCollector
from monitorkit.collectors.sources import HostSource, PsutilSource

__all__ = [
    "CannedProcess",
    "CannedSource",
    "Collector",
    "ConnectionsCollector",
    "CpuCollector",
    "DiskIOCollector",
    "DiskUsageCollector",
    "HostSource",
    "KernelCollector",
    "MemoryCollector",
    "NetworkCollector",
    "ProcessesCollector",
    "PsutilSource",
    "default_collectors",
]
