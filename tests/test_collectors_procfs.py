"""The /proc readers behind PsutilSource on Linux: canned socket tables and process files, and psutil as the reference."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from collector_helpers import NOW

from monitorkit.collectors import ConnectionsCollector, ProcessesCollector, procnet, procstat
from monitorkit.collectors.records import Address, NoSuchProcess

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 20 4 30 10 -1
   2: 0100007F:D432 0100007F:1F90 06 00000000:00000000 03:00000F2B 00000000     0        0 0 3 0
"""
TCP6 = (  # one line each in the kernel's file; shortened header
    "  sl  local_address                         remote_address                        st tx_queue ...\n"
    "   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 2001 1 0 100 0 0 10 0\n"
)
UDP = """   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  10: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3001 2 0 0
  11: 0100007F:A000 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 3002 2 0 0
"""
UNIX = """Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 4001 /run/app.sock
0000000000000000: 00000003 00000000 00000000 0001 03 4002
0000000000000000: 00000003 00000000 00000000 0001 03 4003
0000000000000000: 00000002 00000000 00000000 0002 01 4004 @abstract
"""


@pytest.fixture
def proc_net(tmp_path: Path) -> Path:
    """Return a canned /proc with tcp, tcp6, udp and unix tables (no udp6: a kernel without it)."""
    net = tmp_path / "net"
    net.mkdir()
    for name, text in (("tcp", TCP), ("tcp6", TCP6), ("udp", UDP), ("unix", UNIX)):
        (net / name).write_text(text)
    return tmp_path


def test_socket_tables_decode_states_addresses_and_unix_types(proc_net: Path) -> None:
    tcp = procnet.connections("tcp4", proc_root=proc_net)
    assert [(c.status, c.laddr, c.raddr) for c in tcp] == [
        ("LISTEN", Address("127.0.0.1", 8080), ()),
        ("ESTABLISHED", Address("127.0.0.1", 8080), Address("127.0.0.1", 54321)),
        ("TIME_WAIT", Address("127.0.0.1", 54322), Address("127.0.0.1", 8080)),
    ]
    assert {(c.family, c.type, c.pid, c.fd) for c in tcp} == {(socket.AF_INET, socket.SOCK_STREAM, None, -1)}
    [tcp6] = procnet.connections("tcp6", proc_root=proc_net)
    assert (tcp6.family, tcp6.laddr, tcp6.status) == (socket.AF_INET6, Address("::1", 22), "LISTEN")
    udp = procnet.connections("udp", proc_root=proc_net)  # udp6 missing: counted as none
    assert [(c.status, c.laddr, c.raddr) for c in udp] == [
        ("NONE", Address("0.0.0.0", 68), ()),
        ("NONE", Address("127.0.0.1", 40960), Address("127.0.0.1", 53)),
    ]
    unix = procnet.connections("unix", proc_root=proc_net)
    assert [(c.type, c.laddr, c.status) for c in unix] == [
        (socket.SOCK_STREAM, "/run/app.sock", "NONE"), (socket.SOCK_STREAM, "", "NONE"),
        (socket.SOCK_STREAM, "", "NONE"), (socket.SOCK_DGRAM, "@abstract", "NONE"),
    ]
    assert len(procnet.connections("all", proc_root=proc_net)) == 3 + 1 + 2 + 4


