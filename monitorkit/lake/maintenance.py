"""The hub's work on the lake: rollups per host, retention per tier, and DuckLake's file maintenance.

Rollups follow each host's own watermark (hosts ship late, and hours late after an outage):
a host's minute is rolled up once that host has shipped past it, so nothing a host ships in
order is left out of the 1 m and 1 h tiers. The hub is the only writer of the rollup tables;
its DELETEs on the tables hosts append to may conflict with a ship and are simply retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple, TypeVar

import duckdb
import pyarrow as pa

from monitorkit.lake.catalog import ALIAS, is_conflict

log = logging.getLogger(__name__)
T = TypeVar("T")
_MICROS = {"1m": 60_000_000, "1h": 3_600_000_000}
# Tier -> (source table, its time column, aggregates): the local store's rollups (store/rollup.py).
_SOURCE = {
    "1m": ("samples_raw", "time", "min(value), max(value), sum(value), count(*), arg_max(value, time), max(time)"),
    "1h": ("samples_1m", "bucket", "min(min), max(max), sum(sum), sum(count), arg_max(last, last_time), max(last_time)"),
}
# A host far behind (a first rollup of a long history) is rolled up this much per pass.
_MAX_SPAN = {"1m": timedelta(hours=6), "1h": timedelta(days=7)}
CONFLICT_RETRIES = 5


class Maintenance(NamedTuple):
    """What one maintenance pass did: rows flushed from the catalog, files merged, snapshots expired, files removed."""

    flushed: int
    merged: int
    expired: int
    cleaned: int
    seconds: float


def floor_to(t: datetime, tier: str) -> datetime:
    """Return ``t`` floored to its UTC bucket of ``tier``."""
    return t.replace(second=0, microsecond=0) if tier == "1m" else t.replace(minute=0, second=0, microsecond=0)


def _bucket_sql(col: str, tier: str) -> str:
    # Integer arithmetic, not date_trunc: no ICU calendar per row.
    e, n = f"epoch_us({col})", _MICROS[tier]
    return f"make_timestamptz({e} - (({e} % {n}) + {n}) % {n})"


def retry_conflicts(con: duckdb.DuckDBPyConnection, fn: Callable[[], T], attempts: int = CONFLICT_RETRIES) -> T:
    """Run ``fn`` (one transaction) again while its commit conflicts with a host's ship."""
    for attempt in range(attempts):
        try:
            return fn()
        except duckdb.Error as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the failed commit ended the transaction
            if not is_conflict(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))  # a ship committed first; its transaction is short
    raise AssertionError("unreachable")


def _ranges(con: duckdb.DuckDBPyConnection, tier: str) -> list[tuple[str, datetime, datetime]]:
    """Return (host, lower, upper) of each host's next rollup of ``tier``: up to what it shipped (1m) or rolled (1h)."""
    rows = con.execute("""
        SELECT l.shipper, l.first, l.upper, m.watermark, h.watermark
        FROM (SELECT shipper, min(lower) AS first, max(upper) AS upper FROM ship_log GROUP BY shipper) l
        LEFT JOIN (SELECT shipper, max(watermark) AS watermark FROM rollup_state WHERE tier = '1m'
                   GROUP BY shipper) m USING (shipper)
        LEFT JOIN (SELECT shipper, max(watermark) AS watermark FROM rollup_state WHERE tier = '1h'
                   GROUP BY shipper) h USING (shipper)""").fetchall()
    out = []
    for host, first, shipped, minutes, hours in rows:
        done, reached = (minutes, shipped) if tier == "1m" else (hours, minutes)
        if reached is None:
            continue
        lower = done if done is not None else floor_to(first or reached, tier)
        upper = min(floor_to(reached, tier), lower + _MAX_SPAN[tier])
        if upper > lower:
            out.append((host, lower, upper))
    return out


