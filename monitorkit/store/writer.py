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
from typing import TypeVar

import duckdb
import pyarrow as pa

from monitorkit.errors import StoreClosedError
from monitorkit.samples import Sample

log = logging.getLogger(__name__)
T = TypeVar("T")

CommitHook = Callable[["CommitInfo"], None]
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]
_TIME = pa.timestamp("us", tz="UTC")
# Below this many samples a batch is inserted from bound lists: registering an Arrow table
# costs a few ms of fixed CPU per commit, which dominates a 1 s collector tick (~200 samples);
# larger batches (ingest bursts, backfills) go through Arrow, which scales far better.
SMALL_BATCH = 1000
# Distinct times go once (a tick shares one), each row picks its own by index: converting
# datetimes is the costly part of binding lists.
_INSERT_LISTS = (
    "INSERT INTO samples_raw SELECT ($1::TIMESTAMPTZ[])[r], id, v "
    "FROM (SELECT unnest($2::INTEGER[]) AS r, unnest($3::INTEGER[]) AS id, unnest($4::DOUBLE[]) AS v)"
)
# New series of one batch in one statement, not one INSERT each.
_INSERT_SERIES = (
    "INSERT INTO series (series_id, host, name, labels, series_key, created_at) "
    "SELECT id, host, name, MAP(ks, vs), key, now() FROM (SELECT unnest(?::INTEGER[]) AS id, "
    "unnest(?::VARCHAR[]) AS host, unnest(?::VARCHAR[]) AS name, unnest(?::VARCHAR[][]) AS ks, "
    "unnest(?::VARCHAR[][]) AS vs, unnest(?::VARCHAR[]) AS key)"
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


class _Deferred:
    """A task that rides on the next commit due anyway instead of forcing one (``submit(urgent=False)``)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        self.fn = fn


class Writer:
    """Take sample batches from a bounded queue and commit them (small ones as list inserts, large as Arrow).

    When more than ``max_queued`` samples wait, the oldest batches are dropped and
    counted in ``dropped``; ``flush()`` returns once everything queued before it is
    committed. With ``flush_interval`` > 0 (seconds), samples that arrive within that
    interval of the first uncommitted one share one transaction (a commit costs a few ms
    of CPU whatever its size); ``flush()``, ``submit()`` and ``close()`` commit at once.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        max_queued: int = 1_000_000,
        hooks: Sequence[CommitHook] = (),
        flush_interval: float = 0.0,
    ) -> None:
        self._con = con
        self._max_queued = max_queued
        self.flush_interval = flush_interval
        self._barriers = 0  # flush markers and submitted tasks waiting: commit without delay
        self._oldest = 0.0  # monotonic time the oldest uncommitted batch was queued
        self._hooks: list[CommitHook] = list(hooks)
        self._queue: deque[Sequence[Sample] | Future[None] | _Deferred | Callable[[duckdb.DuckDBPyConnection], object]] = (
            deque()
        )
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
            first = not self._queued
            if first:
                self._oldest = time.monotonic()
            self._queue.append(samples)
            self._queued += len(samples)
            while self._queued > self._max_queued:
                oldest = next((item for item in self._queue if isinstance(item, (list, tuple))), None)
                if oldest is None or oldest is samples:
                    break
                self._queue.remove(oldest)
                self._queued -= len(oldest)
                self.dropped += len(oldest)
            if first or self.flush_interval <= 0:
                self._cond.notify()  # later batches join the armed timer: no wake-up per batch

    def submit(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, urgent: bool = True) -> Future[T]:
        """Run ``fn(write_connection)`` in the writer thread, after what is queued; return its future.

        With ``urgent=False`` the task waits for the next commit that is due anyway (at most
        ``flush_interval``) instead of forcing one: periodic work adds no commit of its own.
        """
        future: Future[T] = Future()

        def task(con: duckdb.DuckDBPyConnection) -> None:
            try:
                future.set_result(fn(con))
            except BaseException as exc:  # handed to the caller through the future
                future.set_exception(exc)

        with self._cond:
            if self._closed:
                raise StoreClosedError("the store is closed")
            if not urgent and self.flush_interval > 0:
                if not self._queue:
                    self._oldest = time.monotonic()
                    self._cond.notify()  # arm the timer: nothing else may come to commit
                self._queue.append(_Deferred(task))
                return future
            self._queue.append(task)
            self._barriers += 1
            self._cond.notify()
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything queued before this call is committed."""
        marker: Future[None] = Future()
        with self._cond:
            if self._closed and not self._thread.is_alive():
                return
            self._queue.append(marker)
            self._barriers += 1
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

    def set_flush_interval(self, seconds: float) -> None:
        """Group samples arriving within ``seconds`` into one commit (0: commit each batch at once)."""
        with self._cond:
            self.flush_interval = max(0.0, float(seconds))
            self._cond.notify()

    def _wait_for_work(self) -> None:
        """Wait (holding the condition) until there is something to commit now, or the writer closes."""
        while not self._closed and not self._barriers:
            if not self._queue:
                self._cond.wait()
                continue
            left = self._oldest + self.flush_interval - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._wait_for_work()
                if not self._queue and self._closed:
                    return
                items = list(self._queue)
                self._queue.clear()
                self._queued = 0
                self._barriers = 0
            batch: list[Sample] = []
            deferred: list[_Deferred] = []
            for item in items:
                if isinstance(item, _Deferred):
                    deferred.append(item)  # after the commit of this batch, which it must see
                    continue
                if isinstance(item, Future):
                    self._commit(batch)
                    batch = []
                    self._run_deferred(deferred)
                    item.set_result(None)
                elif callable(item):
                    self._commit(batch)
                    batch = []
                    self._run_deferred(deferred)
                    item(self._con)
                else:
                    batch.extend(item)
            self._commit(batch)
            self._run_deferred(deferred)

    def _run_deferred(self, deferred: list[_Deferred]) -> None:
        """Run the deferred tasks (the batch they must see is committed) and clear them."""
        for task in deferred:
            task.fn(self._con)
        deferred.clear()

    def _commit(self, batch: list[Sample]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        con = self._con
        self._pending_new = []
        try:
            con.execute("BEGIN TRANSACTION")
            firsts, runs, ids = self._columns(batch)
            new = len(self._pending_new)
            values = [s.value for s in batch]
            if new:
                self._insert_series(con)
            if len(batch) < SMALL_BATCH:
                con.execute(_INSERT_LISTS, [firsts, [r + 1 for r in runs], ids, values])
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

    def _columns(self, batch: Sequence[Sample]) -> tuple[list[datetime], list[int], list[int]]:
        """Return distinct times, each sample's index into them and series ids (new ones in ``_pending_new``)."""
        ids: list[int] = []
        firsts: list[datetime] = []
        runs: list[int] = []
        last: object = None
        aliases = self._aliases
        for s in batch:
            sid = aliases.get((s.host, s.name, tuple(s.labels.items())))
            ids.append(self._series_id(s) if sid is None else sid)
            # A collector's tick shares one datetime: convert each run once, not every sample.
            if s.time is not last:
                last = s.time
                firsts.append(s.time)
            runs.append(len(firsts) - 1)
        return firsts, runs, ids

    def _insert_series(self, con: duckdb.DuckDBPyConnection) -> None:
        """Insert the batch's new series in one statement."""
        new = self._pending_new
        con.execute(_INSERT_SERIES, [
            [self._series[k] for k in new], [k[0] for k in new], [k[1] for k in new],
            [[lk for lk, _ in k[2]] for k in new], [[lv for _, lv in k[2]] for k in new],
            [json.dumps(k) for k in new],
        ])

    def _series_id(self, s: Sample) -> int:
        key = (s.host, s.name, tuple(sorted(s.labels.items())))
        sid = self._series.get(key)
        if sid is None:  # inserted with the batch's other new series at the end of _columns
            sid = self._series[key] = self._next_id
            self._next_id += 1
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
