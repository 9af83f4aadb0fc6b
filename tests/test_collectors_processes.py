"""Process collector against canned processes: counts, top N, CPU baselines and refused fields."""

from __future__ import annotations

from dataclasses import replace

from collector_helpers import NOW, rows

from monitorkit.collectors import CannedProcess, CannedSource, ProcessesCollector
from monitorkit.collectors.records import NoSuchProcess, ZombieProcess


def per_process(got: list[tuple[str, dict[str, str], float]]) -> dict[str, dict[str, float]]:
    """Return {pid: {metric: value}} of the per-process samples."""
    out: dict[str, dict[str, float]] = {}
    for name, labels, value in got:
        if name.startswith("process_"):
            out.setdefault(labels["pid"], {})[name] = value
    return out


def machine() -> list[CannedProcess]:
    return [
        CannedProcess(1, "init", "root", "sleeping", cpu=0.5, rss=10_000, threads=1, fds=20),
        CannedProcess(200, "postgres", "postgres", "running", cpu=80.0, rss=500_000, threads=8, fds=300),
        CannedProcess(300, "python", "alice", "running", cpu=150.0, rss=90_000, threads=12, fds=40),
        CannedProcess(400, "chrome", "alice", "sleeping", cpu=5.0, rss=900_000, threads=40, fds=800),
        CannedProcess(500, "kworker/0:1", "root", "idle", cpu=0.0, rss=0, threads=1, fds=0),
        CannedProcess(600, "defunct", "bob", "zombie", cpu=0.0, rss=0, threads=1, fds=None),
    ]


def test_counts_processes_by_status() -> None:
    collector = ProcessesCollector(source=CannedSource(processes=machine()))
    assert (collector.name, collector.interval, collector.top_n) == ("processes", 10.0, 10)
    got = rows(collector.collect(NOW))
    assert [row for row in got if not row[0].startswith("process_")] == [
        ("processes", {"status": "idle"}, 1.0),
        ("processes", {"status": "running"}, 2.0),
        ("processes", {"status": "sleeping"}, 2.0),
        ("processes", {"status": "zombie"}, 1.0),
        ("processes_count", {}, 6.0),
    ]


def test_first_collect_has_no_cpu_baseline_so_only_memory_ranks() -> None:
    collector = ProcessesCollector(source=CannedSource(processes=machine()), top_n=2)
    got = rows(collector.collect(NOW))
    assert per_process(got) == {
        "200": {"process_cpu_percent": 0.0, "process_rss_bytes": 500_000.0, "process_threads": 8.0,
                "process_open_fds": 300.0},
        "400": {"process_cpu_percent": 0.0, "process_rss_bytes": 900_000.0, "process_threads": 40.0,
                "process_open_fds": 800.0},
    }


def test_second_collect_ranks_by_cpu_and_by_memory_with_full_labels() -> None:
    source = CannedSource(processes=machine())
    collector = ProcessesCollector(source=source, top_n=1)
    collector.collect(NOW)
    got = rows(collector.collect(NOW))
    # top 1 by CPU is python (150 %), top 1 by RSS is chrome: the union, ordered by pid.
    assert [row for row in got if row[0].startswith("process_")] == [
        ("process_cpu_percent", {"pid": "300", "name": "python", "user": "alice"}, 150.0),
        ("process_rss_bytes", {"pid": "300", "name": "python", "user": "alice"}, 90_000.0),
        ("process_threads", {"pid": "300", "name": "python", "user": "alice"}, 12.0),
        ("process_open_fds", {"pid": "300", "name": "python", "user": "alice"}, 40.0),
        ("process_cpu_percent", {"pid": "400", "name": "chrome", "user": "alice"}, 5.0),
        ("process_rss_bytes", {"pid": "400", "name": "chrome", "user": "alice"}, 900_000.0),
        ("process_threads", {"pid": "400", "name": "chrome", "user": "alice"}, 40.0),
        ("process_open_fds", {"pid": "400", "name": "chrome", "user": "alice"}, 800.0),
    ]


def test_keeps_process_objects_between_calls_so_cpu_percent_has_a_baseline() -> None:
    source = CannedSource(processes=[CannedProcess(300, "python", cpu=42.0, rss=1)])
    collector = ProcessesCollector(source=source)
    first = source.processes[0]
    collector.collect(NOW)
    # The OS listing hands out fresh objects for the same process; the cached one must be asked.
    source.processes = [replace(first, cpu_percent_calls=0)]
    got = per_process(rows(collector.collect(NOW)))
    assert got["300"]["process_cpu_percent"] == 42.0
    assert first.cpu_percent_calls == 2
    assert source.processes[0].cpu_percent_calls == 0


