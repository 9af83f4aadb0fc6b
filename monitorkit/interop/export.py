"""Export samples to zstd Parquet partitioned by day: ``out/day=2026-12-01/part-0.parquet``, hive-style.

>>> export_parquet("data/monitorkit.duckdb", "exports", start, end, metrics=["cpu_percent", "net_*"])  # doctest: +SKIP

Reads through ``monitorkit.connect`` (the owner when one runs, else the file), one hour at a time so
memory and each reader query stay bounded, sorted by series and time (about 2 bytes per raw sample).
pandas (``pd.read_parquet(out)``), polars (``pl.scan_parquet(f"{out}/**/*.parquet", hive_partitioning=True)``)
and DuckDB (``read_parquet('out/*/*.parquet', hive_partitioning = true)``) read the folder as one table
with a ``day`` column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from monitorkit.errors import MonitorkitError

# tier -> (relation, time column, value columns)
TIERS = {
    "raw": ("samples", "time", "value"),
    "1m": ("rollup_1m", "bucket", "min, max, sum, count, avg, last"),
    "1h": ("rollup_1h", "bucket", "min, max, sum, count, avg, last"),
}
CHUNK = timedelta(hours=1)
_METRIC_RE = re.compile(r"^[a-zA-Z_:*][a-zA-Z0-9_:*]*$")
Progress = Callable[[int, int, int], None]  # (chunks done, chunks in all, rows so far)


class ExportError(MonitorkitError, ValueError):
    """An export that cannot run as asked: bad range, tier or metric pattern, or files in the way."""


class ExportSummary(NamedTuple):
    """What an export wrote."""

    files: list[Path]
    rows: int
    bytes: int
    days: int


def _metric_filter(metrics: Sequence[str]) -> tuple[str, list[str]]:
    """Return a SQL condition on ``name`` for exact names and ``*`` patterns, with its parameters."""
    if not metrics:
        return "", []
    parts, params = [], []
    for metric in metrics:
        if not _METRIC_RE.match(metric):
            raise ExportError(f"metric {metric!r} is not a metric name or a pattern like 'net_*'")
        if "*" in metric:
            parts.append("name LIKE ? ESCAPE '\\'")
            params.append(metric.replace("_", "\\_").replace("*", "%"))
        else:
            parts.append("name = ?")
            params.append(metric)
    return " AND (" + " OR ".join(parts) + ")", params


def _chunks(start: datetime, end: datetime) -> list[tuple[date, datetime, datetime]]:
    """Return (day, from, to) for each hour of [start, end), cut at start and end."""
    out = []
    at = start.replace(minute=0, second=0, microsecond=0)
    while at < end:
        out.append((at.date(), max(at, start), min(at + CHUNK, end)))
        at += CHUNK
    return out


def _days(start: datetime, end: datetime) -> list[date]:
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _aware(when: datetime, what: str) -> datetime:
    if when.tzinfo is None:
        raise ExportError(f"{what} {when} has no time zone; pass an aware datetime (UTC: datetime(..., tzinfo=UTC))")
    return when.astimezone(UTC)


def export_parquet(db: str | Path | None, out: str | Path, start: datetime, end: datetime, *,
                   metrics: Sequence[str] = (), tier: str = "raw", overwrite: bool = False,
                   progress: Progress | None = None, connection: Any = None) -> ExportSummary:
    """Write the samples of ``metrics`` (all if empty) in [start, end) under ``out``, one zstd Parquet file per day.

    ``tier`` is raw, 1m or 1h (the rollups: min, max, sum, count, avg, last per bucket). A day's file
    that exists is an ExportError unless ``overwrite``. ``connection`` reads instead of ``connect(db)``.
    """
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise ExportError(f"the range is empty: --to {end.isoformat()} is not after --from {start.isoformat()}")
    if tier not in TIERS:
        raise ExportError(f"tier {tier!r} is not one of {', '.join(TIERS)}")
    relation, time_col, values = TIERS[tier]
    where, params = _metric_filter(metrics)
    out = Path(out)
    days = _days(start, end)
    targets = {day: out / f"day={day.isoformat()}" / "part-0.parquet" for day in days}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise ExportError(f"{len(existing)} day file(s) exist already, e.g. {existing[0]}; "
                          "pass overwrite=True (--overwrite) to replace them, or export to another folder")
    chunks = _chunks(start, end)
    sql = (f"SELECT {time_col} AS time, host, name, labels, {values} FROM {relation} "
           f"WHERE {time_col} >= ? AND {time_col} < ?{where} ORDER BY name, host, series_id, {time_col}")
    con = connection
    if con is None:
        from monitorkit.owner.connect import connect

        con = connect(db)
    files: list[Path] = []
    rows = 0
    writer: pq.ParquetWriter | None = None
    current: date | None = None
    try:
        for done, (day, lo, hi) in enumerate(chunks, 1):
            table = con.execute(sql, [lo, hi, *params]).to_arrow_table()
            if day != current and writer is not None:
                writer.close()
                writer = None
            current = day
            if table.num_rows:
                if writer is None:
                    targets[day].parent.mkdir(parents=True, exist_ok=True)
                    writer = pq.ParquetWriter(targets[day], _schema(table.schema), compression="zstd")
                    files.append(targets[day])
                writer.write_table(table.cast(_schema(table.schema)))
                rows += table.num_rows
            if progress is not None:
                progress(done, len(chunks), rows)
    finally:
        if writer is not None:
            writer.close()
        if connection is None:
            con.close()
    return ExportSummary(files, rows, sum(f.stat().st_size for f in files), len(files))


def _schema(schema: pa.Schema) -> pa.Schema:
    """Return the file schema: times as UTC microseconds (what every reader maps to its own datetime)."""
    return pa.schema([pa.field(f.name, pa.timestamp("us", tz="UTC")) if f.name == "time" else f for f in schema])
