"""Process collector against canned processes: counts, groups by name/user/command, CPU counters that survive
exits, refused fields, bounded groups, and a series count that does not grow with pid churn."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from collector_helpers import NOW, rows

from monitorkit.collectors import CannedProcess, CannedSource, ProcessesCollector
from monitorkit.collectors.records import NoSuchProcess, ZombieProcess

Row = tuple[str, dict[str, str], float]


def groups(got: list[Row]) -> dict[tuple[str, str, str], dict[str, float]]:
    """Return {(name, user, command): {metric[/mode or kind]: value}} of the group samples."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    for name, labels, value in got:
        if name.startswith("process_group_"):
            key = (labels["name"], labels["user"], labels["command"])
            extra = labels.get("mode") or labels.get("kind")
            metric = name.removeprefix("process_group_") + (f"/{extra}" if extra else "")
            out.setdefault(key, {})[metric] = value
    return out


def machine() -> list[CannedProcess]:
    return [
        CannedProcess(1, "init", "root", "sleeping", user_seconds=5.0, system_seconds=1.0, rss=10_000, vms=90_000,
                      threads=1, fds=20, argv=("/sbin/init",)),
        CannedProcess(200, "postgres", "postgres", "running", user_seconds=80.0, rss=500_000, threads=8, fds=300,
                      argv=("/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/pg")),
        CannedProcess(201, "postgres", "postgres", "sleeping", user_seconds=2.0, rss=40_000, threads=1, fds=30,
                      argv=("postgres: alice shop 10.0.0.7(51234) idle",)),
        CannedProcess(300, "python3", "alice", "running", user_seconds=150.0, rss=90_000, threads=12, fds=40,
                      argv=("/usr/bin/python3", "-u", "worker.py", "--id=1")),
        CannedProcess(301, "python3", "alice", "running", user_seconds=10.0, rss=80_000, threads=2, fds=10,
                      argv=("/usr/bin/python3", "worker.py", "--id=2")),
        CannedProcess(400, "python3", "alice", "sleeping", rss=70_000, argv=("python3", "-m", "http.server", "8000")),
        CannedProcess(500, "kworker/0:1-events", "root", "idle", fds=0),
        CannedProcess(501, "kworker/u8:2", "root", "idle", fds=0),
        CannedProcess(600, "defunct", "bob", "zombie", fds=None),
    ]


def test_counts_processes_by_status() -> None:
    collector = ProcessesCollector(source=CannedSource(processes=machine()))
    assert (collector.name, collector.interval, collector.max_groups) == ("processes", 10.0, 200)
    got = rows(collector.collect(NOW))
    assert [row for row in got if not row[0].startswith("process_")] == [
        ("processes", {"status": "idle"}, 2.0),
        ("processes", {"status": "running"}, 3.0),
        ("processes", {"status": "sleeping"}, 3.0),
        ("processes", {"status": "zombie"}, 1.0),
        ("processes_count", {}, 9.0),
    ]


def test_processes_of_one_program_and_user_are_one_group_without_pid_labels() -> None:
    got = rows(ProcessesCollector(source=CannedSource(processes=machine())).collect(NOW))
    assert all("pid" not in labels for _, labels, _ in got)
    by_group = groups(got)
    assert sorted(by_group) == [
        ("defunct", "bob", ""),
        ("init", "root", "init"),
        ("kworker", "root", ""),  # kernel threads: the name before "/", whatever the kernel calls them now
        ("postgres", "postgres", "postgres"),  # the process title keeps its first word only
        ("python3", "alice", "python3 -m http.server"),
        ("python3", "alice", "python3 worker.py"),  # arguments and options are dropped
    ]
    assert by_group[("python3", "alice", "python3 worker.py")] == {
        "procs": 2.0, "cpu_seconds_total/user": 160.0, "cpu_seconds_total/system": 0.0, "cpu_percent": 0.0,
        "memory_bytes/resident": 170_000.0, "memory_bytes/virtual": 0.0, "open_fds": 50.0, "threads": 14.0,
        "pid": 300.0,  # no CPU interval yet: the busiest is the one with the most resident memory
    }
    assert by_group[("postgres", "postgres", "postgres")]["procs"] == 2.0
    assert "open_fds" not in by_group[("defunct", "bob", "")]  # no process of the group could say


