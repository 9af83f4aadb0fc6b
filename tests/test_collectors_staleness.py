"""Stale markers from monitorkit's own collectors: a process group, NIC or failing collector ends at once, as a target would.

Each collector is one target in Prometheus's terms: a series its previous collect wrote and
the current one lacks gets a marker at the current collect's time (all of them when the
collect fails), so `latest` drops it and a gauge rule on it resolves on the next evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from rules_helpers import T0, FakeClock, engine_for, events, rule_settings, write_rule

from monitorkit.collectors import CannedProcess, CannedSource, NetworkCollector, ProcessesCollector
from monitorkit.collectors.base import Collector
from monitorkit.collectors.records import NetIO, NicStats
from monitorkit.owner.scheduler import Scheduler
from monitorkit.owner.schema import SCHEMA
from monitorkit.rules.engine import Engine
from monitorkit.samples import Sample
from monitorkit.store import Store

NIC_DOWN = """
SELECT host, labels['nic'] AS nic, last AS value
FROM gauge_window('net_up', eval_time() - INTERVAL 5 MINUTE, eval_time())
WHERE last < 1
"""
NO_PROCESSES = """
SELECT host, labels['name'] AS group_name, last AS value
FROM gauge_window('process_group_procs', eval_time() - INTERVAL 5 MINUTE, eval_time())
WHERE last < 1
"""


@dataclass
class Host:
    """A store, a scheduler over canned collectors on a fake clock, and a rule engine on the same clock."""

    store: Store
    scheduler: Scheduler
    engine: Engine
    clock: FakeClock

    def collect_at(self, seconds: float) -> datetime:
        """Run the due collectors at T0 + ``seconds``, wait for the writer, evaluate the rules there."""
        self.clock.wall = T0 + timedelta(seconds=seconds)
        self.clock.mono = 1000.0 + seconds
        self.scheduler.run_once()
        self.store.flush()
        self.engine.run(self.clock.wall)
        return self.clock.wall

    def marked(self) -> list[tuple[datetime, str, dict[str, str]]]:
        return [(t, name, dict(labels)) for t, name, labels in self.store.query(
            "SELECT m.time, s.name, s.labels FROM stale_markers m JOIN series s USING (series_id) ORDER BY ALL")]

    def latest(self, name: str, label: str) -> list[str]:
        return [v for (v,) in self.store.query(f"SELECT labels['{label}'] FROM latest WHERE name = ? ORDER BY 1",
                                                [name])]

    def rule_rows(self, sql: str, seconds: float) -> list[str]:
        """Return the second column of the rule's query evaluated at T0 + ``seconds``."""
        at = f"TIMESTAMPTZ '{(T0 + timedelta(seconds=seconds)).isoformat()}'"
        return [r[1] for r in self.store.query(sql.replace("eval_time()", at))]

    def active(self, rule: str) -> list[str]:
        """Return the label values of the rule's alerts whose last event says they are active."""
        last: dict[object, tuple[str, dict[str, str]]] = {}
        for alert_id, _, state, labels in events(self.store, rule):
            last[alert_id] = (state, dict(labels))
        return sorted(next(v for k, v in labels.items() if k in ("nic", "group_name"))
                      for state, labels in last.values() if state in ("pending", "firing"))


@contextmanager
def running(tmp_path: Path, *collectors: Collector) -> Iterator[Host]:
    write_rule(tmp_path / "rules", "nic_down", NIC_DOWN)
    write_rule(tmp_path / "rules", "no_processes", NO_PROCESSES)
    clock = FakeClock(T0)
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules"), schema=SCHEMA) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        scheduler = Scheduler(store, collectors, tick=1.0, clock=clock.monotonic, now=clock.utcnow)
        yield Host(store, scheduler, engine, clock)


def test_an_unplugged_nic_is_marked_stale_leaves_latest_and_its_alert_resolves_at_the_next_evaluation(
        tmp_path: Path) -> None:
    nics = CannedSource(nics={"eth0": NetIO(100, 200, 3, 4, 5, 6, 7, 8), "eth1": NetIO(1, 2, 3, 4, 5, 6, 7, 8)},
                        nic_stats={"eth0": NicStats(True, 2, 1_000, 1_500), "eth1": NicStats(False, 2, 0, 1_500)})
    with running(tmp_path, NetworkCollector(nics, interval=10)) as host:
        _unplug(host, nics)


