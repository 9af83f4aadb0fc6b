"""Canned host sources for tests: a fixed machine and fixed processes that follow the HostSource protocol."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, overload

from monitorkit.collectors.records import (
    AccessDenied,
    Connection,
    CpuTimes,
    DiskIO,
    DiskPartition,
    DiskUsage,
    MemoryInfo,
    NetIO,
    NicStats,
    NoSuchProcess,
    ProcessCpuTimes,
    SwapMemory,
    VirtualMemory,
)
from monitorkit.collectors.sources import ProcessLike


@dataclass
class CannedProcess:
    """A fixed process for tests; fields named in ``denied`` raise AccessDenied, ``gone`` raises NoSuchProcess."""

    pid: int
    proc_name: str = "proc"
    user: str = "root"
    proc_status: str = "sleeping"
    user_seconds: float = 0.0
    system_seconds: float = 0.0
    rss: int = 0
    vms: int = 0
    threads: int = 1
    fds: int | None = 3
    started: float = 1_700_000_000.0
    argv: tuple[str, ...] = ()
    denied: frozenset[str] = frozenset()
    gone: bool = False

    def _check(self, what: str) -> None:
        if self.gone:
            raise NoSuchProcess(self.pid)
        if what in self.denied:
            raise AccessDenied(self.pid, self.proc_name)

    def oneshot(self) -> AbstractContextManager[object]:
        """Return a no-op context, like psutil's read cache."""
        return contextlib.nullcontext()

    def create_time(self) -> float:
        """Return the fixed start time."""
        self._check("create_time")
        return self.started

    def status(self) -> str:
        """Return the fixed status."""
        self._check("status")
        return self.proc_status

    def name(self) -> str:
        """Return the fixed name."""
        self._check("name")
        return self.proc_name

    def username(self) -> str:
        """Return the fixed user."""
        self._check("username")
        return self.user

    def cmdline(self) -> list[str]:
        """Return the fixed command line."""
        self._check("cmdline")
        return list(self.argv)

    def cpu_times(self) -> ProcessCpuTimes:
        """Return the fixed user and system CPU seconds."""
        self._check("cpu_times")
        return ProcessCpuTimes(self.user_seconds, self.system_seconds)

    def memory_info(self) -> MemoryInfo:
        """Return the fixed resident and virtual sizes."""
        self._check("memory_info")
        return MemoryInfo(self.rss, self.vms)

    def num_threads(self) -> int:
        """Return the fixed thread count."""
        self._check("num_threads")
        return self.threads

    def num_fds(self) -> int:
        """Return the fixed open descriptor count."""
        self._check("num_fds")
        if self.fds is None:
            raise AccessDenied(self.pid, self.proc_name)
        return self.fds


@dataclass
class CannedSource:
    """A fixed two-CPU machine for tests; override any record with a keyword."""

    percent: float = 25.0
    per_cpu_percent: list[float] = field(default_factory=lambda: [20.0, 30.0])
    times: CpuTimes = field(default_factory=lambda: CpuTimes(user=100.0, nice=1.0, system=50.0, idle=800.0, iowait=4.0))
    loadavg: tuple[float, float, float] = (0.5, 0.25, 0.125)
    cpus: int | None = 2
    memory: VirtualMemory = field(default_factory=lambda: VirtualMemory(8_000, 6_000, 25.0, 2_000, 5_000))
    swap: SwapMemory = field(default_factory=lambda: SwapMemory(1_000, 100, 900, 10.0, sin=4_096, sout=8_192))
    partitions: list[DiskPartition] = field(default_factory=lambda: [DiskPartition("/dev/sda1", "/", "ext4")])
    usage: dict[str, DiskUsage] = field(default_factory=lambda: {"/": DiskUsage(1_000, 400, 600, 40.0)})
    disks: dict[str, DiskIO] | None = field(default_factory=lambda: {"sda": DiskIO(10, 20, 4_096, 8_192, 30, 40, 50)})
    nics: dict[str, NetIO] = field(default_factory=lambda: {"eth0": NetIO(100, 200, 3, 4, 5, 6, 7, 8)})
    nic_stats: dict[str, NicStats] = field(default_factory=lambda: {"eth0": NicStats(True, 2, 1_000, 1_500)})
    connections: list[Connection] = field(default_factory=list)
    processes: list[CannedProcess] = field(default_factory=list)
    connection_kinds: list[str] = field(default_factory=list)

    @overload
    def cpu_percent(self, interval: None = None, percpu: Literal[False] = False) -> float: ...

    @overload
    def cpu_percent(self, interval: None = None, *, percpu: Literal[True]) -> list[float]: ...

    def cpu_percent(self, interval: None = None, percpu: bool = False) -> float | list[float]:
        """Return the canned total or per-CPU percent."""
        return list(self.per_cpu_percent) if percpu else self.percent

    def cpu_times(self) -> CpuTimes:
        """Return the canned CPU times."""
        return self.times

    def getloadavg(self) -> tuple[float, float, float]:
        """Return the canned load averages."""
        return self.loadavg

    def cpu_count(self) -> int | None:
        """Return the canned CPU count."""
        return self.cpus

    def virtual_memory(self) -> VirtualMemory:
        """Return the canned memory figures."""
        return self.memory

    def swap_memory(self) -> SwapMemory:
        """Return the canned swap figures."""
        return self.swap

    def disk_partitions(self, all: bool = False) -> Sequence[DiskPartition]:
        """Return the canned partitions."""
        return list(self.partitions)

    def disk_usage(self, path: str) -> DiskUsage:
        """Return the canned usage of ``path``; an unknown path raises like a vanished mount."""
        try:
            return self.usage[path]
        except KeyError:
            raise FileNotFoundError(path) from None

    def disk_io_counters(self, perdisk: Literal[True] = True) -> Mapping[str, DiskIO] | None:
        """Return the canned per-disk counters."""
        return self.disks

    def net_io_counters(self, pernic: Literal[True] = True) -> Mapping[str, NetIO]:
        """Return the canned per-NIC counters."""
        return self.nics

    def net_if_stats(self) -> Mapping[str, NicStats]:
        """Return the canned NIC states."""
        return self.nic_stats

    def net_connections(self, kind: str = "inet") -> Sequence[Connection]:
        """Return the canned sockets and remember the ``kind`` asked for."""
        self.connection_kinds.append(kind)
        return list(self.connections)

    def process_iter(self) -> Iterator[ProcessLike]:
        """Yield the canned processes."""
        return iter(self.processes)
