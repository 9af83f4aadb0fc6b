"""Commits evaluate only the rules that are due: `every:` rules wait, every-commit rules run each time.

The engine runs on a FakeClock here: time moves only when the test says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rules_helpers import FakeClock, engine_for, rule_settings, trigger, write_rule

from monitorkit.rules.engine import Engine
from monitorkit.rules.state import PassReport
from monitorkit.store import Store


def commit(store: Store, engine: Engine) -> PassReport | None:
    """Commit, then run the pass the commit wakes the engine's loop for."""
    store.flush()
    engine.on_commit()
    return engine.step()


def test_a_commit_with_no_rule_due_evaluates_nothing(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "slow_cadence", every="1h")
    clock = FakeClock()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        start = clock.utcnow()
        commit(store, engine)
        assert engine.passes == 1  # never evaluated yet: due
        for _ in range(3):
            clock.advance(1)
            commit(store, engine)
        assert engine.passes == 1  # due again in an hour: the commits skip the pass
        clock.advance(3600)
        commit(store, engine)
        assert engine.passes == 2
        assert engine.status["slow_cadence"].last_eval == start + timedelta(hours=1)  # at its step, not late


def test_a_rule_without_every_is_evaluated_after_each_commit(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "slow_cadence", every="1h")
    write_rule(tmp_path / "rules", "each_commit")
    clock = FakeClock()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        first = clock.utcnow()
        for _ in range(3):
            commit(store, engine)
            clock.advance(1)
        assert engine.passes == 3
        assert engine.status["each_commit"].last_eval == first + timedelta(seconds=2)  # the third commit
        assert engine.status["slow_cadence"].last_eval == first


def test_every_rules_due_together_are_spread_over_the_next_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitorkit.rules import evaluation

    monkeypatch.setattr(evaluation, "SPREAD_BUDGET", 0.0)  # one `every:` rule per live pass
    for name in ("first", "second"):
        write_rule(tmp_path / "rules", name, every="1h")
    clock = FakeClock()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        commit(store, engine)  # never evaluated: both run at once
        start = clock.utcnow()
        assert [engine.status[n].last_eval for n in ("first", "second")] == [start, start]
        clock.advance(2 * 3600)
        commit(store, engine)
        assert [engine.status[n].last_eval == clock.utcnow() for n in ("first", "second")] == [True, False]
        clock.advance(1)
        commit(store, engine)
        assert engine.status["second"].last_eval == start + timedelta(hours=2)  # its turn came on the next commit
        assert engine.run().evaluated == 0  # run() (tools, tests) evaluates whatever is due: nothing now


def test_an_every_rule_fires_exactly_its_for_after_the_condition_started_whatever_the_commit_jitter(
        tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "hot", every="1m", for_="2m")
    clock = FakeClock()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        start = clock.utcnow()
        store.write([trigger(start + timedelta(seconds=s), 80) for s in range(0, 240, 10)])
        for _ in range(300):  # a commit every 0.7 s: the steps of the rule never coincide with one
            commit(store, engine)
            clock.advance(0.7)
        [(since, fired)] = store.query("SELECT since, fired_at FROM alerts WHERE rule = 'hot'")
    assert since == start and fired == start + timedelta(minutes=2)  # not one evaluation late (3 min)


def test_an_errored_rule_backs_off_exponentially_and_the_rules_table_says_so(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "broken", "SELECT 1 / 0 AS value, error('always fails') AS x")
    write_rule(tmp_path / "rules", "good")
    clock = FakeClock()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        start = clock.utcnow()
        runs: list[tuple[datetime, datetime]] = []
        for _ in range(80):  # 8 s of commits every 0.1 s
            commit(store, engine)
            broken, good = engine.status["broken"].last_eval, engine.status["good"].last_eval
            assert broken is not None and good is not None
            runs.append((broken, good))
            clock.advance(0.1)
        broken_runs = sorted({b for b, _ in runs})
        assert [round((t - start).total_seconds(), 1) for t in broken_runs] == [0.0, 1.0, 3.0, 7.0]  # 1, 2, 4 s
        assert len({g for _, g in runs}) == 80  # the good rule ran after every commit meanwhile
        store.flush()
        [(state, error, failures, retry_at)] = store.query(
            "SELECT state, error, failures, retry_at FROM rules WHERE name = 'broken'")
    assert state == "errored" and failures == 4 and retry_at == start + timedelta(seconds=15)
    assert "always fails" in error and "failed 4 times in a row; next try in 8 s" in error


def test_a_new_group_is_notified_group_wait_after_it_fired_on_a_timer_not_at_the_next_commit(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "hot")
    clock = FakeClock()
    # the shipped [alerting] timing (group_wait 250 ms); no file polling timer in the way
    settings = rule_settings(tmp_path / "rules").with_overrides({"rules.poll": "1h"}, source="test")
    with Store(tmp_path / "m.duckdb", settings=settings) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        assert engine.alerting.root.group_wait == timedelta(milliseconds=250)
        store.write([trigger(clock.utcnow(), 80)])
        report = commit(store, engine)
        assert report is not None and [e.event for e in report.events] == ["pending", "firing"]
        assert report.notifications == []  # group_wait has not passed
        assert engine._next_wake() == pytest.approx(clock.monotonic() + 0.25)  # the loop's timer: no commit needed
        clock.advance(0.25)
        report = engine.step()  # what that timer runs
        assert report is not None and [n.alerts[0].rule for n in report.notifications] == ["hot"]


def test_the_rules_table_keeps_last_eval_of_every_rules_fresh(tmp_path: Path) -> None:
    # every: rules run in their own half of a pass: the periodic status write must not miss them
    write_rule(tmp_path / "rules", "minutely", every="1m")
    write_rule(tmp_path / "rules", "each_commit")
    clock = FakeClock()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        for _ in range(60):  # ten minutes of commits every 10 s
            commit(store, engine)
            clock.advance(10)
        store.flush()
        stored = dict(store.query("SELECT name, last_eval FROM rules"))
    # written at least every 30 s from what was evaluated since: at most 30 s + one step behind the engine
    assert clock.utcnow() - stored["minutely"] <= timedelta(seconds=100)
    assert clock.utcnow() - stored["each_commit"] <= timedelta(seconds=40)
