"""A slow rule and a failing rule beside a good one: neither ingestion nor the good rule's alerts slow down.

The engine runs live (its own loop, woken by every commit) while a feeder writes one sample
a tick, each with a new key the good rule fires on. Figures are compared between a baseline
phase and a phase with a 30 s rule and a rule that errors every pass; the bound is one tick.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest
from rules_helpers import engine_for, rule_settings, trigger, write_rule
from shared_helpers import wait_until

from monitorkit.rules.state import PassReport
from monitorkit.samples import utcnow
from monitorkit.store import Store
from monitorkit.store.writer import CommitInfo

TICK = 0.5
FOREVER_SQL = "SELECT count(*)::DOUBLE AS value FROM range(100000000000) t(a) WHERE a % 7 = 99"  # minutes


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.9 * (len(ordered) - 1))]


class Feed:
    """Write one `trigger` sample a tick with a new key; note each commit's lag and each key's firing."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.written: dict[str, datetime] = {}
        self.fired: dict[str, datetime] = {}
        self.lags: list[tuple[str, float]] = []  # (phase, seconds from the newest sample to its commit)
        self.phase = "baseline"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(TICK):
            key = f"{self.phase}-{n}"
            n += 1
            stamp = utcnow()
            self.written[key] = stamp
            self.store.write([trigger(stamp, 99, key=key)])

    def on_commit(self, info: CommitInfo) -> None:
        if isinstance(info.max_time, datetime):
            self.lags.append((self.phase, (utcnow() - info.max_time).total_seconds()))

    def on_pass(self, report: PassReport) -> None:
        now = utcnow()  # the pass's state is committed: its alerts are firing for every reader
        for event in report.events:
            if event.event == "firing":
                self.fired.setdefault(event.labels["key"], now)

    def latencies(self, phase: str) -> list[float]:
        return [(self.fired[k] - t).total_seconds() for k, t in self.written.items()
                if k.startswith(phase) and k in self.fired]

    def ingest(self, phase: str) -> list[float]:
        return [lag for p, lag in self.lags if p == phase]


@pytest.mark.slow
def test_a_slow_rule_and_a_failing_rule_delay_neither_ingestion_nor_a_good_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    write_rule(rules, "good")  # fires on every new key, evaluated after each commit
    settings = rule_settings(rules).with_overrides({"store.flush_interval": "0.1s"}, source="test")
    with Store(tmp_path / "m.duckdb", settings=settings) as store, engine_for(store) as engine:
        feed = Feed(store)
        engine.listeners.append(feed.on_pass)
        store.add_hook(feed.on_commit)
        store.add_hook(engine.on_commit)
        engine.start_loop()
        feed.start()
        try:
            threading.Event().wait(6.0)
            write_rule(rules, "forever", FOREVER_SQL)  # 2 s budget, the default
            write_rule(rules, "broken", "SELECT error('fails at every pass') AS value")
            assert wait_until(lambda: {"forever", "broken"} <= set(engine.rules), 10)
            feed.phase = "bad"
            threading.Event().wait(12.0)
        finally:
            feed.stop()
        assert wait_until(lambda: all(k in feed.fired for k in feed.written), 10)
        store.flush()
        status = {r[0]: r[1:] for r in store.query("SELECT name, state, error, failures, lane FROM rules")}
        health = engine.health_rows()

    base, bad = feed.latencies("baseline"), feed.latencies("bad")
    assert len(base) >= 8 and len(bad) >= 16  # every key fired (checked above), one per tick
    assert p90(bad) <= p90(base) + TICK, (base, bad)
    assert p90(feed.ingest("bad")) <= p90(feed.ingest("baseline")) + TICK
    state, error, failures, lane = status["forever"]
    assert (state, lane) == ("errored", "slow") and "budget" in error
    # 12 s at 2 s a run, backing off 1, 2, 4 s: 3 runs, not the 6 it would cost re-run at every pass
    assert 2 <= failures <= 4
    state, error, failures, lane = status["broken"]
    assert state == "errored" and "fails at every pass" in error and lane == "inline"
    assert 3 <= failures <= 6  # backed off 1, 2, 4, 8 s: not once per pass (about 50 passes)
    assert status["good"][:2] == ("ok", None)
    assert [r for r in health if r.component == "rule_engine"] == [("rule_engine", "ok", "evaluating on its own thread")]


def test_engine_passes_wait_for_no_commit_and_no_rule_blocks_the_writer(tmp_path: Path) -> None:
    """A rule running on the engine's thread does not hold the writer: a commit completes meanwhile."""
    rules = tmp_path / "rules"
    write_rule(rules, "forever", FOREVER_SQL, timeout="3s")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(rules)) as store, engine_for(store) as engine:
        running = threading.Thread(target=engine.run, daemon=True)  # full budget, inline: 3 s on this thread
        running.start()
        assert wait_until(lambda: engine.watchdog.active() > 0, 5)  # the rule's query is running now
        store.write([trigger(utcnow(), 1)])
        store.flush(timeout=2.0)  # committed while the rule still runs (it has 3 s)
        assert running.is_alive()
        running.join(10)
        assert store.query("SELECT count(*) FROM samples_raw")[0][0] == 1
        assert store.query("SELECT state FROM rules WHERE name = 'forever'") == [("errored",)]
