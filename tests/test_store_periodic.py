"""Periodic owner work rides on commits due anyway: deferred writer tasks, aligned rollups, owner threads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from store_helpers import isolated_settings

from monitorkit.errors import ConfigError
from monitorkit.owner.scheduler import Scheduler
from monitorkit.samples import Sample
from monitorkit.store import Store

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def tick(i: int, n: int = 5) -> list[Sample]:
    """Return one tick of ``n`` samples at T0 + i seconds."""
    return [Sample(T0 + timedelta(seconds=i), "periodic_test", {"i": str(k)}, float(i), "h") for k in range(n)]


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Return the rows of ``table`` as the write connection sees them."""
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def test_a_deferred_task_waits_for_the_next_commit_and_sees_everything_before_it(tmp_path: Path) -> None:
    with Store(tmp_path / "m.duckdb", settings=isolated_settings()) as store:
        store.writer.set_flush_interval(3600)  # never due by time within this test
        store.write(tick(0))
        future = store.submit(lambda con: count(con, "samples_raw"), urgent=False)
        store.write(tick(1))
        assert not future.done()  # no commit forced
        assert store.writer.batches == 0
        store.flush()
        assert future.result(timeout=10) == 10  # ran after both ticks were committed
        assert store.writer.batches == 1  # and they shared one commit


def test_an_urgent_task_still_commits_at_once(tmp_path: Path) -> None:
    with Store(tmp_path / "m.duckdb", settings=isolated_settings()) as store:
        store.writer.set_flush_interval(3600)
        store.write(tick(0))
        assert store.submit(lambda con: count(con, "samples_raw")).result(timeout=10) == 5
        assert store.writer.batches == 1


def test_a_deferred_task_alone_runs_when_the_interval_is_due(tmp_path: Path) -> None:
    with Store(tmp_path / "m.duckdb", settings=isolated_settings()) as store:
        store.writer.set_flush_interval(0.05)
        future = store.submit(lambda con: "ran", urgent=False)
        assert future.result(timeout=10) == "ran"


def test_rollup_soon_rolls_up_after_the_next_commit_without_forcing_one(tmp_path: Path) -> None:
    with Store(tmp_path / "m.duckdb", settings=isolated_settings(**{"store.rollup_lateness": "5s"})) as store:
        store.writer.set_flush_interval(3600)
        for i in range(0, 60, 10):
            store.write(tick(i))
        future = store.rollup_soon(T0 + timedelta(minutes=1, seconds=6))
        assert not future.done() and store.writer.batches == 0
        store.flush()
        assert future.result(timeout=10) == {"1m": 5, "1h": 0}
        assert store.writer.batches == 1
        assert store.query("SELECT count(*), sum(count) FROM samples_1m") == [(5, 30)]


def test_scheduler_rollups_come_just_after_each_minute_closes(tmp_path: Path) -> None:
    settings = isolated_settings(**{"store.rollup_every": "1m", "store.rollup_lateness": "5s"})
    with Store(tmp_path / "m.duckdb", settings=settings) as store:
        wall = [T0 + timedelta(seconds=30)]
        mono = [1000.0]
        sched = Scheduler(store, [], clock=lambda: mono[0], now=lambda: wall[0])
        assert sched._next_rollup == 1035.0  # 12:01:05, not 12:01:30
        assert sched._rollup_due(0.0, T0 + timedelta(seconds=5)) == 60.0  # on the mark: the next one
        assert sched._rollup_due(0.0, T0 + timedelta(seconds=4)) == 1.0


def test_the_scheduler_rollup_adds_no_commit(tmp_path: Path) -> None:
    settings = isolated_settings(**{"store.rollup_every": "1m", "store.rollup_lateness": "5s"})
    with Store(tmp_path / "m.duckdb", settings=settings) as store:
        store.writer.set_flush_interval(3600)
        store.write(tick(0))
        wall = [T0 + timedelta(seconds=30)]
        mono = [0.0]
        sched = Scheduler(store, [], clock=lambda: mono[0], now=lambda: wall[0])
        sched._next_retention = float("inf")
        wall[0], mono[0] = T0 + timedelta(minutes=1, seconds=5), 35.0
        sched.run_once()  # due: queues the rollup behind the next commit
        assert store.writer.batches == 0
        store.flush()
        assert store.writer.batches == 1  # the scheduler's own samples and tick 0, together
        assert store.query("SELECT count(*) FROM samples_1m WHERE bucket = ?", [T0]) == [(5,)]
        assert sched._next_rollup == 95.0


def test_the_owner_runs_duckdb_on_store_threads(tmp_path: Path) -> None:
    with Store(tmp_path / "a.duckdb", settings=isolated_settings(**{"store.threads": 1})) as store:
        assert store.query("SELECT current_setting('threads')") == [(1,)]
    default = duckdb.connect().execute("SELECT current_setting('threads')").fetchall()
    with Store(tmp_path / "b.duckdb", settings=isolated_settings(**{"store.threads": 0})) as store:
        assert store.query("SELECT current_setting('threads')") == default
    with pytest.raises(ConfigError, match=r"store\.threads"):
        Store(tmp_path / "c.duckdb", settings=isolated_settings(**{"store.threads": "many"}))
