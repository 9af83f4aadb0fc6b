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
    write_proc(tmp_path, 10, comm="a (weird) name", state="R", threads=7, resident=25, fds=4,
               cmdline=b"/usr/bin/python3\0-u\0app.py\0")
    write_proc(tmp_path, 11, comm="averyverylongna", cmdline=b"/usr/bin/averyverylongname-daemon\0--flag\0")
    write_proc(tmp_path, 12, comm="kworker/0:1", state="I", uid=0)
    (tmp_path / "self").mkdir()
    table = procstat.ProcTable(tmp_path)
    procs = {p.pid: p for p in table.process_iter()}
    assert sorted(procs) == [10, 11, 12]
    p = procs[10]
    with p.oneshot():
        assert (p.status(), p.num_threads()) == ("running", 7)
        assert p.memory_info() == (25 * procstat.PAGE_SIZE, 1_000_000)  # statm's resident pages, stat's vsize
        assert (p.name(), p.username(), p.num_fds()) == ("a (weird) name", "root", 4)
        assert p.cmdline() == ["/usr/bin/python3", "-u", "app.py"]
    assert procs[11].name() == "averyverylongname-daemon"  # psutil's rule for 15-character names
    assert procs[12].status() == "idle" and procs[12].cmdline() == []


def test_cpu_times_in_seconds_objects_kept_per_process_and_a_reused_pid_starts_afresh(tmp_path: Path) -> None:
    write_proc(tmp_path, 10, utime=100, stime=0, cmdline=b"job\0")
    table = procstat.ProcTable(tmp_path)
    [first] = table.process_iter()
    assert first.cpu_times() == (100 / procstat.CLOCK_TICKS, 0.0)
    assert first.cmdline() == ["job"]
    write_proc(tmp_path, 10, utime=100 + procstat.CLOCK_TICKS, stime=2 * procstat.CLOCK_TICKS, cmdline=b"changed\0")
    [same] = table.process_iter()
    assert same is first and same.cpu_times() == (100 / procstat.CLOCK_TICKS + 1, 2.0)
    assert same.cmdline() == ["job"]  # read once per process (and name): not re-read every scan
    write_proc(tmp_path, 10, start=9999, cmdline=b"changed\0")  # the pid now belongs to a new process
    [fresh] = table.process_iter()
    assert fresh is not first and fresh.cmdline() == ["changed"]
    write_proc(tmp_path, 10, start=9999, comm="other", cmdline=b"other\0")  # it exec'd another program
    [renamed] = table.process_iter()
    assert renamed is fresh and renamed.cmdline() == ["other"]


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
    write_proc(tmp_path, 10, comm="big", resident=1000, cmdline=b"/usr/bin/big\0--serve\0")
    write_proc(tmp_path, 11, comm="big", resident=10, cmdline=b"/usr/bin/big\0--worker\0")
    write_proc(tmp_path, 12, comm="small", resident=10, state="Z")

    class Source:
        table = procstat.ProcTable(tmp_path)

        def process_iter(self) -> object:
            return self.table.process_iter()

    got = ProcessesCollector(source=Source()).collect(NOW)  # type: ignore[arg-type]
    rows = {(s.name, tuple(s.labels.values())): s.value for s in got}
    assert rows[("processes", ("sleeping",))] == 2 and rows[("processes", ("zombie",))] == 1
    root = procstat.user_name(0)
    big = ("big", root, "big")
    assert rows[("process_group_procs", big)] == 2  # same program and user, other arguments: one group
    assert rows[("process_group_memory_bytes", (*big, "resident"))] == 1010 * procstat.PAGE_SIZE
    assert rows[("process_group_pid", big)] == 10  # the busiest (most memory, no CPU interval yet)
    assert rows[("process_group_procs", ("small", root, ""))] == 1  # a zombie: no command line


@pytest.mark.skipif(not procstat.available(), reason="no /proc/<pid>/stat on this OS")
def test_stat_process_agrees_with_psutil_on_a_real_process() -> None:
    code = "import sys, time; print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"  # settled: sleeping
        ref = psutil.Process(child.pid)
        mine = next(p for p in procstat.ProcTable().process_iter() if p.pid == child.pid)
        with ref.oneshot():
            expected = (ref.status(), ref.name(), ref.username(), ref.num_threads(), ref.num_fds(), ref.cmdline())
            memory, times = ref.memory_info(), ref.cpu_times()
        assert (mine.status(), mine.name(), mine.username(), mine.num_threads(), mine.num_fds(),
                mine.cmdline()) == expected
        assert mine.memory_info().rss == pytest.approx(memory.rss, rel=0.05)
        assert mine.memory_info().vms == pytest.approx(memory.vms, rel=0.05)
        assert mine.cpu_times().user == pytest.approx(times.user, abs=0.05)
        assert mine.cpu_times().system == pytest.approx(times.system, abs=0.05)
    finally:
        child.kill()
        child.wait()
    assert os.path.exists("/proc/self/stat")
