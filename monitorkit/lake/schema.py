"""The lake's tables and views: the local store's relations over every host, plus the shipping ledger.

DuckLake has no PRIMARY KEY or UNIQUE: series ids are a hash of host, name and labels (the
same on every host and after any restart), series are added with MERGE INTO, and every
table the hosts write to is append-only (concurrent UPDATEs and DELETEs conflict in DuckLake).
The views and macros are the store's and the rules' own DDL run in the lake, so a query or a
rule that works on one host's file works on the fleet unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping

import duckdb

from monitorkit.lake.catalog import ALIAS, is_conflict
from monitorkit.lake.errors import LakeError
from monitorkit.rules.schema import MACROS as RULE_MACROS
from monitorkit.store.schema import SCHEMA as STORE_SCHEMA

LakeMigration = Callable[[duckdb.DuckDBPyConnection], None]
# Store migrations that hold views and macros only: run in the lake as they are.
_STORE_VIEWS = (2, 3)


def series_key(host: str, name: str, labels: Mapping[str, str]) -> str:
    """Return the canonical text of a series: ``["host", "name", [["label", "value"], ...]]`` (labels sorted)."""
    return json.dumps([host, name, sorted(labels.items())], separators=(",", ":"))


_SERIES_BITS = 39  # low bits: the series within its metric; the 24 bits above them: the metric name


def series_id(host: str, name: str, labels: Mapping[str, str]) -> int:
    """Return the lake's id of a series: BLAKE2b of its name, then of its key; the same in every process.

    The metric's hash leads, so one metric's series have ids close together: in files sorted
    by series_id, a query for one metric reads only the row groups that hold it.
    """
    metric = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=3).digest(), "big")
    key = int.from_bytes(hashlib.blake2b(series_key(host, name, labels).encode(), digest_size=5).digest(), "big")
    return (metric << _SERIES_BITS) | (key & ((1 << _SERIES_BITS) - 1))


def _tables(con: duckdb.DuckDBPyConnection) -> None:
    # zstd Parquet of samples sorted by (series_id, time): about 1.8 bytes a sample (measured with DuckDB 1.5.5).
    con.execute(f"CALL {ALIAS}.set_option('parquet_compression', 'zstd')")
    con.execute(
        """
        CREATE TABLE series (
            series_id BIGINT NOT NULL, host VARCHAR NOT NULL, name VARCHAR NOT NULL,
            labels MAP(VARCHAR, VARCHAR) NOT NULL, series_key VARCHAR NOT NULL,
            shipper VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL
        )"""
    )
    con.execute("CREATE TABLE samples_raw (time TIMESTAMPTZ NOT NULL, series_id BIGINT NOT NULL, value DOUBLE NOT NULL)")
    for tier in ("1m", "1h"):
        con.execute(
            f"""
            CREATE TABLE samples_{tier} (
                bucket TIMESTAMPTZ NOT NULL, series_id BIGINT NOT NULL,
                min DOUBLE NOT NULL, max DOUBLE NOT NULL, sum DOUBLE NOT NULL,
                count BIGINT NOT NULL, last DOUBLE NOT NULL, last_time TIMESTAMPTZ NOT NULL
            )"""
        )
    con.execute(
        """
        CREATE TABLE executions (
            run_id VARCHAR NOT NULL, tool VARCHAR NOT NULL, started TIMESTAMPTZ NOT NULL,
            duration_s DOUBLE NOT NULL, outcome VARCHAR NOT NULL, error_type VARCHAR, error_message VARCHAR,
            labels MAP(VARCHAR, VARCHAR) NOT NULL, host VARCHAR NOT NULL, pid INTEGER NOT NULL,
            shipper VARCHAR NOT NULL
        )"""
    )
    # One row per shipped batch, appended in the batch's own transaction: a host's watermark is
    # max(upper), so a batch and its watermark are committed together or not at all.
    con.execute(
        """
        CREATE TABLE ship_log (
            shipper VARCHAR NOT NULL, lower TIMESTAMPTZ, upper TIMESTAMPTZ NOT NULL,
            samples BIGINT NOT NULL, series BIGINT NOT NULL, executions BIGINT NOT NULL,
            shipped_at TIMESTAMPTZ NOT NULL, seconds DOUBLE NOT NULL
        )"""
    )
    # The hub's rollup watermarks per tier and host, appended (the newest row counts).
    con.execute(
        """
        CREATE TABLE rollup_state (
            tier VARCHAR NOT NULL, shipper VARCHAR NOT NULL, watermark TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )"""
    )


def _store_views(con: duckdb.DuckDBPyConnection) -> None:
    steps = {number: fn for number, _name, fn in STORE_SCHEMA.steps}
    for number in _STORE_VIEWS:
        steps[number](con)
    for macro in RULE_MACROS:
        con.execute(macro)


def _fleet_views(con: duckdb.DuckDBPyConnection) -> None:
    # One row per host that ever shipped: how far its data reaches, when it last shipped.
    con.execute(
        """
        CREATE VIEW fleet_hosts AS
        SELECT shipper AS host, max(upper) AS shipped_through, max(shipped_at) AS last_ship,
               sum(samples) AS samples_logged, count(*) AS batches_logged,
               arg_max(seconds, shipped_at) AS last_ship_seconds
        FROM ship_log GROUP BY shipper"""
    )


# The lake's migrations, in order: (version, name, function). Applied once each, recorded in lake_schema.
MIGRATIONS: tuple[tuple[int, str, LakeMigration], ...] = (
    (1, "series, samples, rollup tiers, executions, ship log and rollup state", _tables),
    (2, "the store's views and macros and the rules' macros", _store_views),
    (3, "fleet_hosts: how far each host has shipped", _fleet_views),
)
VERSION = MIGRATIONS[-1][0]


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """Return the lake's schema version (0: an empty lake)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND table_name = 'lake_schema'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT max(version) FROM lake_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def ensure_schema(con: duckdb.DuckDBPyConnection, *, attempts: int = 5) -> list[int]:
    """Apply the migrations the lake lacks (``con`` has the lake in USE); return the versions applied.

    Hosts starting together race to create the tables: the loser's commit conflicts, it
    reads the version again and finds the work done.
    """
    applied: list[int] = []
    for attempt in range(attempts):
        try:
            version = current_version(con)
            if version > VERSION:
                raise LakeError(f"the lake's schema is version {version}, newer than this monitorkit's {VERSION}: "
                                "upgrade monitorkit on this machine")
            for number, name, fn in MIGRATIONS:
                if number <= version:
                    continue
                con.execute("BEGIN TRANSACTION")
                try:
                    if number == 1:
                        con.execute("CREATE TABLE lake_schema (version INTEGER NOT NULL, name VARCHAR NOT NULL, "
                                    "applied_at TIMESTAMPTZ NOT NULL)")
                    fn(con)
                    con.execute("INSERT INTO lake_schema VALUES (?, ?, now())", [number, name])
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
                applied.append(number)
            return applied
        except duckdb.Error as exc:
            if (not is_conflict(exc) and "already exists" not in str(exc)) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # another host is creating the same tables; look again
    return applied


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # the failed commit already ended the transaction


