"""What a host ships, read from its local store: samples and tool runs of a time range, and its series.

``LocalSource(cursor)`` reads through one cursor of the owner's database; ``Batch`` is what one
lake transaction carries. Local series ids are per file; the lake's are hashes (``schema.series_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

import duckdb
import pyarrow as pa

from monitorkit.lake.schema import series_id, series_key

# End of a tool run: it reaches the owner when it ends, so its end time is what a watermark follows.
_RUN_END = "started + to_microseconds(CAST(duration_s * 1e6 AS BIGINT))"
EXECUTION_COLUMNS = "run_id, tool, started, duration_s, outcome, error_type, error_message, labels, host, pid"
SERIES_SCHEMA = pa.schema([
    ("series_id", pa.int64()), ("host", pa.string()), ("name", pa.string()),
    ("labels", pa.map_(pa.string(), pa.string())), ("series_key", pa.string()), ("created_at", pa.timestamp("us", "UTC")),
])


class Source(Protocol):
    """Where a shipper reads its host's data (a store, or canned tables in tests)."""

    def samples(self, lower: datetime, upper: datetime) -> pa.Table:
        """Return samples with ``lower <= time < upper``: time, series_id (local), value."""
        ...

    def series(self) -> list[tuple[int, str, str, dict[str, str], datetime]]:
        """Return every local series: (local id, host, name, labels, created_at)."""
        ...

    def executions(self, lower: datetime | None, upper: datetime) -> pa.Table:
        """Return the tool runs that ended in ``[lower, upper)`` (every one before ``upper`` when ``lower`` is None)."""
        ...

    def oldest(self) -> datetime | None:
        """Return the time of the oldest local sample, or None when there is none."""
        ...


class LocalSource:
    """Read a host's own store through ``cursor()`` (a fresh cursor per read: the store may be busy writing)."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._cursor = cursor
        self._has_executions: bool | None = None

    def _query(self, sql: str, params: Sequence[object]) -> pa.Table:
        cur = self._cursor()
        try:
            return cur.execute(sql, list(params)).to_arrow_table()
        finally:
            cur.close()

    def samples(self, lower: datetime, upper: datetime) -> pa.Table:
        """Return samples with ``lower <= time < upper``."""
        return self._query("SELECT time, series_id, value FROM samples_raw WHERE time >= ? AND time < ?", [lower, upper])

    def series(self) -> list[tuple[int, str, str, dict[str, str], datetime]]:
        """Return every local series."""
        cur = self._cursor()
        try:
            rows = cur.execute("SELECT series_id, host, name, labels, created_at FROM series").fetchall()
        finally:
            cur.close()
        return [(int(r[0]), str(r[1]), str(r[2]), dict(r[3]), r[4]) for r in rows]

    def executions(self, lower: datetime | None, upper: datetime) -> pa.Table:
        """Return tool runs that ended in ``[lower, upper)``; an empty table when the file has no executions."""
        if self._has_executions is None:
            cur = self._cursor()
            try:
                found = cur.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                                    "AND schema_name = 'main' AND table_name = 'executions'").fetchone()
            finally:
                cur.close()
            self._has_executions = bool(found and found[0])
        if not self._has_executions:
            return pa.table({})
        where, params = (f"{_RUN_END} < ?", [upper]) if lower is None else \
            (f"{_RUN_END} >= ? AND {_RUN_END} < ?", [lower, upper])
        return self._query(f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE {where}", params)

    def oldest(self) -> datetime | None:
        """Return the oldest local sample time."""
        cur = self._cursor()
        try:
            row = cur.execute("SELECT min(time) FROM samples_raw").fetchone()
        finally:
            cur.close()
        return row[0] if row else None


class SeriesMap:
    """Local series id -> lake series id, with the host renamed as the fleet knows it."""

    def __init__(self, local_host: str, fleet_host: str) -> None:
        self.local_host = local_host
        self.fleet_host = fleet_host
        self._ids: dict[int, int] = {}
        self._rows: dict[int, tuple[int, str, str, dict[str, str], str, datetime]] = {}

    def host(self, host: str) -> str:
        """Return the name ``host`` has in the lake: this machine's own samples carry [lake] host."""
        return self.fleet_host if host == self.local_host else host

    def refresh(self, source: Source) -> None:
        """Read the local series again and map the new ones."""
        for local_id, host, name, labels, created in source.series():
            if local_id in self._ids:
                continue
            fleet_host = self.host(host)
            lake_id = series_id(fleet_host, name, labels)
            self._ids[local_id] = lake_id
            self._rows[lake_id] = (lake_id, fleet_host, name, labels, series_key(fleet_host, name, labels), created)

    def ids_table(self, local_ids: list[int]) -> pa.Table:
        """Return ``local_id -> lake_id`` for ``local_ids`` (all must be known: call ``refresh`` first)."""
        return pa.table({"local_id": pa.array(local_ids, pa.int32()),
                         "lake_id": pa.array([self._ids[i] for i in local_ids], pa.int64())})

    def missing(self, local_ids: list[int]) -> list[int]:
        """Return the ids in ``local_ids`` not mapped yet."""
        return [i for i in local_ids if i not in self._ids]

    def series_table(self, lake_ids: list[int]) -> pa.Table:
        """Return the lake rows (without shipper) of series ``lake_ids``."""
        rows = [self._rows[i] for i in lake_ids]
        return pa.table([
            pa.array([r[0] for r in rows], pa.int64()), pa.array([r[1] for r in rows], pa.string()),
            pa.array([r[2] for r in rows], pa.string()),
            pa.array([list(r[3].items()) for r in rows], pa.map_(pa.string(), pa.string())),
            pa.array([r[4] for r in rows], pa.string()), pa.array([r[5] for r in rows], pa.timestamp("us", "UTC")),
        ], schema=SERIES_SCHEMA)

    def lake_ids(self, local_ids: list[int]) -> list[int]:
        """Return the lake ids of ``local_ids``."""
        return [self._ids[i] for i in local_ids]


class Batch(NamedTuple):
    """One lake transaction's worth of a host's data: samples and runs of ``[lower, upper)``, new series."""

    lower: datetime | None
    upper: datetime
    samples: pa.Table
    ids: pa.Table
    series: pa.Table
    series_ids: list[int]
    executions: pa.Table
