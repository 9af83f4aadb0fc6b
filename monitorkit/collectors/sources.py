"""Where host collectors read from: the psutil-like HostSource protocol and the real machine (``PsutilSource``).

Test doubles that follow the same protocol are in ``canned.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import cached_property
from typing import Literal, Protocol, cast, overload

import psutil

from monitorkit.collectors import procnet, procstat
from monitorkit.collectors.records import (
    Connection,
    CpuTimes,
    DiskIO,
    DiskPartition,
    DiskUsage,
    MemoryInfo,
    NetIO,
    NicStats,
    ProcessCpuTimes,
    SwapMemory,
    VirtualMemory,
)


class ProcessLike(Protocol):
    """The part of ``psutil.Process`` the process collector uses (``num_fds`` is optional: POSIX only)."""

    @property
    def pid(self) -> int: ...

    def oneshot(self) -> AbstractContextManager[object]: ...

    def create_time(self) -> float: ...

    def status(self) -> str: ...

    def name(self) -> str: ...

    def username(self) -> str: ...

    def cmdline(self) -> list[str]: ...

    def cpu_times(self) -> ProcessCpuTimes: ...

    def memory_info(self) -> MemoryInfo: ...

    def num_threads(self) -> int: ...


class HostSource(Protocol):
    """The psutil functions the host collectors call; ``PsutilSource`` is the real one."""

    @overload
    def cpu_percent(self, interval: None = None, percpu: Literal[False] = False) -> float: ...

    @overload
    def cpu_percent(self, interval: None = None, *, percpu: Literal[True]) -> list[float]: ...

    def cpu_times(self) -> CpuTimes: ...

    def getloadavg(self) -> tuple[float, float, float]: ...

    def cpu_count(self) -> int | None: ...

    def virtual_memory(self) -> VirtualMemory: ...

    def swap_memory(self) -> SwapMemory: ...

    def disk_partitions(self, all: bool = False) -> Sequence[DiskPartition]: ...

    def disk_usage(self, path: str) -> DiskUsage: ...

    def disk_io_counters(self, perdisk: Literal[True]) -> Mapping[str, DiskIO] | None: ...

    def net_io_counters(self, pernic: Literal[True]) -> Mapping[str, NetIO]: ...

    def net_if_stats(self) -> Mapping[str, NicStats]: ...

    def net_connections(self, kind: str = "inet") -> Sequence[Connection]: ...

    def process_iter(self) -> Iterable[ProcessLike]: ...


class PsutilSource:
    """The real machine, read through psutil; its records carry the fields above and more."""

    @overload
    def cpu_percent(self, interval: None = None, percpu: Literal[False] = False) -> float: ...

    @overload
    def cpu_percent(self, interval: None = None, *, percpu: Literal[True]) -> list[float]: ...

    def cpu_percent(self, interval: None = None, percpu: bool = False) -> float | list[float]:
        """Return CPU busy percent since this thread's previous call (0.0 on the first)."""
        return cast("float | list[float]", psutil.cpu_percent(interval=interval, percpu=percpu))

    def cpu_times(self) -> CpuTimes:
        """Return cumulative CPU seconds by mode for the whole machine."""
        return cast("CpuTimes", psutil.cpu_times())

    def getloadavg(self) -> tuple[float, float, float]:
        """Return the 1, 5 and 15 minute load averages."""
        return cast("tuple[float, float, float]", psutil.getloadavg())

    def cpu_count(self) -> int | None:
        """Return the number of logical CPUs, or None if unknown."""
        return cast("int | None", psutil.cpu_count())

    def virtual_memory(self) -> VirtualMemory:
        """Return system memory figures in bytes."""
        return cast("VirtualMemory", psutil.virtual_memory())

    def swap_memory(self) -> SwapMemory:
        """Return swap figures in bytes."""
        return cast("SwapMemory", psutil.swap_memory())

    def disk_partitions(self, all: bool = False) -> Sequence[DiskPartition]:
        """Return mounted partitions (physical devices only unless ``all``)."""
        return cast("Sequence[DiskPartition]", psutil.disk_partitions(all=all))

    def disk_usage(self, path: str) -> DiskUsage:
        """Return space figures of the filesystem holding ``path``."""
        return cast("DiskUsage", psutil.disk_usage(path))

    def disk_io_counters(self, perdisk: Literal[True] = True) -> Mapping[str, DiskIO] | None:
        """Return cumulative I/O counters per disk, or None when the OS shows no disks."""
        return cast("Mapping[str, DiskIO] | None", psutil.disk_io_counters(perdisk=perdisk, nowrap=True))

    def net_io_counters(self, pernic: Literal[True] = True) -> Mapping[str, NetIO]:
        """Return cumulative traffic counters per NIC."""
        return cast("Mapping[str, NetIO]", psutil.net_io_counters(pernic=pernic, nowrap=True))

    def net_if_stats(self) -> Mapping[str, NicStats]:
        """Return up/speed/MTU per NIC."""
        return cast("Mapping[str, NicStats]", psutil.net_if_stats())

    def net_connections(self, kind: str = "inet") -> Sequence[Connection]:
        """Return every socket of ``kind`` on the machine (from /proc/net on Linux: no owner pids)."""
        if procnet.available():
            return procnet.connections(kind)
        return cast("Sequence[Connection]", psutil.net_connections(kind=kind))

    def process_iter(self) -> Iterable[ProcessLike]:
        """Return the running processes, reused between calls (from /proc/<pid>/stat on Linux)."""
        if self._proc_table is not None:
            return self._proc_table.process_iter()
        return cast("Iterable[ProcessLike]", psutil.process_iter())

    @cached_property
    def _proc_table(self) -> procstat.ProcTable | None:
        """The /proc process reader, kept between scans for CPU percents; None where /proc has no stat files."""
        return procstat.ProcTable() if procstat.available() else None