def test_cpu_seconds_count_up_by_mode_and_percent_is_over_the_interval() -> None:
    source = CannedSource(processes=machine())
    collector = ProcessesCollector(source=source)
    collector.collect(NOW)
    procs = {p.pid: p for p in source.processes}
    # Fresh objects with new totals, as the OS listing hands them out: 10 s later pid 300 used 5 s + 1 s.
    source.processes = [replace(p, user_seconds=p.user_seconds + 5, system_seconds=1.0) if p.pid == 300 else p
                        for p in procs.values()]
    got = groups(rows(collector.collect(NOW + timedelta(seconds=10)), NOW + timedelta(seconds=10)))
    worker = got[("python3", "alice", "python3 worker.py")]
    assert (worker["cpu_seconds_total/user"], worker["cpu_seconds_total/system"]) == (165.0, 1.0)
    assert worker["cpu_percent"] == 60.0 and worker["pid"] == 300.0
    assert got[("init", "root", "init")]["cpu_percent"] == 0.0


def test_an_exited_process_keeps_its_cpu_and_a_new_one_adds_all_of_its_own() -> None:
    a = CannedProcess(10, "job", user_seconds=4.0, argv=("job",))
    b = CannedProcess(11, "job", user_seconds=6.0, argv=("job",))
    source = CannedSource(processes=[a, b])
    collector = ProcessesCollector(source=source)
    collector.collect(NOW)
    source.processes = [replace(b, user_seconds=7.0), CannedProcess(12, "job", user_seconds=0.5, argv=("job",))]
    later = NOW + timedelta(seconds=5)
    job = groups(rows(collector.collect(later), later))[("job", "root", "job")]
    assert job["cpu_seconds_total/user"] == 4.0 + 7.0 + 0.5  # pid 10 exited; its 4 s stay counted
    assert job["procs"] == 2.0
    assert job["cpu_percent"] == 30.0  # (1 s of pid 11 + 0.5 s of the newborn pid 12) in 5 s


def test_a_reused_pid_is_a_new_process_not_a_drop_in_cpu() -> None:
    source = CannedSource(processes=[CannedProcess(300, "job", user_seconds=42.0, started=100.0, argv=("job",))])
    collector = ProcessesCollector(source=source)
    collector.collect(NOW)
    source.processes = [CannedProcess(300, "job", user_seconds=2.0, started=200.0, argv=("job",))]
    job = groups(rows(collector.collect(NOW)))[("job", "root", "job")]
    assert job["cpu_seconds_total/user"] == 44.0


def test_a_process_that_execs_another_program_moves_to_that_group() -> None:
    source = CannedSource(processes=[CannedProcess(7, "sh", user_seconds=1.0, argv=("sh", "-c", "exec make"))])
    collector = ProcessesCollector(source=source)
    collector.collect(NOW)
    source.processes = [CannedProcess(7, "make", user_seconds=3.0, argv=("make", "-j4"))]
    got = groups(rows(collector.collect(NOW)))
    assert got[("sh", "root", "sh -c")]["procs"] == 0.0  # kept, idle, with its CPU seconds
    assert got[("sh", "root", "sh -c")]["cpu_seconds_total/user"] == 1.0
    assert got[("make", "root", "make")]["cpu_seconds_total/user"] == 2.0  # what it used since the exec


def test_an_idle_group_is_reported_with_zero_gauges_and_its_counters() -> None:
    source = CannedSource(processes=[CannedProcess(10, "cron", user_seconds=3.0, rss=100, argv=("cron",))])
    collector = ProcessesCollector(source=source)
    collector.collect(NOW)
    source.processes = []
    got = rows(collector.collect(NOW))
    assert groups(got)[("cron", "root", "cron")] == {
        "procs": 0.0, "cpu_seconds_total/user": 3.0, "cpu_seconds_total/system": 0.0, "cpu_percent": 0.0,
        "memory_bytes/resident": 0.0, "memory_bytes/virtual": 0.0, "open_fds": 0.0, "threads": 0.0,
    }
    assert ("processes_count", {}, 0.0) in got


