"""The owner's handle on a database file: migrations, the writer, rollups and retention."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import duckdb

from monitorkit.config import Settings, load_settings, parse_duration
from monitorkit.errors import ConfigError, StoreError
from monitorkit.samples import Sample, SampleValidator, utcnow
from monitorkit.store.compaction import Compaction, compact
from monitorkit.store.database import open_database
from monitorkit.store.literals import bind
from monitorkit.store.migrations import SchemaSet, migrate
from monitorkit.store.rollup import enforce_retention, rollup
from monitorkit.store.schema import SCHEMA as STORE_SCHEMA
from monitorkit.store.status import Part
from monitorkit.store.writer import CommitHook, Writer, describe

log = logging.getLogger(__name__)
T = TypeVar("T")


class Store:
    """Own one database file: ``with Store("data/m.duckdb") as s: s.write([...])``.

    Only one Store (one process) may hold a file; other processes use ``monitorkit.connect``.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        settings: Settings | None = None,
        hooks: Sequence[CommitHook] = (),
        schema: Sequence[SchemaSet] = (STORE_SCHEMA,),
    ) -> None:
        self.settings = settings or load_settings()
        self.path = Path(path or self.settings.get("store.path"))
        self._con = open_database(self.path)
        try:
            threads = self.settings.get("store.threads", 0) or 0
            if not isinstance(threads, int) or threads < 0:
                raise ConfigError(f"store.threads must be a whole number >= 0 (0: one per core), not {threads!r}")
            if threads > 0:
                # DuckDB's thread pool is per database instance (SET threads is GLOBAL only).
                self._con.execute(f"SET threads = {threads}")
            limit = str(self.settings.get("store.memory_limit", "") or "").strip()
            if limit and not re.fullmatch(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)", limit, re.IGNORECASE):
                raise ConfigError(f"store.memory_limit must be a size such as '1GB', '512MiB' or '25%', not {limit!r}")
            if limit:
                # Bounds DuckDB's buffer pool (default 80 % of RAM) for the owner and every query it runs
                # for readers: a heavy query spills to disk or fails with DuckDB's out-of-memory error.
                self._con.execute(f"SET memory_limit = '{limit}'")  # checked above; no parameter: it would load pandas
            migrate(self._con, [STORE_SCHEMA, *schema])
        except duckdb.Error as exc:
            self._con.close()
            raise StoreError(f"cannot prepare {self.path}: {exc}") from exc
        except ConfigError:
            self._con.close()
            raise
        self.writer = Writer(
            self._con, max_queued=int(self.settings.get("store.queue_max_samples")), hooks=hooks,
            max_series=int(self.settings.get("store.max_series", 0) or 0),
        )
        # One transaction per flush interval instead of per batch: readers see data at most that late.
        self.writer.set_flush_interval(parse_duration(self.settings.get("store.flush_interval", 0)).total_seconds())
        self.retention: dict[str, timedelta] = self.settings.retention()
        self._retained: dict[str, tuple[str, str]] = {}
        self.lateness = parse_duration(self.settings.get("store.rollup_lateness"))
        self._validate = SampleValidator()
        self._closed = False
        self._compaction: Future[object] | None = None
        self.last_compaction: Compaction | None = None
        self.compaction_error: BaseException | None = None
        self.rollup_error: BaseException | None = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """Return the write connection (for quack_serve and migrations; queries use ``cursor()``)."""
        return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Return a new cursor for reading from any thread."""
        cur = self._con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` on a fresh cursor and return all rows."""
        cur = self.cursor()
        try:
            return cur.execute(bind(sql, params)).fetchall()
        finally:
            cur.close()

    def write(self, samples: Iterable[Sample], *, validate: bool = True) -> int:
        """Queue samples for writing and return how many; invalid ones raise before anything is queued."""
        batch = [self._validate(s) for s in samples] if validate else list(samples)
        self.writer.put(batch)
        return len(batch)

    def submit(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, urgent: bool = True) -> Future[T]:
        """Run ``fn(write_connection)`` on the writer thread after what is queued; return its future.

        ``store.submit(lambda con: con.execute("DELETE FROM t").fetchone()).result()``. With
        ``urgent=False`` it rides on the next commit due anyway instead of forcing one.
        """
        return self.writer.submit(fn, urgent=urgent)

    def apply_schema(self, *sets: SchemaSet) -> list[int]:
        """Apply the migrations of ``sets`` this file lacks (a domain's tables); return their numbers."""
        return self.submit(lambda con: migrate(con, sets)).result()

    def add_hook(self, hook: CommitHook) -> None:
        """Call ``hook(CommitInfo)`` after each committed batch (in the writer thread)."""
        self.writer.add_hook(hook)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued sample is committed."""
        self.writer.flush(timeout)

    def rollup(self, now: datetime | None = None) -> dict[str, int]:
        """Roll up closed buckets (in the writer thread); return rows written per tier.

        Then queue a compaction of closed hours and days without waiting for it: a day's
        rewrite takes seconds and the caller is the collection loop. ``flush()`` waits for it.
        """
        at = now or utcnow()
        written = self.submit(lambda con: rollup(con, at, self.lateness)).result()
        self._queue_compaction(at, urgent=True)
        return written

    def rollup_soon(self, now: datetime | None = None) -> Future[dict[str, int]]:
        """Queue a rollup (then a compaction) to run right after the writer's next due commit; don't wait.

        The periodic pass of the collection loop: it forces no commit of its own (and so no
        extra rule evaluation), and sees every sample queued before it. ``flush()`` waits for it.
        """
        at = now or utcnow()
        future = self.submit(lambda con: rollup(con, at, self.lateness), urgent=False)
        future.add_done_callback(self._rollup_done)
        self._queue_compaction(at, urgent=False)
        return future

    def _rollup_done(self, future: Future[dict[str, int]]) -> None:
        # Nobody waits on the periodic rollup: keep (and log) its error for health.
        self.rollup_error = future.exception()
        if self.rollup_error is not None:
            log.error("rolling up %s failed (%s): %s", self.path, describe(self.rollup_error), self.rollup_error)

    def parts(self) -> list[Part]:
        """Return the health of the store's parts now: the writer, the rollup and the compaction."""
        w = self.writer
        if not w.alive:
            writer = Part("writer", "failing", "the writer thread stopped; restart the owner")
        elif w.last_error is not None:
            writer = Part("writer", "failing", f"{describe(w.last_error)}: {w.last_error}"[:300])
        else:
            writer = Part("writer", "ok", "writing")
        return [
            writer,
            Part("rollup", "failing", f"{describe(self.rollup_error)}: {self.rollup_error}"[:300])
            if self.rollup_error is not None else Part("rollup", "ok", "rolling up"),
            Part("compaction", "degraded", f"{describe(self.compaction_error)}: {self.compaction_error}"[:300])
            if self.compaction_error is not None else Part("compaction", "ok", "compacting closed periods"),
        ]

    def _queue_compaction(self, at: datetime, *, urgent: bool) -> None:
        if self._compaction is None or self._compaction.done():
            self._compaction = self.submit(lambda con: self._compact(con, at), urgent=urgent)
            self._compaction.add_done_callback(self._compaction_done)

    def compact(self, now: datetime | None = None) -> Compaction:
        """Rewrite closed hours and days ordered by (series_id, time) and wait; return what was rewritten."""
        at = now or utcnow()
        return self.submit(lambda con: self._compact(con, at)).result()

    def _compact(self, con: duckdb.DuckDBPyConnection, at: datetime) -> Compaction:
        self.last_compaction = compact(con, at, self.lateness)
        return self.last_compaction

    def _compaction_done(self, future: Future[object]) -> None:
        # Nobody waits on the background compaction: keep its error for health checks.
        self.compaction_error = future.exception()
        if self.compaction_error is not None:
            log.error("compacting %s failed: %s", self.path, self.compaction_error)

    def retain(self, key: str, table: str, column: str) -> None:
        """Delete rows of a domain's ``table`` older than setting ``retention.<key>`` with the tiers' retention."""
        if key not in self.retention:
            raise ConfigError(f"no setting retention.{key}; add it to [retention] in monitorkit.toml")
        self._retained[key] = (table, column)

    def enforce_retention(self, now: datetime | None = None) -> dict[str, int]:
        """Delete rows past each tier's (and each retained table's) retention; return rows deleted per name."""
        at = now or utcnow()

        def run(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
            deleted = enforce_retention(con, at, self.retention)
            for key, (table, column) in self._retained.items():
                row = con.execute(bind(f"DELETE FROM {table} WHERE {column} < ?", [at - self.retention[key]])).fetchone()
                deleted[key] = int(row[0]) if row else 0
            return deleted

        return self.submit(run).result()

    def close(self) -> None:
        """Write everything queued, then close the file."""
        if self._closed:
            return
        self._closed = True
        self.writer.close()
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            # Committed data is safe in the WAL, which the next open replays: say so, do not crash.
            log.error("could not checkpoint %s at close (%s): committed data stays in %s.wal and is "
                      "replayed when the file is next opened", self.path, describe(exc), self.path)
        try:
            self._con.close()
        except duckdb.Error as exc:
            log.error("closing %s failed (%s): %s", self.path, describe(exc), exc)
