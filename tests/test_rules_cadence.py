"""Commits evaluate only the rules that are due: `every:` rules wait, every-commit rules run each time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from rules_helpers import engine_for, rule_settings, write_rule

from monitorkit.rules.engine import Engine
from monitorkit.store import Store


def commit(store: Store, engine: Engine) -> None:
    """Run the engine's commit hook in the writer thread, as the store does after a batch."""
    store.submit(lambda con: engine.on_commit()).result()


def test_a_commit_with_no_rule_due_evaluates_nothing(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "slow_cadence", every="1h")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        commit(store, engine)
        assert engine.passes == 1  # never evaluated yet: due
        commit(store, engine)
        commit(store, engine)
        assert engine.passes == 1  # due again in an hour: the commits skip the pass


def test_a_rule_without_every_is_evaluated_after_each_commit(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "slow_cadence", every="1h")
    write_rule(tmp_path / "rules", "each_commit")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        for _ in range(3):
            commit(store, engine)
        assert engine.passes == 3
        assert engine.status["each_commit"].last_eval > engine.status["slow_cadence"].last_eval


def test_every_rules_due_together_are_spread_over_the_next_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitorkit.rules import engine as engine_module

    monkeypatch.setattr(engine_module, "SPREAD_BUDGET", 0.0)  # one `every:` rule per live pass
    for name in ("first", "second"):
        write_rule(tmp_path / "rules", name, every="1h")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        commit(store, engine)  # never evaluated: both run at once
        long_ago = engine.status["first"].last_eval - timedelta(hours=2)
        for name in ("first", "second"):
            engine.status[name] = engine.status[name]._replace(last_eval=long_ago)
        commit(store, engine)
        assert [engine.status[n].last_eval > long_ago for n in ("first", "second")] == [True, False]
        commit(store, engine)
        assert engine.status["second"].last_eval > long_ago  # its turn came on the next commit
        assert engine.run().evaluated == 0  # run() (tools, tests) evaluates whatever is due: nothing now