def test_groups_are_bounded_idle_ones_make_room_and_the_rest_count_in_other() -> None:
    source = CannedSource(processes=[CannedProcess(1, "a", argv=("a",)), CannedProcess(2, "b", argv=("b",))])
    collector = ProcessesCollector(source=source, max_groups=2)
    collector.collect(NOW)
    source.processes = [CannedProcess(1, "a", argv=("a",)), CannedProcess(3, "c", user_seconds=1.0, argv=("c",))]
    got = groups(rows(collector.collect(NOW)))
    assert sorted(got) == [("(other)", "(other)", "(other)"), ("a", "root", "a"), ("b", "root", "b")]
    assert got[("(other)", "(other)", "(other)")]["cpu_seconds_total/user"] == 1.0
    collector.collect(NOW)  # b has now been idle since before the previous collect: its room can be taken
    source.processes = [CannedProcess(1, "a", argv=("a",)), CannedProcess(4, "d", argv=("d",))]
    assert sorted(groups(rows(collector.collect(NOW)))) == [
        ("(other)", "(other)", "(other)"), ("a", "root", "a"), ("d", "root", "d")]


def test_access_denied_on_one_field_skips_that_field_not_the_process() -> None:
    procs = [
        CannedProcess(10, "sshd", "root", user_seconds=9.0, rss=5_000, threads=3, fds=9, argv=("sshd",),
                      denied=frozenset({"num_fds", "username"})),
        CannedProcess(20, "secret", "root", user_seconds=7.0, rss=6_000, threads=2, fds=4, argv=("secret",),
                      denied=frozenset({"memory_info", "num_threads", "cmdline"})),
        CannedProcess(30, "locked", "root", user_seconds=3.0, rss=7_000, fds=1, argv=("locked",),
                      denied=frozenset({"cpu_times"})),
    ]
    got = rows(ProcessesCollector(source=CannedSource(processes=procs)).collect(NOW))
    assert ("processes_count", {}, 3.0) in got
    by_group = groups(got)
    assert sorted(by_group) == [("locked", "root", "locked"), ("secret", "root", ""), ("sshd", "", "sshd")]
    assert "open_fds" not in by_group[("sshd", "", "sshd")] and by_group[("sshd", "", "sshd")]["threads"] == 3.0
    assert "threads" not in by_group[("secret", "root", "")]
    assert "memory_bytes/resident" not in by_group[("secret", "root", "")]
    assert by_group[("locked", "root", "locked")]["cpu_seconds_total/user"] == 0.0


def test_a_process_that_exits_during_the_scan_is_left_out() -> None:
    procs = [CannedProcess(10, "short", rss=1, gone=True), CannedProcess(20, "long", rss=1, argv=("long",))]
    got = rows(ProcessesCollector(source=CannedSource(processes=procs)).collect(NOW))
    assert ("processes_count", {}, 1.0) in got
    assert set(groups(got)) == {("long", "root", "long")}


class ExitsWhileRead(CannedProcess):
    """A process that is gone by the time its command line is read."""

    def cmdline(self) -> list[str]:
        raise NoSuchProcess(self.pid)


def test_a_process_that_exits_while_it_is_read_is_neither_counted_nor_grouped() -> None:
    collector = ProcessesCollector(source=CannedSource(processes=[ExitsWhileRead(10, rss=1)]))
    assert rows(collector.collect(NOW)) == [("processes_count", {}, 0.0)]


class ZombieOnStatus(CannedProcess):
    """A process whose status read finds it already a zombie."""

    def status(self) -> str:
        raise ZombieProcess(self.pid)


def test_status_refused_or_zombie_is_still_counted() -> None:
    procs = [
        CannedProcess(10, "hidden", rss=1, denied=frozenset({"status"})),
        ZombieOnStatus(20, "undead"),
    ]
    got = rows(ProcessesCollector(source=CannedSource(processes=procs)).collect(NOW))
    assert [row for row in got if not row[0].startswith("process_")] == [
        ("processes", {"status": "unknown"}, 1.0),
        ("processes", {"status": "zombie"}, 1.0),
        ("processes_count", {}, 2.0),
    ]


