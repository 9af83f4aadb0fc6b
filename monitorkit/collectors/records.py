"""The typed records host collectors read, shaped like psutil's (``psutil/_ntuples.py``), and its process errors."""

from __future__ import annotations

from typing import NamedTuple

import psutil

# Collectors catch these by name; canned processes raise the very same classes.
AccessDenied = psutil.AccessDenied
NoSuchProcess = psutil.NoSuchProcess
ZombieProcess = psutil.ZombieProcess


class CpuTimes(NamedTuple):
    """Cumulative CPU seconds by mode, like ``psutil.cpu_times()`` on Linux (fields vary by OS)."""

    user: float
    nice: float
    system: float
    idle: float
    iowait: float = 0.0
    irq: float = 0.0
    softirq: float = 0.0
    steal: float = 0.0


class VirtualMemory(NamedTuple):
    """The fields of ``psutil.virtual_memory()`` monitorkit reads."""

    total: int
    available: int
    percent: float
    used: int
    free: int


class SwapMemory(NamedTuple):
    """The fields of ``psutil.swap_memory()`` (sin/sout are cumulative bytes)."""

    total: int
    used: int
    free: int
    percent: float
    sin: int
    sout: int


class DiskPartition(NamedTuple):
    """One mounted filesystem, like ``psutil.disk_partitions()`` records."""

    device: str
    mountpoint: str
    fstype: str
    opts: str = "rw"


class DiskUsage(NamedTuple):
    """Space on one filesystem, like ``psutil.disk_usage(path)``."""

    total: int
    used: int
    free: int
    percent: float


class DiskIO(NamedTuple):
    """Cumulative I/O of one disk, like ``psutil.disk_io_counters(perdisk=True)`` values (times in ms)."""

    read_count: int
    write_count: int
    read_bytes: int
    write_bytes: int
    read_time: int
    write_time: int
    busy_time: int = 0


class NetIO(NamedTuple):
    """Cumulative traffic of one NIC, like ``psutil.net_io_counters(pernic=True)`` values."""

    bytes_sent: int
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    errin: int
    errout: int
    dropin: int
    dropout: int


class NicStats(NamedTuple):
    """State of one NIC, like ``psutil.net_if_stats()`` values (speed in Mbit/s, 0 if unknown)."""

    isup: bool
    duplex: int
    speed: int
    mtu: int
    flags: str = ""


class Address(NamedTuple):
    """An (ip, port) socket address as psutil reports it."""

    ip: str
    port: int


class Connection(NamedTuple):
    """One socket, like ``psutil.net_connections()`` records (laddr/raddr are ``()`` when unset)."""

    fd: int
    family: int
    type: int
    laddr: Address | tuple[()] | str
    raddr: Address | tuple[()] | str
    status: str
    pid: int | None = None


class MemoryInfo(NamedTuple):
    """The fields of ``psutil.Process.memory_info()`` monitorkit reads (bytes)."""

    rss: int
    vms: int = 0


class ProcessCpuTimes(NamedTuple):
    """Cumulative CPU seconds of one process, like ``psutil.Process.cpu_times()`` (children excluded)."""

    user: float
    system: float
