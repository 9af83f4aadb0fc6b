"""Commits evaluate only the rules that are due: `every:` rules wait, every-commit rules run each time.

The engine runs on a FakeClock here: time moves only when the test says so.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from rules_helpers import FakeClock, engine_for, rule_settings, write_rule

from monitorkit.rules.engine import Engine
from monitorkit.store import Store


def commit(store: Store, engine: Engine) -> None:
    """Run the engine's commit hook in the writer thread, as the store does after a batch."""
    store.submit(lambda con: engine.on_commit()).result()


def test_a_commit_with_no_rule_due_evaluates_nothing(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "slow_cadence", every="1h")
    clock = FakeClock()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        commit(store, engine)
        assert engine.passes == 1  # never evaluated yet: due
        for _ in range(3):
            clock.advance(1)
            commit(store, engine)
        assert engine.passes == 1  # due again in an hour: the commits skip the pass
        clock.advance(3600)
        commit(store, engine)
        assert engine.passes == 2
        assert engine.status["slow_cadence"].last_eval == clock.utcnow()


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
    from monitorkit.rules import engine as engine_module

    monkeypatch.setattr(engine_module, "SPREAD_BUDGET", 0.0)  # one `every:` rule per live pass
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
        assert engine.status["second"].last_eval == clock.utcnow()  # its turn came on the next commit
        assert engine.run().evaluated == 0  # run() (tools, tests) evaluates whatever is due: nothing now
