"""Compaction reorders closed hours and days of samples_raw by series without changing any row a reader sees."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_helpers import isolated_settings, read_line, run_python, spawn_python

import monitorkit
from monitorkit import Sample, Store
from monitorkit.store.compaction import floor_period

DAY0 = datetime(2025, 6, 1, tzinfo=UTC)
SERIES = [
    ("cpu_percent", {"cpu": "0"}),
    ("cpu_percent", {"cpu": "1"}),
    ("net_bytes_recv_total", {"nic": "eth0"}),
    ("mem_used_bytes", {}),
]
# Everything a reader can ask of the raw tier, each sorted so that row order does not matter.
READER_QUERIES = {
    "raw": "SELECT time, series_id, value FROM samples_raw ORDER BY ALL",
    "samples": "SELECT time, host, name, labels::VARCHAR, value, series_id FROM samples ORDER BY ALL",
    "latest": "SELECT host, name, labels::VARCHAR, time, value FROM latest ORDER BY ALL",
    "counter_rates": "SELECT time, name, labels::VARCHAR, rate FROM counter_rates ORDER BY ALL",
    "tier_status": "SELECT * FROM tier_status ORDER BY tier",
    "metric_range": (
        "SELECT time, host, labels::VARCHAR, avg, min, max, count, tier FROM metric_range("
        "'cpu_percent', TIMESTAMPTZ '2025-06-01 00:30:00+00', TIMESTAMPTZ '2025-06-01 05:30:00+00', step := 60) "
        "ORDER BY time, labels::VARCHAR"
    ),
}


def samples_every(start: datetime, seconds: int, step: int = 10, offset_us: int = 0) -> list[Sample]:
    """Return SERIES sampled every ``step`` s from ``start`` for ``seconds`` (the counter grows)."""
    out = []
    for i in range(0, seconds, step):
        t = start + timedelta(seconds=i, microseconds=offset_us)
        for k, (name, labels) in enumerate(SERIES):
            value = float(i * 3 + k) if name.endswith("_total") else round((i * 7919 + k * 31) % 1000 / 10, 1)
            out.append(Sample(t, name, labels, value))
    return out


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Return every reader query's rows."""
    return {name: store.query(sql) for name, sql in READER_QUERIES.items()}


def physical(store: Store, start: datetime, end: datetime) -> list[tuple[int, datetime]]:
    """Return (series_id, time) of the rows in ``[start, end)`` in their physical (rowid) order."""
    rows = store.query(
        "SELECT series_id, time FROM samples_raw WHERE time >= ? AND time < ? ORDER BY rowid", [start, end]
    )
    return [(r[0], r[1]) for r in rows]


def mark_of(store: Store, level: str) -> datetime | None:
    """Return the compaction watermark of ``level``."""
    rows = store.query("SELECT watermark FROM compaction_state WHERE level = ?", [level])
    return rows[0][0] if rows else None


def open_store(path: Path, **overrides: Any) -> Store:
    return Store(path, settings=isolated_settings(**overrides))


def test_closed_hours_are_sorted_by_series_and_readers_see_the_same_rows(tmp_db: Path) -> None:
    with open_store(tmp_db) as store:
        store.write(samples_every(DAY0, 3 * 3600 + 600, offset_us=250))
        store.flush()
        before = snapshot(store)
        hour = timedelta(hours=1)
        assert physical(store, DAY0, DAY0 + hour) != sorted(physical(store, DAY0, DAY0 + hour))
        done = store.compact(DAY0 + 3 * hour + timedelta(seconds=6))
        assert (done.hours, done.days) == (3, 0)
        assert done.rows == 3 * 360 * len(SERIES)
        for h in range(3):
            part = physical(store, DAY0 + h * hour, DAY0 + (h + 1) * hour)
            assert part == sorted(part) and len(part) == 360 * len(SERIES)
        # The open hour stays in append order.
        tail = physical(store, DAY0 + 3 * hour, DAY0 + 4 * hour)
        assert tail != sorted(tail)
        assert snapshot(store) == before
        assert mark_of(store, "1h") == DAY0 + 3 * hour


def test_compaction_is_idempotent_and_a_closed_day_is_rewritten_once(tmp_db: Path) -> None:
    with open_store(tmp_db) as store:
        store.write(samples_every(DAY0 - timedelta(hours=2), 5 * 3600, step=30))
        store.flush()
        before = snapshot(store)
        now = DAY0 + timedelta(hours=3, minutes=1)
        first = store.compact(now)
        # The day before DAY0 is closed: one day rewrite, no separate hours for it; then 3 hours of DAY0.
        assert (first.days, first.hours) == (1, 3)
        layout = store.query("SELECT rowid, series_id, time FROM samples_raw ORDER BY rowid")
        assert store.compact(now) == (0, 0, 0)
        assert store.compact(now + timedelta(seconds=2)) == (0, 0, 0)
        assert store.query("SELECT rowid, series_id, time FROM samples_raw ORDER BY rowid") == layout
        assert snapshot(store) == before
        day = physical(store, DAY0 - timedelta(hours=2), DAY0)
        assert day == sorted(day)


