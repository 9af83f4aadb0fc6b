"""A file written by the last main before the package redesign (7775c0e) opens with today's code without loss.

The fixture ``tests/fixtures/old_layout_7775c0e.duckdb.gz`` was made with that commit's own code
(CI clones main only, so the old code cannot be run at test time and the file is committed):

    git archive 7775c0e | tar -x -C /tmp/oldmain
    .venv/bin/python tools/make_old_layout_fixture.py /tmp/oldmain

The script (its docstring says each step) ran, with PYTHONPATH=/tmp/oldmain: ``monitorkit layouts
import --default`` (a saved layout), ``monitorkit collect --duration 70`` with the shipped rules and
a rule ``fixture_queue_deep`` that fired at once, an instrumented application (counter, gauge,
histogram, one tracked exchange, two tool runs, a heartbeat), then ``monitorkit alerts ack`` and
``monitorkit alerts silence``. The old file carries migrations 1-5, 10, 20-23, 40-41 and the unused
``settings_kv`` table that migration 6 drops.
"""

from __future__ import annotations

import gzip
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from rules_helpers import rule_settings, write_rule

from monitorkit.owner.connect import connect
from monitorkit.owner.owner import Owner
from monitorkit.owner.schema import SCHEMA
from monitorkit.rules.engine import Engine
from monitorkit.samples import Sample

FIXTURE = Path(__file__).parent / "fixtures" / "old_layout_7775c0e.duckdb.gz"
OLD_MIGRATIONS = [1, 2, 3, 4, 5, 10, 20, 21, 22, 23, 40, 41]
# The rule the fixture's owner ran, as its file said (tools/make_old_layout_fixture.py).
RULE = """
SELECT host, labels['queue'] AS queue, last AS value
FROM gauge_window('fixture_queue_depth', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE last > 50
"""


def tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Return each base table of the file with its columns, in order."""
    out: dict[str, list[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND NOT internal AND table_name IN (SELECT table_name FROM duckdb_tables()) "
        "ORDER BY table_name, column_index"
    ).fetchall():
        out.setdefault(table, []).append(column)
    return out


def views(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Return the names of the file's own views."""
    return {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def contents(con: duckdb.DuckDBPyConnection, layout: dict[str, list[str]]) -> dict[str, Counter[str]]:
    """Return every row of every table in ``layout`` (only its columns), as a multiset of their text."""
    out = {}
    for table, columns in layout.items():
        cols = ", ".join(f'"{c}"' for c in columns)
        out[table] = Counter(repr(tuple(map(plain, row))) for row in con.execute(f"SELECT {cols} FROM {table}").fetchall())
    return out


def plain(value: Any) -> Any:
    """Return ``value`` with its time zone object left out (each connection names UTC its own way)."""
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    """Return a fresh copy of the old file (the test changes it)."""
    db = tmp_path / "monitorkit.duckdb"
    with gzip.open(FIXTURE, "rb") as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return db


def test_an_old_layout_file_migrates_without_loss_and_stays_usable(old_file: Path, tmp_path: Path) -> None:
    con = duckdb.connect(str(old_file), read_only=True)
    try:
        old_layout = tables(con)
        before = contents(con, old_layout)
        old_views = views(con)
        assert [r[0] for r in con.execute("SELECT number FROM _migrations ORDER BY 1").fetchall()] == OLD_MIGRATIONS
    finally:
        con.close()
    # What the fixture holds, so a remade fixture that lost a part fails here, not silently.
    held = {t: sum(c.values()) for t, c in before.items()}
    for table in ("alerts", "alert_events", "silences", "notifications", "notify_groups", "layouts", "rules",
                  "executions", "heartbeats", "health_status", "health_history", "series", "samples_raw",
                  "samples_1m", "rollup_state"):
        assert held[table] > 0, f"the fixture has no {table} rows: remake it"
    assert "settings_kv" in old_layout

    rules = tmp_path / "rules"
    write_rule(rules, "fixture_queue_deep", RULE, for_="0s", every="1s",
               summary="queue {{ queue }} on {{ host }} is {{ value }} deep")
    settings = rule_settings(rules, defaults=True)
    with Owner(old_file, settings=settings) as owner:  # as `monitorkit collect` opens it
        store = owner.store
        cur = store.cursor()
        new_layout = tables(cur)

        # Every row of every old table is still there, column for column (new columns may be added).
        dropped = set(old_layout) - set(new_layout)
        assert dropped == {"settings_kv"}
        for table, columns in old_layout.items():
            if table in dropped:
                continue
            assert set(columns) <= set(new_layout[table]), f"{table} lost columns"
            after = contents(cur, {table: columns})[table]
            missing = before[table] - after
            assert not missing, f"{table} lost {sum(missing.values())} of {held[table]} rows: {list(missing)[:3]}"
        assert old_views <= views(cur)

        # Sample values, read back the way readers see them.
        ((alert_id, state, value, acked_by, comment, queue, host),) = store.query(
            "SELECT id, state, value, acked_by, ack_comment, labels['queue'], labels['host'] FROM alerts "
            "WHERE rule = 'fixture_queue_deep'")
        assert (state, value, acked_by, comment, queue) == ("resolved", 85.0, "ada", "draining", "a")
        assert store.query("SELECT matchers, created_by, comment FROM silences") == [("queue=a", "ada", "maintenance")]
        assert store.query("SELECT name, is_default FROM layouts") == [("fixture", True)]
        assert sorted(store.query("SELECT outcome, error_type, labels['size'] FROM executions")) == [
            ("error", "ValueError", "huge"), ("ok", None, "big")]
        assert store.query("SELECT component, status FROM heartbeats") == [("fixture_worker", "ok")]
        depth = store.query(
            "SELECT max(value) FROM samples WHERE name = 'fixture_queue_depth' AND labels['queue'] = 'a'")
        assert depth == [(85.0,)]

        # Today's schema is in place: the same tables and columns as a file today's owner creates.
        applied = [r[0] for r in store.query("SELECT number FROM _migrations ORDER BY 1")]
        assert applied == sorted(n for s in SCHEMA for n, _, _ in s.steps)
        with Owner(tmp_path / "fresh.duckdb", settings=settings, serve=False) as fresh:
            fresh_cur = fresh.store.cursor()
            assert new_layout == tables(fresh_cur)
            schema_views = views(fresh_cur)
        # Beyond the schema's views the file holds only the rule engine's own (alert_<rule>, health_<rule>).
        names = {r[0] for r in store.query("SELECT name FROM rules")}
        assert schema_views <= views(cur)
        assert views(cur) - schema_views <= {f"{kind}_{n}" for n in names for kind in ("alert", "health")}

        # Usable: a write, a rule pass over it (the acked alert's rule fires again), a reader's query.
        newest = store.query("SELECT max(time) FROM samples_raw")[0][0]
        at = newest + timedelta(seconds=5)
        # The application's own labels (the old sender added pid): the write lands on the old series.
        ((labels,),) = store.query("SELECT labels FROM series WHERE name = 'fixture_queue_depth'")
        store.write([Sample(at, "fixture_queue_depth", dict(labels), 95.0, host)])
        store.flush()
        engine = Engine(store, settings)
        engine.start()
        try:
            report = engine.run(at + timedelta(seconds=1))
        finally:
            engine.close()
        assert report is not None
        firing: list[Any] = store.query(
            "SELECT id, state, value FROM alerts WHERE rule = 'fixture_queue_deep' AND state = 'firing'")
        assert [(state, value) for _, state, value in firing] == [("firing", 95.0)]
        assert firing[0][0] == alert_id  # the same alert (rule and labels): its old history goes on
        assert [e for (e,) in store.query(
            "SELECT event FROM alert_events WHERE alert_id = ? ORDER BY time, rowid", [alert_id])][-3:] == [
            "resolved", "pending", "firing"]
        with connect(old_file) as reader:  # through the owner, as a notebook would
            assert reader.execute(
                "SELECT value FROM latest WHERE name = 'fixture_queue_depth'").fetchall() == [(95.0,)]
            assert reader.execute("SELECT count(*) FROM series WHERE name = 'fixture_queue_depth'").fetchall() == [(1,)]
