"""Processes by group (name, user, command), as process-exporter reports them, and process counts by status.

A series stands for a group of processes (``procgroups.py``), never for one pid, so pid churn
(hundreds of short-lived processes) adds no series. A group's CPU seconds only go up: a process
that exits keeps the share it had used by the previous collect, and a process born since then
adds all of its own. A group whose processes have all exited is still reported (0 processes,
its CPU seconds kept) so its counters never restart, until room is needed for a new group.
At most ``max_groups`` groups are kept; past that, processes of new groups count in ``(other)``.

Per-process network bandwidth is not available from the Linux kernel through psutil, so it is
not collected here; see ``net_*`` per interface and ``net_connections`` instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, TypeVar

from monitorkit.catalog.registry import MetricInfo, register
from monitorkit.collectors.procgroups import OTHER, GroupKey, group_of
from monitorkit.collectors.records import AccessDenied, NoSuchProcess, ProcessCpuTimes, ZombieProcess
from monitorkit.collectors.sources import HostSource, ProcessLike, PsutilSource
from monitorkit.samples import Sample

GROUP_LABELS = ("name", "user", "command")
PROCESS_GROUP_PROCS = register(MetricInfo(
    "process_group_procs", "gauge", "processes",
    "Processes in the group (same name, user and command-line group); 0 once all have exited.", GROUP_LABELS))
PROCESS_GROUP_CPU = register(MetricInfo(
    "process_group_cpu_seconds_total", "counter", "seconds",
    "CPU seconds used by the group's processes, by mode (user, system); exited processes keep their share.",
    (*GROUP_LABELS, "mode")))
PROCESS_GROUP_CPU_PERCENT = register(MetricInfo(
    "process_group_cpu_percent", "gauge", "percent",
    "CPU percent of one CPU the group used since the previous collect (can exceed 100; 0 on the first).",
    GROUP_LABELS))
PROCESS_GROUP_MEMORY = register(MetricInfo(
    "process_group_memory_bytes", "gauge", "bytes",
    "Memory of the group's processes by kind (resident, virtual), summed (shared pages count in each).",
    (*GROUP_LABELS, "kind")))
PROCESS_GROUP_FDS = register(MetricInfo(
    "process_group_open_fds", "gauge", "descriptors",
    "Open file descriptors of the group's processes, sockets and pipes included (POSIX only).", GROUP_LABELS))
PROCESS_GROUP_THREADS = register(MetricInfo(
    "process_group_threads", "gauge", "threads", "Threads of the group's processes.", GROUP_LABELS))
PROCESS_GROUP_PID = register(MetricInfo(
    "process_group_pid", "gauge", "pid",
    "Pid of the group's busiest process at the last collect (most CPU, then most resident memory).",
    GROUP_LABELS))
PROCESSES = register(MetricInfo(
    "processes", "gauge", "processes",
    "Processes by status (running, sleeping, idle, zombie...; unknown if refused).", ("status",)))
# Not `processes_total`: the `_total` suffix is reserved for counters, and SQL views rate them.
PROCESSES_COUNT = register(MetricInfo("processes_count", "gauge", "processes", "Processes on the machine."))

DEFAULT_MAX_GROUPS = 200
T = TypeVar("T")


class _Tracked(NamedTuple):
    """What is kept of one process (by pid and start time) until the next collect."""

    group: GroupKey
    name: str
    cpu: ProcessCpuTimes | None


@dataclass
class _Group:
    """A group's CPU seconds so far and the collect in which it last had a process."""

    user: float = 0.0
    system: float = 0.0
    last_seen: int = 0


@dataclass
class _Live:
    """The sums of one group's processes in this collect (None: no process reported that field)."""

    procs: int = 0
    cpu_seconds: float = 0.0
    values: dict[str, float] = field(default_factory=dict)
    busiest: tuple[float, int, int] = (-1.0, -1, 0)  # (cpu seconds, resident bytes, -pid): max wins

    def add(self, key: str, value: float | None) -> None:
        if value is not None:
            self.values[key] = self.values.get(key, 0.0) + value


def _field(read: Callable[[], T]) -> T | None:
    """Return ``read()``, or None when the OS refuses that one field (the process itself stays)."""
    try:
        return read()
    except (AccessDenied, ZombieProcess):
        return None


def _status(proc: ProcessLike) -> str:
    """Return the process status; 'unknown' when the OS refuses to say."""
    try:
        return proc.status()
    except ZombieProcess:
        return "zombie"
    except AccessDenied:
        return "unknown"


def _fds(proc: ProcessLike) -> int | None:
    num_fds = getattr(proc, "num_fds", None)  # Windows has num_handles instead
    return _field(num_fds) if num_fds is not None else None