class BusyMachine:
    """A canned machine where pids churn: 300 long-lived processes and 30 short-lived ones every collect."""

    def __init__(self) -> None:
        self.next_pid = 1000
        self.tick = 0
        self.pids_seen: set[int] = set()
        self.long_lived = [self._spawn(name, user, argv) for name, user, argv, n in (
            ("nginx", "www-data", ("nginx: worker process",), 8),
            ("postgres", "postgres", ("/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/pg"), 20),
            ("python3", "app", ("/usr/bin/python3", "-u", "app.py", "--port", "8000"), 30),
            ("chrome", "alice", ("/opt/google/chrome/chrome", "--type=renderer", "--renderer-client-id=7"), 60),
            ("sshd", "root", ("sshd: alice@pts/3",), 12),
            ("bash", "alice", ("-bash",), 20),
            ("java", "kafka", ("java", "-Xmx1g", "-cp", "/opt/kafka/libs/*", "kafka.Kafka", "server.properties"), 10),
            ("node", "web", ("node", "--max-old-space-size=512", "server.js"), 40),
            ("ksoftirqd/0", "root", (), 100),
        ) for _ in range(n)]

    def _spawn(self, name: str, user: str, argv: tuple[str, ...], user_seconds: float = 0.0) -> CannedProcess:
        self.next_pid += 1
        return CannedProcess(self.next_pid, name, user, argv=argv, started=float(self.next_pid),
                             user_seconds=user_seconds)

    def short_lived(self) -> list[CannedProcess]:
        n = self.tick
        return [self._spawn(*spec, user_seconds=0.01 * i) for i, spec in enumerate((
            ("sh", "root", ("/bin/sh", "-c", f"curl -s http://10.0.0.{n % 250}/health?id={n}")),
            ("sleep", "root", ("sleep", str(n % 60))),
            ("python3", "ci", ("python3", "-c", f"print({n})")),
            ("git", "alice", ("git", "status", f"--work-tree=/tmp/w{n}")),
            ("postgres", "postgres", (f"postgres: alice shop 10.0.{n % 256}.{n % 7}({40000 + n}) idle",)),
            (f"kworker/u8:{n % 97}-events_unbound", "root", ()),
            (f"kworker/{n % 4}:{n % 13}H-kblockd", "root", ()),
        ) * 4)]

    def process_iter(self) -> list[CannedProcess]:
        self.tick += 1
        for proc in self.long_lived:
            proc.user_seconds += 0.1
        procs = self.long_lived + self.short_lived()
        self.pids_seen.update(p.pid for p in procs)
        return procs


def test_series_do_not_grow_with_pid_churn_over_an_hour() -> None:
    machine = BusyMachine()
    collector = ProcessesCollector(source=machine)  # type: ignore[arg-type]
    series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    cpu: dict[tuple[tuple[str, str], ...], float] = {}
    after_5m = 0
    for i in range(360):  # one hour at the default 10 s interval
        now = NOW + timedelta(seconds=10 * i)
        for name, labels, value in rows(collector.collect(now), now):
            key = tuple(sorted(labels.items()))
            series.add((name, key))
            if name == "process_group_cpu_seconds_total":
                assert value >= cpu.get(key, 0.0), f"{key} went down"
                cpu[key] = value
        if i == 29:
            after_5m = len(series)
    assert len(machine.pids_seen) > 10_000  # pids churned (the old pid label: a series set per pid)
    assert after_5m > 0 and len(series) <= 2 * after_5m
    assert len(series) == after_5m  # no new program ran after the first minutes: not one new series
    assert len({labels for _, labels in series}) < 150


def test_the_metrics_page_states_the_default_bound_of_groups() -> None:
    from monitorkit.catalog import PROCESS_GROUPS
    from monitorkit.collectors.processes import DEFAULT_MAX_GROUPS

    assert f"(default {DEFAULT_MAX_GROUPS})" in PROCESS_GROUPS
