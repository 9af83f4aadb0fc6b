"""Where host collectors read from: the psutil-like HostSource protocol, the real one, and canned ones for tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, cast, overload

import psutil

if TYPE_CHECKING:
    from monitorkit.collectors.procstat import ProcTable

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
    """The field of ``psutil.Process.memory_info()`` monitorkit reads."""

    rss: int


class ProcessLike(Protocol):
    """The part of ``psutil.Process`` the process collector uses (``num_fds`` is optional: POSIX only)."""

    @property
    def pid(self) -> int: ...

    def oneshot(self) -> AbstractContextManager[object]: ...

    def create_time(self) -> float: ...

    def status(self) -> str: ...

    def name(self) -> str: ...

    def username(self) -> str: ...

    def cpu_percent(self, interval: float | None = None) -> float: ...

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
        from monitorkit.collectors import procnet  # imports this module's records

        if procnet.available():
            return procnet.connections(kind)
        return cast("Sequence[Connection]", psutil.net_connections(kind=kind))

    def process_iter(self) -> Iterable[ProcessLike]:
        """Return the running processes, reused between calls (from /proc/<pid>/stat on Linux)."""
        if self._proc_table is not None:
            return self._proc_table.process_iter()
        return cast("Iterable[ProcessLike]", psutil.process_iter())

    @cached_property
    def _proc_table(self) -> ProcTable | None:
        """The /proc process reader, kept between scans for CPU percents; None where /proc has no stat files."""
        from monitorkit.collectors import procstat  # imports this module's records

        return procstat.ProcTable() if procstat.available() else None


@dataclass
class CannedProcess:
    """A fixed process for tests; fields named in ``denied`` raise AccessDenied, ``gone`` raises NoSuchProcess."""

    pid: int
    proc_name: str = "proc"
    user: str = "root"
    proc_status: str = "sleeping"
    cpu: float = 0.0
    rss: int = 0
    threads: int = 1
    fds: int | None = 3
    started: float = 1_700_000_000.0
    denied: frozenset[str] = frozenset()
    gone: bool = False
    cpu_percent_calls: int = 0

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

    def cpu_percent(self, interval: float | None = None) -> float:
        """Return the fixed CPU percent (0.0 on the first call, like psutil)."""
        self._check("cpu_percent")
        self.cpu_percent_calls += 1
        return 0.0 if self.cpu_percent_calls == 1 else self.cpu

    def memory_info(self) -> MemoryInfo:
        """Return the fixed resident set size."""
        self._check("memory_info")
        return MemoryInfo(self.rss)

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
