"""Ship a host's closed batches to the lake, exactly once, with its watermark in the same transaction.

A batch is every sample (and tool run) of ``[watermark, upper)``, where ``upper`` trails the
clock by ``[lake] lateness`` and never passes the newest committed sample. The batch, its new
series and one ``ship_log`` row whose ``upper`` is the new watermark commit in ONE lake
transaction: a crash before the commit ships nothing, a crash after it ships everything, and
a restart reads the watermark back from the lake. After any error the watermark is read again
(a commit may have succeeded though its answer was lost), so nothing is shipped twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from monitorkit.lake.catalog import is_unreachable, lake_error, open_lake
from monitorkit.lake.config import LakeConfig
from monitorkit.lake.errors import LakeError, ShipperClashError
from monitorkit.lake.schema import ensure_schema
from monitorkit.lake.source import Batch, SeriesMap, Source
from monitorkit.samples import HOST, utcnow

log = logging.getLogger(__name__)

_MERGE_SERIES = """
    MERGE INTO series USING (SELECT *, $shipper AS shipper FROM _mk_series) src ON series.series_id = src.series_id
    WHEN NOT MATCHED THEN INSERT (series_id, host, name, labels, series_key, shipper, created_at)
        VALUES (src.series_id, src.host, src.name, src.labels, src.series_key, src.shipper, src.created_at)"""
# Sorted by (series, time): the Parquet file compresses to about 1.8 bytes a sample.
_INSERT_SAMPLES = """
    INSERT INTO samples_raw SELECT b.time, m.lake_id, b.value
    FROM _mk_batch b JOIN _mk_ids m ON b.series_id = m.local_id ORDER BY m.lake_id, b.time"""
# Runs shipped before (a late one re-read within executions_lookback) are skipped by run_id.
_INSERT_EXECUTIONS = """
    INSERT INTO executions
    SELECT run_id, tool, started, duration_s, outcome, error_type, error_message, labels,
           CASE WHEN host = $local THEN $shipper ELSE host END, pid, $shipper
    FROM _mk_exec e
    WHERE e.run_id NOT IN (SELECT run_id FROM executions
                           WHERE shipper = $shipper AND started >= (SELECT min(started) FROM _mk_exec))"""


class ShipReport(NamedTuple):
    """What one ``Shipper.ship`` call committed: batches, rows, seconds, and the watermark it reached."""

    batches: int
    samples: int
    series: int
    executions: int
    seconds: float
    watermark: datetime | None
    caught_up: bool


class Shipper:
    """Ship one host's data from ``source`` to the lake of ``cfg``: ``Shipper(cfg, source).ship(utcnow())``.

    ``limit()`` returns the newest committed sample time (None: no limit but lateness);
    ``connect`` opens a lake connection (injectable for tests and the benchmark).
    """

    def __init__(
        self, cfg: LakeConfig, source: Source, *, limit: Callable[[], datetime | None] = lambda: None,
        connect: Callable[[LakeConfig], duckdb.DuckDBPyConnection] = open_lake, local_host: str = HOST,
    ) -> None:
        self.cfg = cfg
        self.source = source
        self.limit = limit
        self._connect = connect
        self._con: duckdb.DuckDBPyConnection | None = None
        self._map = SeriesMap(local_host, cfg.host)
        self._known: set[int] = set()  # lake ids of series committed by this shipper since its last sync
        self._synced = False
        self.watermark: datetime | None = None
        self.gap: tuple[datetime, datetime] | None = None  # a range removed locally before it was shipped
        self.last_batch_seconds = 0.0

    # -- the lake connection -------------------------------------------------------------------

    def connection(self) -> duckdb.DuckDBPyConnection:
        """Return the lake connection, opening it (and creating the lake's tables) when needed."""
        if self._con is None:
            con = self._connect(self.cfg)
            try:
                ensure_schema(con)
            except duckdb.Error as exc:
                con.close()
                raise lake_error(exc, self.cfg, "preparing the lake's tables") from None
            self._con = con
        return self._con

    def close(self) -> None:
        """Close the lake connection; the next ship opens a new one."""
        if self._con is not None:
            try:
                self._con.close()
            except duckdb.Error:
                pass  # a connection to a stopped server may fail to close; it is gone either way
            self._con = None

    def sync(self) -> datetime | None:
        """Read this host's watermark back from the lake (and note a range lost locally); return it."""
        con = self.connection()
        try:
            row = con.execute("SELECT max(upper) FROM ship_log WHERE shipper = ?", [self.cfg.host]).fetchone()
        except duckdb.Error as exc:
            raise lake_error(exc, self.cfg, "reading the ship watermark") from None
        self.watermark = row[0] if row else None
        oldest = self.source.oldest()
        if self.watermark is not None and oldest is not None and oldest > self.watermark + timedelta(seconds=1):
            self.gap = (self.watermark, oldest)
            log.warning("samples of %s between %s and %s were removed locally before they reached the lake",
                        self.cfg.host, self.watermark, oldest)
        self._known.clear()
        self._synced = True
        return self.watermark

    # -- shipping ------------------------------------------------------------------------------

    def upper_limit(self, now: datetime, *, final: bool = False) -> datetime:
        """Return how far a ship at ``now`` may go: ``lateness`` behind, never past the newest committed sample.

        ``final`` (the owner stops, its writer flushed): everything committed, the newest sample included.
        """
        committed = self.limit()
        if final:
            return committed + timedelta(microseconds=1) if committed is not None else now
        upper = now - self.cfg.lateness
        return min(upper, committed) if committed is not None else upper

    def ship(self, now: datetime | None = None, *, deadline: float | None = None,
             stop: Callable[[], bool] = lambda: False, final: bool = False) -> ShipReport:
        """Ship every closed batch up to ``upper_limit(now)``, ``max_batch`` per transaction; return what it did.

        Stops early (``caught_up`` False) at the monotonic ``deadline`` or when ``stop()`` says so.
        Raises LakeError (unreachable, conflict, clash); the next call reads the watermark again.
        """
        started = time.perf_counter()
        limit = self.upper_limit(now or utcnow(), final=final)
        batches = samples = series = runs = 0
        try:
            if not self._synced:
                self.sync()
            while True:
                lower = self.watermark
                first = lower is None
                if lower is None:
                    oldest = self.source.oldest()
                    lower = min(oldest, limit) if oldest is not None else limit - self.cfg.ship_interval
                upper = min(limit, lower + self.cfg.max_batch)
                if upper <= lower:
                    break
                batch = self._batch(None if first else lower, lower, upper)
                counts = self._commit(batch, lower)
                batches, samples = batches + 1, samples + counts[0]
                series, runs = series + counts[1], runs + counts[2]
                if upper >= limit or stop() or (deadline is not None and time.monotonic() >= deadline):
                    break
        except LakeError:
            self._synced = False
            raise
        except duckdb.Error as exc:  # reading the host's own file failed: try again next time
            self._synced = False
            raise LakeError(f"reading this host's samples to ship failed: {exc}") from None
        caught_up = self.watermark is not None and self.watermark >= limit
        return ShipReport(batches, samples, series, runs, time.perf_counter() - started, self.watermark, caught_up)

    def _batch(self, exec_lower: datetime | None, lower: datetime, upper: datetime) -> Batch:
        table = self.source.samples(lower, upper)
        local_ids = pc.unique(table.column("series_id")).to_pylist() if table.num_rows else []
        if self._map.missing(local_ids):
            self._map.refresh(self.source)
        missing = self._map.missing(local_ids)
        if missing:
            raise LakeError(f"samples reference series {missing[:5]} that the local series table lacks; "
                            "the local database is inconsistent: run `monitorkit status` and report it")
        lake_ids = self._map.lake_ids(local_ids)
        new = sorted(set(lake_ids) - self._known)
        runs_lower = None if exec_lower is None else exec_lower - self.cfg.executions_lookback
        return Batch(None if exec_lower is None else lower, upper, table, self._map.ids_table(local_ids),
                     self._map.series_table(new), new, self.source.executions(runs_lower, upper))

    def _commit(self, batch: Batch, lower: datetime) -> tuple[int, int, int]:
        con = self.connection()
        t0 = time.perf_counter()
        names = {"_mk_batch": batch.samples, "_mk_ids": batch.ids, "_mk_series": batch.series,
                 "_mk_exec": batch.executions}
        runs = 0
        try:
            con.execute("BEGIN TRANSACTION")
            for name, table in names.items():
                if table.num_columns:
                    con.register(name, table)  # inside the transaction: no catalog round trip of its own
            row = con.execute("SELECT max(upper) FROM ship_log WHERE shipper = ?", [self.cfg.host]).fetchone()
            found = row[0] if row else None
            if found != self.watermark:
                raise ShipperClashError(
                    f"the lake's watermark for host {self.cfg.host!r} is {found}, this shipper expected "
                    f"{self.watermark}: another owner ships under the same name; give each one its own [lake] host")
            if batch.series_ids:
                con.execute(_MERGE_SERIES, {"shipper": self.cfg.host})
            if batch.samples.num_rows:
                inserted = con.execute(_INSERT_SAMPLES).fetchone()
                if not inserted or int(inserted[0]) != batch.samples.num_rows:
                    raise LakeError(f"{batch.samples.num_rows} samples read but {inserted} inserted; nothing was shipped")
            if batch.executions.num_rows:
                out = con.execute(_INSERT_EXECUTIONS, {"shipper": self.cfg.host, "local": self._map.local_host}).fetchone()
                runs = int(out[0]) if out else 0
            con.execute(
                "INSERT INTO ship_log VALUES (?, ?, ?, ?, ?, ?, now(), ?)",
                [self.cfg.host, lower, batch.upper, batch.samples.num_rows, len(batch.series_ids), runs,
                 time.perf_counter() - t0])
            _unregister(con, names)  # still inside the transaction: no catalog round trip each
            con.execute("COMMIT")
        except duckdb.Error as exc:
            _unregister(con, names)
            self._rollback(con, exc)
            raise lake_error(exc, self.cfg, f"shipping {batch.samples.num_rows} samples of {self.cfg.host}") from None
        except BaseException:
            _unregister(con, names)
            self._rollback(con, None)
            raise
        self.last_batch_seconds = time.perf_counter() - t0
        self.watermark = batch.upper
        self._known.update(batch.series_ids)
        return batch.samples.num_rows, len(batch.series_ids), runs

    def _rollback(self, con: duckdb.DuckDBPyConnection, exc: duckdb.Error | None) -> None:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT has ended the transaction already
        if exc is not None and is_unreachable(exc):
            self.close()  # open a fresh connection once the catalog answers again


def _unregister(con: duckdb.DuckDBPyConnection, names: dict[str, pa.Table]) -> None:
    for name, table in names.items():
        if table.num_columns:
            try:
                con.unregister(name)
            except duckdb.Error:
                pass  # the connection broke (or it was never registered); nothing is left to release