# The fleet overview of the hub's dashboard: one row per host that ships, with its health and key figures.
# Run on the hub (HubStore: lake relations first, then the hub's own `alerts`). Parameters: $1 now,
# $2 the start of the figures' lookback (a constant, so DuckLake skips older files), $3 the ship lag in
# seconds past which a host is degraded, $4 the one past which it is failing.
FLEET_METRICS = ("cpu_percent", "memory_percent", "disk_used_percent")
FLEET_OVERVIEW = f"""
WITH last AS (
    SELECT series_id, max(time) AS time, arg_max(value, time) AS value
    FROM samples_raw
    WHERE time > $2::TIMESTAMPTZ AND series_id IN (SELECT series_id FROM series WHERE name IN {FLEET_METRICS!r})
    GROUP BY series_id),
figures AS (
    SELECT s.host,
           max(l.value) FILTER (WHERE s.name = 'cpu_percent' AND s.labels['cpu'] IS NULL) AS cpu_percent,
           max(l.value) FILTER (WHERE s.name = 'memory_percent') AS memory_percent,
           max(l.value) FILTER (WHERE s.name = 'disk_used_percent') AS disk_used_percent,
           max(l.time) AS last_sample
    FROM last l JOIN series s USING (series_id) GROUP BY s.host),
firing AS (
    SELECT labels['host'] AS host, count(*) AS firing, string_agg(DISTINCT rule, ', ' ORDER BY rule) AS rules
    FROM alerts WHERE state = 'firing' AND labels['host'] IS NOT NULL GROUP BY ALL),
hosts AS (
    SELECT h.host, h.shipped_through, h.last_ship, epoch($1::TIMESTAMPTZ - h.shipped_through) AS ship_lag_s,
           f.cpu_percent, f.memory_percent, f.disk_used_percent, f.last_sample,
           coalesce(a.firing, 0) AS firing, a.rules
    FROM fleet_hosts h LEFT JOIN figures f USING (host) LEFT JOIN firing a USING (host)),
judged AS (
    SELECT *, CASE WHEN ship_lag_s > $4 THEN 'failing' WHEN ship_lag_s > $3 OR firing > 0 THEN 'degraded'
                   ELSE 'ok' END AS status
    FROM hosts)
SELECT host, status,
       concat_ws('; ',
           CASE WHEN ship_lag_s > $3 THEN 'lake data ' || round(ship_lag_s)::BIGINT || ' s behind (last batch '
                || strftime(last_ship AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') || ' UTC)' END,
           CASE WHEN firing > 0 THEN firing || ' firing: ' || rules END,
           CASE WHEN status = 'ok' THEN 'shipping' END) AS reason,
       cpu_percent, memory_percent, disk_used_percent, last_sample, shipped_through, last_ship, ship_lag_s, firing
FROM judged
ORDER BY CASE status WHEN 'failing' THEN 0 WHEN 'degraded' THEN 1 ELSE 2 END, host"""