def test_rollup_queues_compaction_and_writes_during_it_are_kept(tmp_db: Path) -> None:
    with open_store(tmp_db) as store:
        store.write(samples_every(DAY0, 2 * 3600, step=5))
        store.flush()
        now = DAY0 + timedelta(hours=2, seconds=30)
        assert store.rollup(now)["1m"] > 0
        # Queued behind the compaction: fresh samples and a late one for a compacted hour.
        late = Sample(DAY0 + timedelta(minutes=10, microseconds=1), "cpu_percent", {"cpu": "0"}, 99.5)
        fresh = samples_every(DAY0 + timedelta(hours=2), 30, step=1)
        store.write([late, *fresh])
        store.flush()
        assert store.compaction_error is None
        assert store.last_compaction is not None and store.last_compaction.hours == 2
        total = 2 * 3600 // 5 * len(SERIES) + 1 + len(fresh)
        assert store.query("SELECT count(*) FROM samples_raw") == [(total,)]
        assert store.query("SELECT value FROM samples WHERE time = ?", [late.time]) == [(99.5,)]
        newest = store.query("SELECT max(time) FROM latest")[0][0]
        assert newest == fresh[-1].time


def test_retention_after_compaction_cuts_exactly_at_the_limit(tmp_db: Path) -> None:
    now = DAY0 + timedelta(days=2, hours=5)
    cutoff = now - timedelta(days=1)
    edge = [cutoff - timedelta(microseconds=1), cutoff, cutoff + timedelta(microseconds=1)]
    with open_store(tmp_db, **{"retention.raw": "1d"}) as store:
        store.write(samples_every(DAY0, 2 * 86400, step=600))
        store.write([Sample(t, "edge_gauge", {}, float(i)) for i, t in enumerate(edge)])
        store.flush()
        expected = store.query("SELECT count(*) FROM samples_raw WHERE time >= ?", [cutoff])[0][0]
        done = store.compact(now)
        assert done.days == 2
        deleted = store.enforce_retention(now)
        assert deleted["raw"] > 0
        assert store.query("SELECT min(time), count(*) FROM samples_raw") == [(cutoff, expected)]
        assert store.query("SELECT time FROM samples WHERE name = 'edge_gauge' ORDER BY time") == [
            (cutoff,), (edge[2],)
        ]


def test_file_size_stays_bounded_over_repeated_compactions(tmp_db: Path) -> None:
    day_rows = 50 * 8640  # 50 series every 10 s

    def add_day(con: Any, start: datetime) -> None:
        con.execute(
            """INSERT INTO samples_raw
               SELECT t, s::INTEGER, round(50 + 20 * sin(epoch(t) / 600 + s) + random(), 1)
               FROM range(?::TIMESTAMPTZ, ?::TIMESTAMPTZ + INTERVAL 1 DAY, INTERVAL 10 SECOND) r(t),
                    range(1, 51) i(s)
               ORDER BY t, s""",
            [start, start],
        )

    sizes = []
    with open_store(tmp_db, **{"retention.raw": "2d"}) as store:
        for day in range(10):
            start = DAY0 + timedelta(days=day)
            store.submit(lambda con, start=start: add_day(con, start)).result()  # type: ignore[misc]
            now = start + timedelta(days=1, minutes=1)
            assert store.compact(now).days == 1
            store.enforce_retention(now)
            store.submit(lambda con: con.execute("CHECKPOINT")).result()
            sizes.append(tmp_db.stat().st_size)
        kept = store.query("SELECT count(*) FROM samples_raw")[0][0]
    assert kept == 2 * day_rows - 6 * 50  # retention cut 2 days before now = 1 minute into the day
    # Without reuse of the freed blocks the file would grow by one day's rewrite every cycle.
    assert max(sizes[5:]) <= sizes[4] * 1.25, sizes
    assert sizes[-1] < 6 * day_rows * 8, sizes


def test_a_file_from_before_migration_5_is_migrated_and_compacted_on_first_pass(tmp_db: Path) -> None:
    with open_store(tmp_db) as store:
        store.write(samples_every(DAY0, 3600, step=2))
        store.flush()
        assert store.query("SELECT count(*) FROM compaction_state") == [(0,)]
        before = snapshot(store)
    # Make it the file an older monitorkit wrote: no compaction table, migration 5 not recorded.
    con = duckdb.connect(str(tmp_db))
    con.execute("DROP TABLE compaction_state")
    con.execute("DELETE FROM _migrations WHERE number = 5")
    con.close()
    with open_store(tmp_db) as store:
        assert store.query("SELECT number FROM _migrations WHERE number = 5") == [(5,)]
        assert snapshot(store) == before
        assert store.compact(DAY0 + timedelta(days=3)).days == 1
        assert snapshot(store) == before
        # At DAY0 + 3 d the last closed day ends at DAY0 + 2 d (its last hour closes 5 s later).
        assert mark_of(store, "1d") == DAY0 + timedelta(days=2)
        day = physical(store, DAY0, DAY0 + timedelta(days=1))
        assert day == sorted(day)


