"""Compaction of raw samples: rewrite each closed hour, then each closed day, ordered by (series_id, time).

The writer appends samples in arrival order, so every DuckDB vector mixes all series and
compresses poorly (about 7.5 bytes a sample). Rewritten in (series_id, time) order, the
ids become runs (RLE), the times constant deltas and the values of one series share a
vector (ALP): about 4.4 bytes a sample for one-hour runs and 1.9 for one-day runs
(benchmarks/store_bench.py). ``samples_raw`` stays one table, so every reader sees the
same rows before, during and after a compaction; only their physical order changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import duckdb

from monitorkit.errors import StoreError
from monitorkit.store.literals import bind

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Longest first: a day that is already closed is rewritten once, not hour by hour and again.
LEVELS = (("1d", timedelta(days=1)), ("1h", timedelta(hours=1)))


class Compaction(NamedTuple):
    """What one compaction pass rewrote: periods per level and rows in all."""

    hours: int
    days: int
    rows: int


def floor_period(t: datetime, period: timedelta) -> datetime:
    """Return ``t`` floored to the start of its UTC ``period`` (a whole number of seconds)."""
    step = period // timedelta(microseconds=1)
    us = (t.astimezone(UTC) - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=us - us % step)


def watermark(con: duckdb.DuckDBPyConnection, level: str) -> datetime | None:
    """Return the end of the last period compacted at ``level`` ("1h" or "1d"), or None."""
    row = con.execute(bind("SELECT watermark FROM compaction_state WHERE level = ?", [level])).fetchone()
    return row[0] if row else None


def _set_watermark(con: duckdb.DuckDBPyConnection, level: str, at: datetime) -> None:
    con.execute(bind("INSERT OR REPLACE INTO compaction_state (level, watermark) VALUES (?, ?)", [level, at]))


def rewrite(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, level: str | None = None) -> int:
    """Rewrite the rows of ``[start, end)`` ordered by (series_id, time) in one transaction; return them.

    The copy is appended and the originals are deleted by rowid: rows appended inside the
    transaction have rowids above every committed one, so ``rowid <= top`` is the old set.
    With ``level``, that level's watermark moves to ``end`` in the same transaction.
    """
    span = "time >= ? AND time < ?"
    con.execute("BEGIN TRANSACTION")
    try:
        top = con.execute(bind(f"SELECT max(rowid) FROM samples_raw WHERE {span}", [start, end])).fetchone()
        moved = 0
        if top is not None and top[0] is not None:
            row = con.execute(bind(
                f"INSERT INTO samples_raw SELECT time, series_id, value FROM samples_raw WHERE {span} "
                "ORDER BY series_id, time",
                [start, end],
            )).fetchone()
            moved = int(row[0]) if row else 0
            row = con.execute(bind(f"DELETE FROM samples_raw WHERE {span} AND rowid <= ?", [start, end, top[0]])).fetchone()
            deleted = int(row[0]) if row else 0
            if deleted != moved:
                raise StoreError(f"compaction of {start}..{end} copied {moved} rows but matched {deleted}; nothing changed")
        if level is not None:
            _set_watermark(con, level, end)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return moved


def _next_data(con: duckdb.DuckDBPyConnection, start: datetime | None, end: datetime) -> datetime | None:
    """Return the first sample time in ``[start, end)`` (from the beginning when ``start`` is None)."""
    if start is None:
        row = con.execute(bind("SELECT min(time) FROM samples_raw WHERE time < ?", [end])).fetchone()
    else:
        row = con.execute(bind("SELECT min(time) FROM samples_raw WHERE time >= ? AND time < ?", [start, end])).fetchone()
    return row[0] if row else None


def _compact_level(
    con: duckdb.DuckDBPyConnection, level: str, period: timedelta, start: datetime | None, upper: datetime
) -> tuple[int, int]:
    """Rewrite every period of ``level`` with data in ``[start, upper)``; return (periods, rows)."""
    periods = rows = 0
    while (first := _next_data(con, start, upper)) is not None:
        a = floor_period(first, period)
        rows += rewrite(con, a, a + period, level)
        periods += 1
        start = a + period
    if start is not None and start < upper:
        # Nothing left to rewrite below upper: record it so the next pass starts there. An
        # empty table sets no watermark, so a later backfill is still compacted.
        _set_watermark(con, level, upper)
    return periods, rows


def compact(con: duckdb.DuckDBPyConnection, now: datetime, lateness: timedelta = timedelta(seconds=5)) -> Compaction:
    """Rewrite every hour and day closed before ``now - lateness`` and not yet compacted; then CHECKPOINT.

    Idempotent: watermarks record what is done, each period is one transaction (a crash
    loses nothing), and samples that arrive for a compacted period stay where they landed.
    """
    upper = floor_period(now - lateness, timedelta(hours=1))
    done: dict[str, tuple[int, int]] = {}
    day_mark: datetime | None = None
    for level, period in LEVELS:
        mark = watermark(con, level)
        if level == "1h" and day_mark is not None:
            mark = max(mark or day_mark, day_mark)  # hours of a compacted day are done
        level_upper = floor_period(upper, period)
        if mark is not None and mark >= level_upper:
            done[level] = (0, 0)
        else:
            done[level] = _compact_level(con, level, period, mark, level_upper)
        if level == "1d":
            day_mark = watermark(con, level)
    result = Compaction(hours=done["1h"][0], days=done["1d"][0], rows=done["1h"][1] + done["1d"][1])
    if result.rows:
        # Deleted rows free their blocks only at a checkpoint; the next appends reuse them.
        con.execute("CHECKPOINT")
    return result
