"""The busiest processes by CPU and by memory, and process counts by status.

Per-process network bandwidth is not available from the Linux kernel through psutil, so it is
not collected here; see ``net_*`` per interface and ``net_connections`` instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, TypeVar

from monitorkit.catalog.registry import MetricInfo, register
from monitorkit.collectors.records import AccessDenied, NoSuchProcess, ZombieProcess
from monitorkit.collectors.sources import HostSource, ProcessLike, PsutilSource
from monitorkit.samples import Sample

PROC_LABELS = ("pid", "name", "user")
PROCESS_CPU = register(MetricInfo(
    "process_cpu_percent", "gauge", "percent",
    "CPU percent of one CPU since the previous collect (can exceed 100; 0 on first sight).", PROC_LABELS))
PROCESS_RSS = register(MetricInfo("process_rss_bytes", "gauge", "bytes", "Resident set size.", PROC_LABELS))
PROCESS_THREADS = register(MetricInfo("process_threads", "gauge", "threads", "Threads in the process.", PROC_LABELS))
PROCESS_FDS = register(MetricInfo(
    "process_open_fds", "gauge", "descriptors",
    "Open file descriptors, sockets and pipes included (what 'too many open files' counts; POSIX only).",
    PROC_LABELS))
PROCESSES = register(MetricInfo(
    "processes", "gauge", "processes",
    "Processes by status (running, sleeping, idle, zombie...; unknown if refused).", ("status",)))
# Not `processes_total`: the `_total` suffix is reserved for counters, and SQL views rate them.
PROCESSES_COUNT = register(MetricInfo("processes_count", "gauge", "processes", "Processes on the machine."))

T = TypeVar("T")


class _Seen(NamedTuple):
    proc: ProcessLike
    cpu: float | None
    rss: int | None


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


class ProcessesCollector:
    """Collect the top ``top_n`` processes by CPU and by RSS, reusing Process objects so CPU percent has a baseline."""

    def __init__(self, source: HostSource | None = None, interval: float = 10.0, top_n: int = 10) -> None:
        self.name = "processes"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()
        self.top_n = top_n
        self._procs: dict[int, ProcessLike] = {}

    def _known(self, proc: ProcessLike) -> ProcessLike:
        """Return the cached object for ``proc``'s pid unless the pid was reused by a new process."""
        known = self._procs.get(proc.pid)
        if known is None or known is proc:
            return proc
        if _field(known.create_time) == _field(proc.create_time):
            return known
        return proc

    def _scan(self) -> tuple[list[_Seen], Counter[str]]:
        seen: list[_Seen] = []
        statuses: Counter[str] = Counter()
        procs: dict[int, ProcessLike] = {}
        for fresh in self.source.process_iter():
            proc = self._known(fresh)
            try:
                with proc.oneshot():
                    status = _status(proc)
                    cpu = _field(proc.cpu_percent)
                    memory = _field(proc.memory_info)
                    rss = memory.rss if memory is not None else None
            except NoSuchProcess:
                continue  # exited during the scan
            procs[proc.pid] = proc
            statuses[status] += 1
            seen.append(_Seen(proc, cpu, rss))
        self._procs = procs
        return seen, statuses

    def _top(self, seen: list[_Seen]) -> list[_Seen]:
        # A process using no CPU (or no memory) is nobody's "top"; ties go to the lower pid.
        by_cpu = sorted((s for s in seen if s.cpu), key=lambda s: (-(s.cpu or 0.0), s.proc.pid))
        by_rss = sorted((s for s in seen if s.rss), key=lambda s: (-(s.rss or 0), s.proc.pid))
        top = {s.proc.pid: s for s in by_cpu[: self.top_n] + by_rss[: self.top_n]}
        return sorted(top.values(), key=lambda s: s.proc.pid)

    def collect(self, now: datetime) -> list[Sample]:
        """Return the process samples observed at ``now``."""
        seen, statuses = self._scan()
        out = [Sample(now, PROCESSES.name, {"status": status}, float(n)) for status, n in sorted(statuses.items())]
        out.append(Sample(now, PROCESSES_COUNT.name, {}, float(len(seen))))
        for s in self._top(seen):
            proc = s.proc
            try:
                with proc.oneshot():
                    name, user = _field(proc.name) or "", _field(proc.username) or ""
                    labels = {"pid": str(proc.pid), "name": name, "user": user}
                    threads = _field(proc.num_threads)
                    num_fds = getattr(proc, "num_fds", None)  # Windows has num_handles instead
                    fds = _field(num_fds) if num_fds is not None else None
            except NoSuchProcess:
                continue  # exited since the scan
            fields = ((PROCESS_CPU, s.cpu), (PROCESS_RSS, s.rss), (PROCESS_THREADS, threads), (PROCESS_FDS, fds))
            out += [Sample(now, info.name, dict(labels), float(v)) for info, v in fields if v is not None]
        return out