def _unplug(host: Host, nics: CannedSource) -> None:
    host.collect_at(0)
    host.collect_at(10)
    assert host.active("nic_down") == ["eth1"]  # down, not gone: a real alert
    assert host.marked() == []
    del nics.nics["eth1"], nics.nic_stats["eth1"]  # the NIC is unplugged
    at = host.collect_at(20)
    names = sorted(name for _, name, labels in host.marked() if labels == {"nic": "eth1"})
    assert names == sorted(["net_up", *(f"net_{what}_total" for what in (
        "bytes_recv", "bytes_sent", "packets_recv", "packets_sent", "errors_in", "errors_out", "drops_in",
        "drops_out"))])  # eth1 had no speed, so no net_speed_mbps to end
    assert {t for t, _, _ in host.marked()} == {at}
    assert host.latest("net_up", "nic") == ["eth0"]
    assert host.active("nic_down") == []  # resolved at the first evaluation after the NIC went
    # Before markers, eth1's last sample (down) stayed in the rule's 5-minute window:
    host.store.submit(lambda con: con.execute("DELETE FROM stale_markers")).result()
    assert host.rule_rows(NIC_DOWN, 20) == host.rule_rows(NIC_DOWN, 300) == ["eth1"]
    assert host.rule_rows(NIC_DOWN, 311) == []  # ... until 10 s + 5 min


def test_an_evicted_process_group_is_marked_stale_and_its_alert_resolves_at_the_next_evaluation(
        tmp_path: Path) -> None:
    procs = CannedSource(processes=[CannedProcess(1, "nginx", argv=("nginx",), rss=5_000, vms=9_000),
                                    CannedProcess(2, "worker", argv=("worker",), rss=3_000, vms=6_000)])
    with running(tmp_path, ProcessesCollector(procs, interval=10, max_groups=2)) as host:
        _evict(host, procs)


def _evict(host: Host, procs: CannedSource) -> None:
    host.collect_at(0)
    assert host.latest("process_group_procs", "name") == ["nginx", "worker"]
    procs.processes[1].gone = True  # the worker exits: its group stays, with 0 processes
    exited = host.collect_at(10)
    assert [(t, name) for t, name, labels in host.marked()] == [(exited, "process_group_pid")]  # no pid without one
    assert host.latest("process_group_procs", "name") == ["nginx", "worker"]
    assert host.latest("process_group_pid", "name") == ["nginx"]
    assert host.active("no_processes") == ["worker"]
    procs.processes.append(CannedProcess(3, "backup", argv=("backup",)))  # a new group takes the idle one's place
    evicted = host.collect_at(20)
    gone = sorted((name, labels.get("mode") or labels.get("kind") or "") for t, name, labels in host.marked()
                  if labels.get("name") == "worker" and t == evicted)
    assert gone == [("process_group_cpu_percent", ""), ("process_group_cpu_seconds_total", "system"),
                    ("process_group_cpu_seconds_total", "user"), ("process_group_memory_bytes", "resident"),
                    ("process_group_memory_bytes", "virtual"), ("process_group_open_fds", ""),
                    ("process_group_procs", ""), ("process_group_threads", "")]
    assert host.latest("process_group_procs", "name") == ["backup", "nginx"]
    assert host.active("no_processes") == []  # resolved at once, not 5 minutes after the group's last 0
    host.store.submit(lambda con: con.execute("DELETE FROM stale_markers")).result()
    assert host.rule_rows(NO_PROCESSES, 20) == ["worker"]  # what it was before markers


class Flaky:
    """A collector reporting two series, then failing: its series end as a failed scrape's do."""

    name = "flaky"
    interval = 1.0

    def __init__(self) -> None:
        self.fail = False

    def collect(self, now: datetime) -> list[Sample]:
        if self.fail:
            raise OSError("sensor unreadable")
        return [Sample(now, "sensor_celsius", {"sensor": s}, 40.0) for s in ("a", "b")]


def test_a_failing_collector_ends_its_own_series_only_and_they_come_back_with_it(tmp_path: Path) -> None:
    flaky = Flaky()
    with running(tmp_path, flaky, NetworkCollector(CannedSource(), interval=1)) as host:
        _fail_and_recover(host, flaky)


def _fail_and_recover(host: Host, flaky: Flaky) -> None:
    host.collect_at(0)
    flaky.fail = True
    failed = host.collect_at(1)
    assert sorted((t, labels["sensor"]) for t, _, labels in host.marked()) == [(failed, "a"), (failed, "b")]
    assert host.latest("sensor_celsius", "sensor") == []
    assert host.latest("net_up", "nic") == ["eth0"]  # the other collector's series are untouched
    flaky.fail = False
    host.collect_at(20)  # past the failed collector's backoff (2 s)
    assert host.latest("sensor_celsius", "sensor") == ["a", "b"]
    assert len(host.marked()) == 2  # no new marker: nothing vanished since
