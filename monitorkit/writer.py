"""The writer thread: the only user of the write connection, fed by a bounded queue."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from monitorkit.errors import StoreClosedError
from monitorkit.samples import Sample

log = logging.getLogger(__name__)

CommitHook = Callable[["CommitInfo"], None]
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]
_TIME = pa.timestamp("us", tz="UTC")
# Below this many samples a batch is inserted from bound lists: registering an Arrow table
# costs a few ms of fixed CPU per commit, which dominates a 1 s collector tick (~200 samples);
# larger batches (ingest bursts, backfills) go through Arrow, which scales far better.
SMALL_BATCH = 1000
_INSERT_LISTS = (
    "INSERT INTO samples_raw SELECT unnest(?::TIMESTAMPTZ[]), unnest(?::INTEGER[]), unnest(?::DOUBLE[])"
)


class CommitInfo:
    """What one committed transaction wrote: row count, time span and duration."""

    __slots__ = ("max_time", "min_time", "new_series", "rows", "seconds")

    def __init__(self, rows: int, min_time: object, max_time: object, seconds: float, new_series: int) -> None:
        self.rows = rows
        self.min_time = min_time
        self.max_time = max_time
        self.seconds = seconds
        self.new_series = new_series


class Writer:
    """Take sample batches from a bounded queue and commit them (small ones as list inserts, large as Arrow).

    When more than ``max_queued`` samples wait, the oldest batches are dropped and
    counted in ``dropped``; ``flush()`` returns once everything queued before it is
    committed.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        max_queued: int = 1_000_000,
        hooks: Sequence[CommitHook] = (),
    ) -> None:
        self._con = con
        self._max_queued = max_queued
        self._hooks: list[CommitHook] = list(hooks)
        self._queue: deque[Sequence[Sample] | Future[None] | Callable[[duckdb.DuckDBPyConnection], object]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.written = 0
        self.batches = 0
        self.last_error: BaseException | None = None
        self.last_commit_seconds = 0.0
        self._series: dict[SeriesKey, int] = {}
        self._pending_new: list[SeriesKey] = []
        self._aliases: dict[SeriesKey, int] = {}
        for sid, host, name, labels in con.execute("SELECT series_id, host, name, labels FROM series").fetchall():
            self._series[(host, name, tuple(sorted(labels.items())))] = sid
        self._next_id = max(self._series.values(), default=0) + 1
        self._thread = threading.Thread(target=self._run, name="monitorkit-writer", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Return the number of samples waiting to be written."""
        return self._queued

    def add_hook(self, hook: CommitHook) -> None:
        """Call ``hook(CommitInfo)`` in the writer thread after every commit."""
        self._hooks.append(hook)

    def put(self, samples: Sequence[Sample]) -> None:
        """Queue validated samples; drop the oldest queued ones if over the bound."""
        if not samples:
            return
        with self._cond:
            if self._closed:
                raise StoreClosedError("the store is closed; open a new Store to write")
            self._queue.append(samples)
            self._queued += len(samples)
            while self._queued > self._max_queued:
                oldest = next((item for item in self._queue if isinstance(item, (list, tuple))), None)
                if oldest is None or oldest is samples:
                    break
                self._queue.remove(oldest)
                self._queued -= len(oldest)
                self.dropped += len(oldest)
            self._cond.notify()

    def submit(self, fn: Callable[[duckdb.DuckDBPyConnection], object]) -> Future[object]:
        """Run ``fn(write_connection)`` in the writer thread, after what is queued; return its future."""
        future: Future[object] = Future()

        def task(con: duckdb.DuckDBPyConnection) -> None:
            try:
                future.set_result(fn(con))
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

        with self._cond:
            if self._closed:
                raise StoreClosedError("the store is closed")
            self._queue.append(task)
            self._cond.notify()
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued before this call is committed."""
        marker: Future[None] = Future()
        with self._cond:
            if self._closed and not self._thread.is_alive():
                return
            self._queue.append(marker)
            self._cond.notify()
        marker.result(timeout)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                items = list(self._queue)
                self._queue.clear()
                self._queued = 0
            batch: list[Sample] = []
            for item in items:
                if isinstance(item, Future):
                    self._commit(batch)
                    batch = []
                    item.set_result(None)
                elif callable(item):
                    self._commit(batch)
                    batch = []
                    item(self._con)
                else:
                    batch.extend(item)
            self._commit(batch)

    def _commit(self, batch: list[Sample]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        con = self._con
        self._pending_new = []
        try:
            con.execute("BEGIN TRANSACTION")
            firsts, runs, ids, new = self._columns(con, batch)
            values = [s.value for s in batch]
            if len(batch) < SMALL_BATCH:
                con.execute(_INSERT_LISTS, [[firsts[r] for r in runs], ids, values])
            else:
                times = pa.array(firsts, _TIME)
                if len(firsts) < len(batch):
                    times = times.take(pa.array(runs, pa.int32()))
                table = pa.table({"time": times, "series_id": pa.array(ids, pa.int32()),
                                  "value": pa.array(values, pa.float64())})
                con.register("_mk_batch", table)
                con.execute("INSERT INTO samples_raw SELECT time, series_id, value FROM _mk_batch")
                con.unregister("_mk_batch")
            con.execute("COMMIT")
        except BaseException as exc:
            # The batch is lost but the thread lives on; the error is kept for health checks.
            self._rollback(con)
            self.last_error = exc
            self.dropped += len(batch)
            log.error("writing %d samples failed: %s", len(batch), exc)
            return
        self.last_error = None
        self.written += len(batch)
        self.batches += 1
        self.last_commit_seconds = time.perf_counter() - started
        info = CommitInfo(len(batch), min(firsts).astimezone(UTC), max(firsts).astimezone(UTC),
                          self.last_commit_seconds, new)
        for hook in list(self._hooks):
            try:
                hook(info)
            except Exception:  # a broken hook must not stop writing; it logs its own detail
                log.exception("commit hook %r failed", hook)

    def _columns(
        self, con: duckdb.DuckDBPyConnection, batch: Sequence[Sample]
    ) -> tuple[list[datetime], list[int], list[int], int]:
        """Return distinct times, each sample's index into them, series ids (new ones inserted), new count."""
        ids: list[int] = []
        firsts: list[datetime] = []
        runs: list[int] = []
        last: object = None
        aliases = self._aliases
        for s in batch:
            sid = aliases.get((s.host, s.name, tuple(s.labels.items())))
            ids.append(self._series_id(con, s) if sid is None else sid)
            # A collector's tick shares one datetime: convert each run once, not every sample.
            if s.time is not last:
                last = s.time
                firsts.append(s.time)
            runs.append(len(firsts) - 1)
        return firsts, runs, ids, len(self._pending_new)

    def _series_id(self, con: duckdb.DuckDBPyConnection, s: Sample) -> int:
        key = (s.host, s.name, tuple(sorted(s.labels.items())))
        sid = self._series.get(key)
        if sid is None:
            sid = self._series[key] = self._next_id
            self._next_id += 1
            con.execute(
                "INSERT INTO series (series_id, host, name, labels, series_key, created_at) "
                "VALUES (?, ?, ?, MAP(?, ?), ?, now())",
                [sid, key[0], key[1], [k for k, _ in key[2]], [v for _, v in key[2]], json.dumps(key)],
            )
            self._pending_new.append(key)
        # Labels in the order this caller gives them: skips sorting on the next sample.
        self._aliases[(s.host, s.name, tuple(s.labels.items()))] = sid
        return sid

    def _rollback(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        # Series created inside the failed transaction do not exist: forget them.
        for key in self._pending_new:
            self._series.pop(key, None)
        self._pending_new = []
        self._aliases.clear()
        self._next_id = max(self._series.values(), default=0) + 1