def test_a_reused_pid_starts_a_new_cpu_baseline() -> None:
    source = CannedSource(processes=[CannedProcess(300, "python", cpu=42.0, rss=1, started=100.0)])
    collector = ProcessesCollector(source=source)
    collector.collect(NOW)
    source.processes = [CannedProcess(300, "bash", cpu=42.0, rss=1, started=200.0)]
    got = rows(collector.collect(NOW))
    assert ("process_cpu_percent", {"pid": "300", "name": "bash", "user": "root"}, 0.0) in got


def test_forgets_exited_processes() -> None:
    proc = CannedProcess(300, "python", cpu=42.0, rss=1)
    source = CannedSource(processes=[proc])
    collector = ProcessesCollector(source=source)
    collector.collect(NOW)
    source.processes = []
    collector.collect(NOW)
    # Back with the same start time: had the old object been kept, its baseline would give 42.
    source.processes = [replace(proc, cpu_percent_calls=0)]
    assert per_process(rows(collector.collect(NOW)))["300"]["process_cpu_percent"] == 0.0


def test_access_denied_on_one_field_skips_that_field_not_the_process() -> None:
    procs = [
        CannedProcess(10, "sshd", "root", cpu=9.0, rss=5_000, threads=3, fds=9,
                      denied=frozenset({"num_fds", "username"})),
        CannedProcess(20, "secret", "root", cpu=7.0, rss=6_000, threads=2, fds=4,
                      denied=frozenset({"memory_info", "num_threads"})),
        CannedProcess(30, "locked", "root", cpu=3.0, rss=7_000, threads=1, fds=1, denied=frozenset({"cpu_percent"})),
    ]
    collector = ProcessesCollector(source=CannedSource(processes=procs))
    collector.collect(NOW)
    got = rows(collector.collect(NOW))
    assert ("processes_count", {}, 3.0) in got
    assert per_process(got) == {
        "10": {"process_cpu_percent": 9.0, "process_rss_bytes": 5_000.0, "process_threads": 3.0},
        "20": {"process_cpu_percent": 7.0, "process_open_fds": 4.0},
        "30": {"process_rss_bytes": 7_000.0, "process_threads": 1.0, "process_open_fds": 1.0},
    }
    assert {"pid": "10", "name": "sshd", "user": ""} in [labels for _, labels, _ in got]


def test_a_process_that_exits_during_the_scan_is_left_out() -> None:
    procs = [CannedProcess(10, "short", cpu=1.0, rss=1, gone=True), CannedProcess(20, "long", cpu=1.0, rss=1)]
    got = rows(ProcessesCollector(source=CannedSource(processes=procs)).collect(NOW))
    assert ("processes_count", {}, 1.0) in got
    assert set(per_process(got)) == {"20"}


class ExitsAfterScan(CannedProcess):
    """A process that is gone by the time its name is read (names are read only for the top N)."""

    def name(self) -> str:
        raise NoSuchProcess(self.pid)


def test_a_process_that_exits_between_scan_and_details_is_counted_but_not_detailed() -> None:
    collector = ProcessesCollector(source=CannedSource(processes=[ExitsAfterScan(10, cpu=1.0, rss=1)]))
    got = rows(collector.collect(NOW))
    assert got == [("processes", {"status": "sleeping"}, 1.0), ("processes_count", {}, 1.0)]


class ZombieOnStatus(CannedProcess):
    """A process whose status read finds it already a zombie."""

    def status(self) -> str:
        raise ZombieProcess(self.pid)


def test_status_refused_or_zombie_is_still_counted() -> None:
    procs = [
        CannedProcess(10, "hidden", cpu=1.0, rss=1, denied=frozenset({"status"})),
        ZombieOnStatus(20, "undead", cpu=0.0, rss=0),
    ]
    got = rows(ProcessesCollector(source=CannedSource(processes=procs)).collect(NOW))
    assert [row for row in got if not row[0].startswith("process_")] == [
        ("processes", {"status": "unknown"}, 1.0),
        ("processes", {"status": "zombie"}, 1.0),
        ("processes_count", {}, 2.0),
    ]