class ProcessesCollector:
    """Collect every process group's count, CPU, memory, threads and descriptors, and processes by status."""

    def __init__(
        self, source: HostSource | None = None, interval: float = 10.0, max_groups: int = DEFAULT_MAX_GROUPS
    ) -> None:
        self.name = "processes"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()
        self.max_groups = max_groups
        self._procs: dict[tuple[int, float | None], _Tracked] = {}
        self._groups: dict[GroupKey, _Group] = {}
        self._scans = 0
        self._last: datetime | None = None

    def _admit(self, key: GroupKey) -> GroupKey:
        """Return ``key`` if the group is kept (making room from a group idle since before the last collect)."""
        if key in self._groups or key == OTHER:
            return key
        if len(self._groups) - (OTHER in self._groups) >= self.max_groups:
            idle = [(g.last_seen, k) for k, g in self._groups.items() if g.last_seen < self._scans - 1 and k != OTHER]
            if not idle:
                return OTHER
            del self._groups[min(idle)[1]]
        self._groups[key] = _Group(last_seen=self._scans)
        return key

    def _used(self, known: _Tracked | None, times: ProcessCpuTimes | None) -> tuple[float, float, bool]:
        """Return the (user, system) CPU seconds to add to the group and whether they fall in this interval."""
        if times is None:
            return 0.0, 0.0, False
        if known is not None and known.cpu is not None:
            return max(0.0, times.user - known.cpu.user), max(0.0, times.system - known.cpu.system), True
        if known is None:  # born since the previous collect, or there at the first: all of its CPU is new
            return times.user, times.system, self._scans > 1
        return 0.0, 0.0, False  # readable for the first time: this is its baseline

    def collect(self, now: datetime) -> list[Sample]:
        """Return the process samples observed at ``now``."""
        self._scans += 1
        statuses: Counter[str] = Counter()
        live: dict[GroupKey, _Live] = {}
        procs: dict[tuple[int, float | None], _Tracked] = {}
        for proc in self.source.process_iter():
            try:
                with proc.oneshot():
                    status = _status(proc)
                    ident = (proc.pid, _field(proc.create_time))
                    name = _field(proc.name) or ""
                    known = self._procs.get(ident)
                    if known is not None and known.name == name:
                        key = known.group
                    else:  # a new process, or one that exec'd another program
                        key = group_of(name, _field(proc.username) or "", _field(proc.cmdline) or [])
                    times = _field(proc.cpu_times)
                    memory = _field(proc.memory_info)
                    threads = _field(proc.num_threads)
                    fds = _fds(proc)
            except NoSuchProcess:
                continue  # exited during the scan
            key = self._admit(key)
            procs[ident] = _Tracked(key, name, times)
            statuses[status] += 1
            user, system, recent = self._used(known, times)
            group = self._groups.setdefault(key, _Group())
            group.user += user
            group.system += system
            group.last_seen = self._scans
            now_live = live.setdefault(key, _Live())
            now_live.procs += 1
            if recent:
                now_live.cpu_seconds += user + system
            now_live.add("resident", memory.rss if memory is not None else None)
            now_live.add("virtual", memory.vms if memory is not None else None)
            now_live.add("threads", threads)
            now_live.add("fds", fds)
            rss = memory.rss if memory is not None else 0
            now_live.busiest = max(now_live.busiest, (user + system if recent else 0.0, rss, -proc.pid))
        self._procs = procs
        elapsed = (now - self._last).total_seconds() if self._last is not None else 0.0
        self._last = now
        out = [Sample(now, PROCESSES.name, {"status": status}, float(n)) for status, n in sorted(statuses.items())]
        out.append(Sample(now, PROCESSES_COUNT.name, {}, float(sum(statuses.values()))))
        for key in sorted(self._groups):
            out += self._group_samples(now, key, live.get(key, _Live()), elapsed)
        return out

    def _group_samples(self, now: datetime, key: GroupKey, lv: _Live, elapsed: float) -> list[Sample]:
        group = self._groups[key]
        labels = key.labels()
        idle = 0.0 if not lv.procs else None  # a group without processes: its gauges are 0
        percent = round(lv.cpu_seconds / elapsed * 100, 1) if elapsed > 0 else 0.0
        out = [
            Sample(now, PROCESS_GROUP_PROCS.name, labels, float(lv.procs)),
            Sample(now, PROCESS_GROUP_CPU.name, {**labels, "mode": "user"}, group.user),
            Sample(now, PROCESS_GROUP_CPU.name, {**labels, "mode": "system"}, group.system),
            Sample(now, PROCESS_GROUP_CPU_PERCENT.name, labels, percent),
        ]
        for kind in ("resident", "virtual"):
            value = lv.values.get(kind, idle)
            if value is not None:
                out.append(Sample(now, PROCESS_GROUP_MEMORY.name, {**labels, "kind": kind}, float(value)))
        for info, what in ((PROCESS_GROUP_FDS, "fds"), (PROCESS_GROUP_THREADS, "threads")):
            value = lv.values.get(what, idle)
            if value is not None:
                out.append(Sample(now, info.name, labels, float(value)))
        if lv.procs:
            out.append(Sample(now, PROCESS_GROUP_PID.name, labels, float(-lv.busiest[2])))
        return out