class ProcNetSource:
    """A host source whose net_connections reads a canned /proc/net."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def net_connections(self, kind: str = "inet") -> list[object]:
        return procnet.connections(kind, proc_root=self.root)  # type: ignore[return-value]


def test_connections_collector_counts_every_socket_from_the_tables(proc_net: Path) -> None:
    collector = ConnectionsCollector(source=ProcNetSource(proc_net))  # type: ignore[arg-type]
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in collector.collect(NOW)}
    assert got[("net_connections", (("kind", "tcp"), ("state", "LISTEN")))] == 1
    assert got[("net_connections", (("kind", "tcp"), ("state", "TIME_WAIT")))] == 1
    assert got[("net_connections", (("kind", "unix"), ("state", "NONE")))] == 4  # two unnamed ones both count
    assert got[("net_connections", (("kind", "udp6"), ("state", "NONE")))] == 0
    assert got[("net_listening_ports", ())] == 3  # tcp 8080, tcp6 22, udp 68
    assert {dict(k[1])["port"] for k in got if k[0] == "net_listen"} == {"8080", "22", "68"}


def test_listening_sockets_match_psutil_on_this_machine() -> None:
    if not procnet.available():
        pytest.skip("no /proc/net on this OS")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        mine = [c for c in procnet.connections("tcp4") if c.laddr and c.laddr[1] == port]
        theirs = [c for c in psutil.net_connections("tcp4") if c.laddr and c.laddr[1] == port]
    assert [(c.laddr, c.raddr, c.status) for c in mine] == [(Address("127.0.0.1", port), (), "LISTEN")]
    assert [(tuple(c.laddr), c.raddr, c.status, c.family, c.type) for c in theirs] == [
        (tuple(c.laddr), c.raddr, c.status, c.family, c.type) for c in mine]


def write_proc(root: Path, pid: int, *, comm: str = "worker", state: str = "S", utime: int = 100, stime: int = 50,
               threads: int = 3, start: int = 5000, resident: int = 25, uid: int = 0, cmdline: bytes = b"",
               fds: int = 2) -> None:
    """Write /proc/<pid>/{stat,statm,status,cmdline,fd/} the way Linux lays them out."""
    d = root / str(pid)
    (d / "fd").mkdir(parents=True, exist_ok=True)
    rest = [state, "1", str(pid), str(pid), "0", "-1", "4194560", "10", "0", "0", "0", str(utime), str(stime),
            "0", "0", "20", "0", str(threads), "0", str(start), "1000000", "999"] + ["0"] * 30
    (d / "stat").write_text(f"{pid} ({comm}) {' '.join(rest)}\n")
    (d / "statm").write_text(f"500 {resident} 10 5 0 100 0\n")
    (d / "status").write_text(f"Name:\t{comm}\nUmask:\t0022\nState:\t{state}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    (d / "cmdline").write_bytes(cmdline)
    for old in (d / "fd").iterdir():
        old.unlink()
    for i in range(fds):
        (d / "fd" / str(i)).write_text("")


def test_stat_processes_read_status_memory_threads_names_users_and_fds(tmp_path: Path) -> None:
    write_proc(tmp_path, 10, comm="a (weird) name", state="R", threads=7, resident=25, fds=4)
    write_proc(tmp_path, 11, comm="averyverylongna", cmdline=b"/usr/bin/averyverylongname-daemon\0--flag\0")
    write_proc(tmp_path, 12, comm="kworker/0:1", state="I", uid=0)
    (tmp_path / "self").mkdir()
    table = procstat.ProcTable(tmp_path)
    procs = {p.pid: p for p in table.process_iter()}
    assert sorted(procs) == [10, 11, 12]
    p = procs[10]
    with p.oneshot():
        assert (p.status(), p.num_threads(), p.memory_info().rss) == ("running", 7, 25 * procstat.PAGE_SIZE)
        assert (p.name(), p.username(), p.num_fds()) == ("a (weird) name", "root", 4)
    assert procs[11].name() == "averyverylongname-daemon"  # psutil's rule for 15-character names
    assert procs[12].status() == "idle"


def test_cpu_percent_has_a_baseline_per_process_and_a_reused_pid_starts_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 102.0, 104.0])
    monkeypatch.setattr(procstat.time, "monotonic", lambda: next(clock))
    write_proc(tmp_path, 10, utime=100, stime=0)
    table = procstat.ProcTable(tmp_path)
    [first] = table.process_iter()
    assert first.cpu_percent() == 0.0  # no baseline yet, like psutil
    write_proc(tmp_path, 10, utime=100 + procstat.CLOCK_TICKS, stime=0)  # one CPU second in two seconds
    [same] = table.process_iter()
    assert same is first and same.cpu_percent() == 50.0
    write_proc(tmp_path, 10, start=9999)  # the pid now belongs to a new process
    [fresh] = table.process_iter()
    assert fresh is not first and fresh.cpu_percent() == 0.0


def test_a_process_that_exits_is_left_out_or_reported_gone(tmp_path: Path) -> None:
    write_proc(tmp_path, 10)
    (tmp_path / "11").mkdir()  # listed, but its files are already gone
    table = procstat.ProcTable(tmp_path)
    [p] = table.process_iter()
    for name in ("stat", "statm", "status", "cmdline"):
        (tmp_path / "10" / name).unlink()
    with pytest.raises(NoSuchProcess):
        p.refresh()
    with pytest.raises(NoSuchProcess):
        p.username()


def test_processes_collector_over_stat_files(tmp_path: Path) -> None:
    write_proc(tmp_path, 10, comm="big", resident=1000)
    write_proc(tmp_path, 11, comm="small", resident=10, state="Z")

    class Source:
        table = procstat.ProcTable(tmp_path)

        def process_iter(self) -> object:
            return self.table.process_iter()

    got = ProcessesCollector(source=Source(), top_n=1).collect(NOW)  # type: ignore[arg-type]
    rows = {(s.name, s.labels.get("pid", s.labels.get("status"))): s.value for s in got}
    assert rows[("processes", "sleeping")] == 1 and rows[("processes", "zombie")] == 1
    assert rows[("process_rss_bytes", "10")] == 1000 * procstat.PAGE_SIZE
    assert ("process_rss_bytes", "11") not in rows  # top 1 by memory only


@pytest.mark.skipif(not procstat.available(), reason="no /proc/<pid>/stat on this OS")
def test_stat_process_agrees_with_psutil_on_a_real_process() -> None:
    code = "import sys, time; print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"  # settled: sleeping
        ref = psutil.Process(child.pid)
        mine = next(p for p in procstat.ProcTable().process_iter() if p.pid == child.pid)
        with ref.oneshot():
            expected = (ref.status(), ref.name(), ref.username(), ref.num_threads(), ref.num_fds())
            rss = ref.memory_info().rss
        assert (mine.status(), mine.name(), mine.username(), mine.num_threads(), mine.num_fds()) == expected
        assert mine.memory_info().rss == pytest.approx(rss, rel=0.05)
    finally:
        child.kill()
        child.wait()
    assert os.path.exists("/proc/self/stat")
