"""Processes read from /proc/<pid>/stat (Linux): one small file per process instead of psutil's three.

``ProcTable.process_iter()`` yields ``StatProcess`` objects that follow the ProcessLike
protocol with psutil's semantics (status names, user and system CPU seconds, resident and
virtual bytes, psutil's name rule for truncated names, the real user, the command line).
Objects are kept between scans, keyed by pid and start time, so what is read once (the
command line) is not read again and a reused pid starts afresh.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from monitorkit.collectors.records import AccessDenied, MemoryInfo, NoSuchProcess, ProcessCpuTimes

# psutil's names for the one-letter states of /proc/<pid>/stat.
STATES = {
    "R": "running", "S": "sleeping", "D": "disk-sleep", "T": "stopped", "t": "tracing-stop",
    "Z": "zombie", "X": "dead", "x": "dead", "K": "wake-kill", "W": "waking", "I": "idle", "P": "parked",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_USERS: dict[int, str] = {}


def available(proc_root: Path = Path("/proc")) -> bool:
    """Tell whether per-process stat files can be read here (Linux)."""
    return (proc_root / "self" / "stat").exists()


def user_name(uid: int) -> str:
    """Return the login name of ``uid`` (its number when it has none), cached."""
    name = _USERS.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        _USERS[uid] = name
    return name


class StatProcess:
    """One process as its stat file shows it; ``oneshot()`` reads the file once for the calls inside."""

    __slots__ = ("_argv", "_comm", "_dir", "_fields", "_name", "pid", "start")

    def __init__(self, pid: int, proc_root: Path, fields: list[str], comm: str) -> None:
        self.pid = pid
        self._dir = f"{proc_root}/{pid}"
        self._fields = fields
        self._comm = comm
        self._name: tuple[str, str] | None = None  # (comm, name) once resolved
        self._argv: tuple[str, list[str]] | None = None  # (comm, command line) once read; an exec renames
        self.start = fields[19]  # start time in clock ticks since boot: tells a reused pid apart

    def oneshot(self) -> AbstractContextManager[object]:
        """Return a no-op context: the values are those of the table's latest scan (refresh() re-reads)."""
        return contextlib.nullcontext()

    def refresh(self) -> None:
        """Re-read the stat files now; NoSuchProcess if the process is gone."""
        self._fields, self._comm = read_stat(self._dir, self.pid)

    def create_time(self) -> float:
        """Return the start time in seconds since boot (only compared, never shown)."""
        return int(self.start) / CLOCK_TICKS

    def status(self) -> str:
        """Return psutil's status name."""
        return STATES.get(self._fields[0], "unknown")

    def cpu_times(self) -> ProcessCpuTimes:
        """Return the user and system CPU seconds used so far."""
        return ProcessCpuTimes(int(self._fields[11]) / CLOCK_TICKS, int(self._fields[12]) / CLOCK_TICKS)

    def memory_info(self) -> MemoryInfo:
        """Return the resident and virtual sizes in bytes."""
        return MemoryInfo(int(self._fields[-1]) * PAGE_SIZE, int(self._fields[20]))  # statm's resident pages, vsize

    def num_threads(self) -> int:
        """Return the number of threads."""
        return int(self._fields[17])

    def cmdline(self) -> list[str]:
        """Return the command line (empty for kernel threads and zombies), read once until the name changes."""
        if self._argv is not None and self._argv[0] == self._comm:
            return self._argv[1]
        try:
            raw = _read(f"{self._dir}/cmdline")
        except (FileNotFoundError, ProcessLookupError):
            raise NoSuchProcess(self.pid) from None
        except PermissionError:
            raise AccessDenied(self.pid) from None
        argv = [arg.decode(errors="replace") for arg in raw.split(b"\0")]
        while argv and not argv[-1]:
            argv.pop()
        self._argv = (self._comm, argv)
        return argv

    def name(self) -> str:
        """Return the name; a 15-character (truncated) one is completed from the command line, like psutil."""
        if self._name is not None and self._name[0] == self._comm:
            return self._name[1]
        name = self._comm
        if len(name) >= 15:
            with contextlib.suppress(OSError, NoSuchProcess, AccessDenied):
                argv = self.cmdline()
                extended = os.path.basename(argv[0]) if argv else ""
                if extended.startswith(name):
                    name = extended
        self._name = (self._comm, name)
        return name

    def username(self) -> str:
        """Return the login name of the real user."""
        try:
            with open(f"{self._dir}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Uid:"):
                        return user_name(int(line.split()[1]))
        except FileNotFoundError:
            raise NoSuchProcess(self.pid) from None
        raise AccessDenied(self.pid)

    def num_fds(self) -> int:
        """Return the number of open descriptors."""
        try:
            return len(os.listdir(f"{self._dir}/fd"))
        except PermissionError:
            raise AccessDenied(self.pid) from None
        except FileNotFoundError:
            raise NoSuchProcess(self.pid) from None


def _read(path: str) -> bytes:
    # os.open/os.read: half the cost of open().read() for these tiny files.
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def read_stat(path: str, pid: int) -> tuple[list[str], str]:
    """Return the fields of ``<path>/stat`` after ``(comm)`` (state first) plus the resident pages of
    ``<path>/statm`` (psutil's RSS source) appended, and comm; NoSuchProcess if the process is gone."""
    try:
        data = _read(f"{path}/stat").decode(errors="replace")
        resident = _read(f"{path}/statm").split(None, 2)[1].decode()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        raise NoSuchProcess(pid) from None
    head, _, rest = data.rpartition(")")
    fields = rest.split()
    fields.append(resident)
    return fields, head.partition("(")[2]


class ProcTable:
    """The running processes, keeping one StatProcess per (pid, start time) between scans."""

    def __init__(self, proc_root: Path = Path("/proc")) -> None:
        self.proc_root = proc_root
        self._procs: dict[int, StatProcess] = {}

    def process_iter(self) -> Iterator[StatProcess]:
        """Yield every process, each with its stat file read (exited ones are left out)."""
        procs: dict[int, StatProcess] = {}
        for entry in os.listdir(self.proc_root):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                fields, comm = read_stat(f"{self.proc_root}/{entry}", pid)
            except NoSuchProcess:
                continue
            known = self._procs.get(pid)
            if known is None or known.start != fields[19]:
                known = StatProcess(pid, self.proc_root, fields, comm)
            else:
                known._fields, known._comm = fields, comm
            procs[pid] = known
        self._procs = procs
        yield from procs.values()