def test_floor_period_is_utc_aligned() -> None:
    t = datetime(2025, 6, 1, 13, 59, 59, 999_999, tzinfo=UTC)
    assert floor_period(t, timedelta(hours=1)) == datetime(2025, 6, 1, 13, tzinfo=UTC)
    assert floor_period(t, timedelta(days=1)) == DAY0


# A child that compacts through a connection which SIGKILLs the process at the first COMMIT
# after the rewrite's DELETE: the transaction holds the copy and the delete, but never commits.
KILL_CHILD = """
    import os, signal, sys
    from datetime import datetime, timedelta, timezone
    from monitorkit import Sample, Store
    from monitorkit.store.compaction import compact

    class KillAtCommit:
        def __init__(self, con):
            self.con, self.deleted = con, False
        def execute(self, sql, params=None):
            if sql.startswith("DELETE"):
                self.deleted = True
            if sql == "COMMIT" and self.deleted:
                os.kill(os.getpid(), signal.SIGKILL)
            return self.con.execute(sql, params or [])

    day = datetime(2025, 6, 1, tzinfo=timezone.utc)
    store = Store(sys.argv[1])
    store.write([Sample(day + timedelta(seconds=i), "m", {"k": str(i % 7)}, float(i)) for i in range(20000)])
    store.flush()
    store.submit(lambda con: con.execute("CHECKPOINT")).result()
    print("written", flush=True)
    store.submit(lambda con: compact(KillAtCommit(con), day + timedelta(days=2))).result()
    print("not killed", flush=True)
"""


@pytest.mark.slow
def test_sigkill_inside_a_compaction_loses_nothing(tmp_db: Path) -> None:
    result = run_python(KILL_CHILD, str(tmp_db), cwd=tmp_db.parent)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert "written" in result.stdout and "not killed" not in result.stdout
    with open_store(tmp_db) as store:
        assert store.query("SELECT count(*), sum(value), count(DISTINCT time) FROM samples_raw") == [
            (20000, float(sum(range(20000))), 20000)
        ]
        assert store.query("SELECT count(*) FROM compaction_state") == [(0,)]
        assert store.compact(DAY0 + timedelta(days=2)).rows == 20000
        assert store.query("SELECT count(*), sum(value) FROM samples_raw") == [(20000, float(sum(range(20000))))]


@st.composite
def sample_sets(draw: st.DrawFn) -> list[Sample]:
    """Draw samples of a few series at arbitrary microsecond times over two days.

    One sample per (series, time): with two, which is "latest" or "last" is undefined in
    either layout (arg_max and window ties), so comparing them would test DuckDB, not compaction.
    """
    offsets = draw(st.lists(st.integers(0, 2 * 86_400_000_000 - 1), min_size=1, max_size=300))
    out = {}
    for off in offsets:
        k = draw(st.integers(0, len(SERIES) - 1))
        # Halves up to 1e12: any order of summing them is exact, so averages compare equal.
        value = draw(st.integers(-(2 * 10**12), 2 * 10**12).map(lambda x: x / 2) | st.sampled_from([0.0, 1.5, 42.0]))
        out[(k, off)] = Sample(DAY0 + timedelta(microseconds=off), SERIES[k][0], SERIES[k][1], value)
    return list(out.values())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=sample_sets(), hours=st.integers(0, 60))
def test_property_compaction_never_changes_what_readers_see(tmp_path: Path, samples: list[Sample], hours: int) -> None:
    db = tmp_path / f"p{abs(hash((len(samples), hours)))}.duckdb"
    db.unlink(missing_ok=True)
    with open_store(db) as store:
        store.write(samples)
        store.flush()
        before = snapshot(store)
        now = DAY0 + timedelta(hours=hours, seconds=7)
        store.compact(now)
        assert snapshot(store) == before
        upper = floor_period(now - timedelta(seconds=5), timedelta(hours=1))
        mark = mark_of(store, "1h")
        if mark is not None:
            # Every closed hour with rows is in (series_id, time) order on disk.
            for h in range(int((upper - DAY0) / timedelta(hours=1))):
                part = physical(store, DAY0 + timedelta(hours=h), DAY0 + timedelta(hours=h + 1))
                assert part == sorted(part)
    db.unlink(missing_ok=True)


OWNER_CHILD = """
    import sys
    from monitorkit import Owner
    owner = Owner(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    owner.close()
"""


@pytest.mark.slow
def test_remote_readers_see_the_compacted_rows_through_the_owner(tmp_db: Path) -> None:
    with open_store(tmp_db) as store:
        store.write(samples_every(DAY0, 6 * 3600, step=20))
        store.flush()
        before = snapshot(store)
        assert store.compact(DAY0 + timedelta(days=1, hours=1)).days == 1
    owner = spawn_python(OWNER_CHILD, str(tmp_db), cwd=tmp_db.parent)
    try:
        read_line(owner, "ready")
        con = monitorkit.connect(tmp_db)
        assert type(con).__name__ == "RemoteConnection"
        remote = {name: con.execute(sql).fetchall() for name, sql in READER_QUERIES.items()}
        con.close()
    finally:
        assert owner.stdin is not None
        owner.stdin.write("stop\n")
        owner.stdin.close()
        owner.wait(timeout=60)
    assert remote == before
