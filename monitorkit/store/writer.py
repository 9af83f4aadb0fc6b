"""The writer thread: the only user of the write connection, fed by a bounded queue."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC
from typing import TypeVar

import duckdb

from monitorkit.errors import StoreClosedError, StoreWriteError
from monitorkit.samples import Sample
from monitorkit.store.batch import INSERT_LISTS, SMALL_BATCH, SeriesIds, list_texts
from monitorkit.store.literals import bind

log = logging.getLogger(__name__)
T = TypeVar("T")

CommitHook = Callable[["CommitInfo"], None]


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
        max_series: int = 0,
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
        self.series = SeriesIds(con, max_series)
        self.failed_commits = 0
        self.lost_on_commit = 0  # of ``dropped``: samples whose commit failed (the rest: queue full)
        self._thread = threading.Thread(target=self._run, name="monitorkit-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Tell whether the writer thread runs (or closed on purpose)."""
        return self._thread.is_alive() or self._closed

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
            failed: BaseException | None = None  # a commit since the last flush marker failed
            for item in items:
                if isinstance(item, _Deferred):
                    deferred.append(item)  # after the commit of this batch, which it must see
                    continue
                if isinstance(item, (list, tuple)):
                    batch.extend(item)
                    continue
                failed = self._commit(batch) or failed
                batch = []
                self._run_deferred(deferred)
                if isinstance(item, Future):
                    # A flush resolves only when everything before it is stored: nothing unstored is acknowledged.
                    if failed is None:
                        item.set_result(None)
                    else:
                        item.set_exception(StoreWriteError(f"samples were not stored: {describe(failed)}"))
                    failed = None
                elif callable(item):
                    item(self._con)
            self._commit(batch)
            self._run_deferred(deferred)

    def _run_deferred(self, deferred: list[_Deferred]) -> None:
        """Run the deferred tasks (the batch they must see is committed) and clear them."""
        for task in deferred:
            task.fn(self._con)
        deferred.clear()

    def _commit(self, batch: list[Sample]) -> BaseException | None:
        """Commit ``batch`` in one transaction; return the error if it failed (the batch is then dropped)."""
        if not batch:
            return None
        started = time.perf_counter()
        con = self._con
        ids = self.series
        try:
            firsts, runs, sids, values = ids.columns(batch)
            # New series and their samples commit together; a batch of known series is one
            # statement, which commits by itself (BEGIN and COMMIT cost ~0.6 ms more a tick).
            atomic = bool(ids.pending)
            if atomic:
                con.execute("BEGIN TRANSACTION")
            new = ids.insert_new(con)
            if len(sids) < SMALL_BATCH:
                con.execute(bind(INSERT_LISTS, list_texts(firsts, runs, sids, values)))
            else:
                import pyarrow as pa  # only large batches pay for pyarrow (~30 MB): `collect` never does

                times = pa.array(firsts, pa.timestamp("us", tz="UTC"))
                if len(firsts) < len(sids):
                    times = times.take(pa.array(runs, pa.int32()))
                table = pa.table({"time": times, "series_id": pa.array(sids, pa.int32()),
                                  "value": pa.array(values, pa.float64())})
                con.register("_mk_batch", table)
                con.execute("INSERT INTO samples_raw SELECT time, series_id, value FROM _mk_batch")
                con.unregister("_mk_batch")
            if atomic:
                con.execute("COMMIT")
        except BaseException as exc:
            # The batch is dropped (its producers are told through flush) but the thread lives on;
            # the error is kept for health, which turns failing at once with its reason.
            self._rollback(con)
            self.last_error = exc
            self.failed_commits += 1
            self.dropped += len(batch)
            self.lost_on_commit += len(batch)
            log.error("writing %d samples failed (%s): %s", len(batch), describe(exc), exc)
            return exc
        ids.committed()
        self.last_error = None
        self.written += len(sids)
        self.batches += 1
        self.last_commit_seconds = time.perf_counter() - started
        if not firsts:
            return None
        info = CommitInfo(len(sids), min(firsts).astimezone(UTC), max(firsts).astimezone(UTC),
                          self.last_commit_seconds, new)
        for hook in list(self._hooks):
            try:
                hook(info)
            except Exception:  # a broken hook must not stop writing; it logs its own detail
                log.exception("commit hook %r failed", hook)
        return None

    def _rollback(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        self.series.rolled_back()


def describe(exc: BaseException) -> str:
    """Say in a few words why a write failed: disk full, read-only, corrupt block, or the error's type."""
    text = str(exc).lower()
    if "no space left" in text or "disk is full" in text or ("could not write" in text and "space" in text):
        return "disk full"
    if "read-only" in text or "read only" in text or "permission denied" in text:
        return "read-only"
    if "corrupt" in text or "checksum" in text:
        return "corrupt block"
    return type(exc).__name__
