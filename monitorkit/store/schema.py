"""The store's DDL as numbered migrations: series, raw samples, rollup tiers and query views."""

from __future__ import annotations

import duckdb

from monitorkit.store.migrations import SchemaSet
from monitorkit.store.tiers import tier_case_sql

SCHEMA = SchemaSet("store", range(1, 10))
TIER_CASE = tier_case_sql("t1::TIMESTAMPTZ - t0::TIMESTAMPTZ")



# metric_range: one metric between t0 and t1 at step seconds, from the tier that suits the
# range (raw up to 6 h, 1 min up to 30 days, then 1 h). ``schema`` names where it goes.
MACROS = [
    """
        CREATE OR REPLACE MACRO {schema}metric_range(metric, t0, t1, step := 60) AS TABLE
        WITH tier AS (
            SELECT {tier_case} AS t
        ), pts AS (
            SELECT r.series_id, r.time AS t, r.value AS v_sum, 1::BIGINT AS v_n,
                   r.value AS v_min, r.value AS v_max
            FROM samples_raw r, tier
            WHERE tier.t = 'raw' AND r.time >= t0::TIMESTAMPTZ AND r.time < t1::TIMESTAMPTZ
              AND r.series_id IN (SELECT series_id FROM series WHERE name = metric)
            UNION ALL
            SELECT r.series_id, r.bucket, r.sum, r.count, r.min, r.max
            FROM samples_1m r, tier
            WHERE tier.t = '1m' AND r.bucket >= t0::TIMESTAMPTZ AND r.bucket < t1::TIMESTAMPTZ
              AND r.series_id IN (SELECT series_id FROM series WHERE name = metric)
            UNION ALL
            SELECT r.series_id, r.bucket, r.sum, r.count, r.min, r.max
            FROM samples_1h r, tier
            WHERE tier.t = '1h' AND r.bucket >= t0::TIMESTAMPTZ AND r.bucket < t1::TIMESTAMPTZ
              AND r.series_id IN (SELECT series_id FROM series WHERE name = metric)
        )
        SELECT time_bucket(to_seconds(step::BIGINT), p.t) AS time, s.host, s.labels,
               sum(p.v_sum) / sum(p.v_n) AS avg, min(p.v_min) AS min, max(p.v_max) AS max,
               sum(p.v_n) AS count, any_value(tier.t) AS tier
        FROM pts p JOIN series s USING (series_id), tier
        GROUP BY ALL
        ORDER BY time"""
]


# No DEFAULT that calls a function (now(), nextval()): a Quack client cannot attach a
# database whose tables have one (seen on 1.5.5), so ids and times are set by the writer.


@SCHEMA.migration(1, "series, samples and rollup tiers")
def _base(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE series (
            series_id  INTEGER PRIMARY KEY,
            host       VARCHAR NOT NULL,
            name       VARCHAR NOT NULL,
            labels     MAP(VARCHAR, VARCHAR) NOT NULL,
            series_key VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL
        )"""
    )
    # Samples reference a series by id: times and ids compress to a few bits a row.
    con.execute("CREATE TABLE samples_raw (time TIMESTAMPTZ NOT NULL, series_id INTEGER NOT NULL, value DOUBLE NOT NULL)")
    for tier in ("1m", "1h"):
        con.execute(
            f"""
            CREATE TABLE samples_{tier} (
                bucket TIMESTAMPTZ NOT NULL, series_id INTEGER NOT NULL,
                min DOUBLE NOT NULL, max DOUBLE NOT NULL, sum DOUBLE NOT NULL,
                count BIGINT NOT NULL, last DOUBLE NOT NULL, last_time TIMESTAMPTZ NOT NULL
            )"""
        )
    con.execute(
        "CREATE TABLE rollup_state (tier VARCHAR PRIMARY KEY, watermark TIMESTAMPTZ NOT NULL)"
    )
    con.execute(
        """
        CREATE TABLE settings_kv (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL,
                                  updated_at TIMESTAMPTZ NOT NULL)"""
    )


@SCHEMA.migration(2, "long-format views, latest values, counter rates and range macros")
def _views(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE VIEW samples AS
        SELECT r.time, s.host, s.name, s.labels, r.value, r.series_id
        FROM samples_raw r JOIN series s USING (series_id)"""
    )
    for tier in ("1m", "1h"):
        con.execute(
            f"""
            CREATE VIEW rollup_{tier} AS
            SELECT r.bucket, s.host, s.name, s.labels, r.min, r.max, r.sum, r.count,
                   r.sum / r.count AS avg, r.last, r.last_time, r.series_id
            FROM samples_{tier} r JOIN series s USING (series_id)"""
        )
    # The rules set redefines `latest` to leave out series ended by a stale marker (rules/schema.py, 31).
    con.execute(
        """
        CREATE VIEW latest AS
        SELECT s.host, s.name, s.labels, l.time, l.value, s.series_id
        FROM (SELECT series_id, max(time) AS time, arg_max(value, time) AS value
              FROM samples_raw GROUP BY series_id) l
        JOIN series s USING (series_id)"""
    )
    # A counter that goes down was reset: the increase since the reset is the new value.
    con.execute(
        """
        CREATE VIEW counter_rates AS
        WITH d AS (
            SELECT series_id, time, value,
                   value - lag(value) OVER w AS delta,
                   lag(value) OVER w AS prev,
                   epoch(time - lag(time) OVER w) AS dt
            FROM samples_raw r
            WHERE series_id IN (SELECT series_id FROM series WHERE name LIKE '%\\_total' ESCAPE '\\')
            WINDOW w AS (PARTITION BY series_id ORDER BY time)
        )
        SELECT d.time, s.host, s.name, s.labels,
               CASE WHEN d.delta < 0 THEN d.value ELSE d.delta END / d.dt AS rate,
               d.series_id
        FROM d JOIN series s USING (series_id)
        WHERE d.dt > 0"""
    )
    for macro in MACROS:
        con.execute(macro.format(schema="", tier_case=TIER_CASE))


@SCHEMA.migration(4, "read-only authorization for Quack readers")
def _quack_read_only(con: duckdb.DuckDBPyConnection) -> None:
    # Quack calls this for every client statement; only what json_serialize_sql accepts
    # (SELECT-like, one or more, no DML/DDL/COPY) is admitted.
    con.execute(
        """
        CREATE OR REPLACE MACRO monitorkit_read_only(sid, query) AS
            json_extract_string(json_serialize_sql(query::VARCHAR), '$.error') = 'false'"""
    )


@SCHEMA.migration(3, "retention and tier status")
def _status(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE VIEW tier_status AS
        SELECT 'raw' AS tier, count(*) AS rows, min(time) AS oldest, max(time) AS newest FROM samples_raw
        UNION ALL SELECT '1m', count(*), min(bucket), max(bucket) FROM samples_1m
        UNION ALL SELECT '1h', count(*), min(bucket), max(bucket) FROM samples_1h"""
    )


@SCHEMA.migration(5, "compaction watermarks")
def _compaction_state(con: duckdb.DuckDBPyConnection) -> None:
    # samples_raw keeps its name and columns: compaction (monitorkit/compaction.py) only
    # reorders closed periods. Rows of an existing file are rewritten by the first rollup.
    con.execute("CREATE TABLE compaction_state (level VARCHAR PRIMARY KEY, watermark TIMESTAMPTZ NOT NULL)")


@SCHEMA.migration(6, "drop the unused settings_kv table")
def _drop_settings_kv(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("DROP TABLE IF EXISTS settings_kv")