def rollup(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> dict[str, int]:
    """Roll up every host's closed, shipped minutes (then hours) once; return rows written per tier."""
    written: dict[str, int] = {}
    for tier in ("1m", "1h"):
        ranges = _ranges(con, tier)
        if not ranges:
            written[tier] = 0
            continue
        source, tcol, aggs = _SOURCE[tier]
        table = pa.table({"shipper": [r[0] for r in ranges], "lo": pa.array([r[1] for r in ranges], pa.timestamp("us", "UTC")),
                          "hi": pa.array([r[2] for r in ranges], pa.timestamp("us", "UTC"))})
        lo, hi = min(r[1] for r in ranges), max(r[2] for r in ranges)
        con.register("_mk_ranges", table)

        def run(tier: str = tier, source: str = source, tcol: str = tcol, aggs: str = aggs,
                lo: datetime = lo, hi: datetime = hi) -> int:
            con.execute("BEGIN TRANSACTION")
            row = con.execute(
                f"""INSERT INTO samples_{tier}
                    SELECT {_bucket_sql('r.' + tcol, tier)} AS bucket, r.series_id, {aggs}
                    FROM {source} r JOIN series s USING (series_id) JOIN _mk_ranges g ON s.shipper = g.shipper
                    WHERE r.{tcol} >= ? AND r.{tcol} < ? AND r.{tcol} >= g.lo AND r.{tcol} < g.hi
                    GROUP BY ALL""", [lo, hi]).fetchone()
            con.execute("INSERT INTO rollup_state SELECT ?, shipper, hi, now() FROM _mk_ranges", [tier])
            con.execute("COMMIT")
            return int(row[0]) if row else 0

        try:
            written[tier] = retry_conflicts(con, run)
        finally:
            con.unregister("_mk_ranges")
    return written


def enforce_retention(
    con: duckdb.DuckDBPyConnection, now: datetime, retention: Mapping[str, timedelta], *, keep_log: timedelta,
) -> dict[str, int]:
    """Delete what is past each tier's retention in the lake, and old ledger rows; return rows deleted."""
    targets = {"raw": ("samples_raw", "time"), "1m": ("samples_1m", "bucket"), "1h": ("samples_1h", "bucket"),
               "executions": ("executions", "started")}
    deleted: dict[str, int] = {}
    for key, (table, column) in targets.items():
        if key in retention:
            deleted[key] = _delete(con, f"DELETE FROM {table} WHERE {column} < ?", [now - retention[key]])
    # The newest row per host (and per tier) is the watermark itself: it always stays.
    deleted["ship_log"] = _delete(con, """
        DELETE FROM ship_log WHERE shipped_at < ?
          AND (shipper, upper) NOT IN (SELECT shipper, max(upper) FROM ship_log GROUP BY shipper)
          AND (shipper, lower) NOT IN (SELECT shipper, min(lower) FROM ship_log GROUP BY shipper)""", [now - keep_log])
    deleted["rollup_state"] = _delete(con, """
        DELETE FROM rollup_state WHERE updated_at < ?
          AND (tier, shipper, watermark) NOT IN (SELECT tier, shipper, max(watermark) FROM rollup_state GROUP BY ALL)
          AND (tier, shipper, watermark) NOT IN (SELECT tier, shipper, min(watermark) FROM rollup_state GROUP BY ALL)""",
        [now - keep_log])
    return deleted


def _delete(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> int:
    def run() -> int:
        con.execute("BEGIN TRANSACTION")
        row = con.execute(sql, params).fetchone()
        con.execute("COMMIT")
        return int(row[0]) if row else 0

    return retry_conflicts(con, run)


def maintain(con: duckdb.DuckDBPyConnection, *, expire_after: timedelta, cleanup_after: timedelta) -> Maintenance:
    """Flush inlined rows to Parquet, merge adjacent files, expire old snapshots, delete their files."""
    started = time.perf_counter()

    def call(sql: str, params: list[object] | None = None) -> int:
        return len(retry_conflicts(con, lambda: con.execute(sql, params or []).fetchall()))

    flushed = call(f"CALL ducklake_flush_inlined_data('{ALIAS}')")
    merged = call(f"CALL ducklake_merge_adjacent_files('{ALIAS}')")
    expired = call(f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => now() - to_microseconds(?::BIGINT))",
                   [int(expire_after.total_seconds() * 1e6)])
    cleaned = call(f"CALL ducklake_cleanup_old_files('{ALIAS}', older_than => now() - to_microseconds(?::BIGINT))",
                   [int(cleanup_after.total_seconds() * 1e6)])
    return Maintenance(flushed, merged, expired, cleaned, time.perf_counter() - started)
