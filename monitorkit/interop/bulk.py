"""Write columns of samples (series, ms timestamps, values) in one transaction, with Prometheus's append rules.

For receivers (remote_write, OTLP): no Sample object per sample. New series are created through
the store's writer (one sample each, so its series cache stays the only one that assigns ids);
every other sample goes in as one Arrow table in one transaction on the writer thread, and the
call returns only after that commit.

Append rules, as Prometheus 2.42's TSDB applies them to remote-written samples (no
out-of-order window): against the series' last committed sample, an older timestamp fails the
whole request (``out of order sample``), the same timestamp with another value fails it too
(``duplicate sample for timestamp``), the same timestamp and value is dropped silently (a
resend). Within one request, a sample not newer than an earlier one of its series is dropped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import NamedTuple

import duckdb
import numpy as np
import pyarrow as pa

from monitorkit.errors import MonitorkitError, StoreClosedError
from monitorkit.samples import Sample
from monitorkit.store import Store

UNLOADED = np.iinfo(np.int64).min  # last state not read from the file yet
NO_PRIOR = UNLOADED + 1  # read: the series has no sample in the look-back window
LOOKBACK_MS = 3_600_000  # how far back the last sample of a series is looked for (Prometheus' head: about 1 h)
_TIME = pa.timestamp("us", tz="UTC")
STALE_NAN = np.uint64(0x7FF0000000000002)  # Prometheus's stale marker: kept as a row of stale_markers


class SeriesSpec(NamedTuple):
    """A series to find or create: ``SeriesSpec("db1", "up", {"job": "node"})``."""

    host: str
    name: str
    labels: Mapping[str, str]


class AppendRefused(MonitorkitError, ValueError):
    """A request breaks the append rules (out of order, or a different value for a stored timestamp): answered 400."""


class CommitFailed(MonitorkitError):
    """The batch was not committed (store closed, commit error or timeout): answered 503 so the sender retries."""


class Appended(NamedTuple):
    """What a write did: samples committed, resends dropped, out-of-order ones dropped, refused and non-finite ones."""

    written: int
    duplicates: int
    out_of_order: int
    refused: int
    nonfinite: int
    ids: np.ndarray  # the series id of each series entry (0: refused), for the caller's cache


def series_key(spec: SeriesSpec) -> str:
    """Return the ``series.series_key`` the store's writer gives this series (host, name, sorted labels as JSON)."""
    return json.dumps([spec.host, spec.name, [list(p) for p in sorted(spec.labels.items())]])


class Counts:
    """What a receiver did since start, by outcome (for the owner's health and for tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, int] = {}

    def add(self, **counts: int) -> None:
        """Add to the named counters."""
        with self._lock:
            for key, n in counts.items():
                self.values[key] = self.values.get(key, 0) + n


class _Pending:
    """Rows of one request waiting for the group commit, and the series they touch."""

    __slots__ = ("future", "stale", "table", "touched")

    def __init__(self, table: pa.Table, touched: np.ndarray, stale: pa.Table) -> None:
        self.table = table
        self.touched = touched
        self.stale = stale  # (time, series_id) of the stale markers of known series
        self.future: Future[None] = Future()


class ColumnWriter:
    """Append columns to one store: ``ColumnWriter(store).write(ids, specs, index, ts_ms, values)``."""

    def __init__(self, store: Store, *, commit_timeout: float = 10.0) -> None:
        self.store = store
        self.commit_timeout = commit_timeout
        self.commits = 0
        self._ids: dict[str, int] = {}
        self._last_ts = np.full(1024, UNLOADED, np.int64)
        self._last_v = np.zeros(1024, np.float64)
        self._lock = threading.Lock()  # checks and the last-sample state, one request at a time
        self._queue_lock = threading.Lock()  # the tables waiting for the group commit; never held while waiting
        self._queue: list[_Pending] = []
        self._committing = False
        self._resets: list[np.ndarray] = []  # series whose state a failed commit made unknown
        self._markers: bool | None = None  # whether stale_markers exists (read once)

    def write(self, ids: np.ndarray, specs: Mapping[int, SeriesSpec | None], index: np.ndarray, ts_ms: np.ndarray,
              values: np.ndarray) -> Appended:
        """Write samples ``i`` (of series entry ``index[i]``, at ``ts_ms[i]``, ``values[i]``); return once committed.

        ``ids`` gives each series entry's id: known (> 0), refused (0: its samples are counted, not written),
        or -1 for an entry whose SeriesSpec (or None: refused) is ``specs[entry]``, found or created here.
        Raises AppendRefused (nothing written) or CommitFailed.
        """
        with self._lock:
            appended, pending = self._write(np.array(ids, np.int64), dict(specs), np.asarray(index, np.int64),
                                            np.asarray(ts_ms, np.int64), np.asarray(values, np.float64))
        if pending is not None:
            try:
                pending.future.result(self.commit_timeout)
            except FutureTimeout:
                raise CommitFailed(f"samples not committed within {self.commit_timeout:g} s") from None
        return appended

    def _write(self, ids: np.ndarray, specs: dict[int, SeriesSpec | None], index: np.ndarray, ts: np.ndarray,
               values: np.ndarray) -> tuple[Appended, _Pending | None]:
        with self._queue_lock:
            resets, self._resets = self._resets, []
        for touched in resets:
            self._last_ts[touched] = UNLOADED  # read again from what is committed
        fresh = self._resolve(ids, specs)  # sets ids: >= 1 known, 0 refused, < 0 new (-1 - group)
        sid = ids[index] if len(index) else np.zeros(0, np.int64)
        marked = (values.view(np.uint64) == STALE_NAN) & (sid > 0)
        stale = (sid[marked], ts[marked])
        finite = np.isfinite(values)
        usable = finite & (sid != 0)
        nonfinite, refused = int((~finite).sum()), int((finite & (sid == 0)).sum())
        sid, ts, values = sid[usable], ts[usable], values[usable]
        # Against the last committed sample of each known series.
        known = sid > 0
        self._load_last(np.unique(sid[known]), int(ts.min()) if len(ts) else 0)
        last_ts = np.full(len(sid), NO_PRIOR, np.int64)
        last_v = np.zeros(len(sid))
        last_ts[known], last_v[known] = self._last_ts[sid[known]], self._last_v[sid[known]]
        same_time = ts == last_ts
        if (ts < last_ts).any():
            raise AppendRefused(self._refusal("out of order sample", specs, ids, sid, ts, ts < last_ts))
        clash = same_time & (values.view(np.int64) != last_v.view(np.int64))
        if clash.any():
            raise AppendRefused(self._refusal("duplicate sample for timestamp", specs, ids, sid, ts, clash))
        duplicates = int(same_time.sum())
        sid, ts, values = sid[~same_time], ts[~same_time], values[~same_time]
        # Within the request: each series in submission order, a sample not newer than one before it is dropped.
        order = np.argsort(sid, kind="stable")
        sid, ts, values = sid[order], ts[order], values[order]
        if len(sid) > 1 and (sid[1:] == sid[:-1]).any():  # some series has several samples here
            import pandas as pd  # only then: grouped running maximum
            previous = pd.Series(ts).groupby(sid).cummax().groupby(sid).shift(1).to_numpy(np.float64, na_value=-np.inf)
            newer = ts > previous
            sid, ts, values = sid[newer], ts[newer], values[newer]
            out_of_order = int((~newer).sum())
        else:
            out_of_order = 0
        firsts, created = self._create(fresh, sid, ts, values, ids)
        if len(created):
            sid = np.where(sid < 0, created[np.maximum(-1 - sid, 0)], sid)
        rest = np.ones(len(sid), bool)
        rest[firsts] = False
        alive = rest & (sid > 0)
        refused += int((~alive & rest).sum())
        stored = sid > 0
        self._remember(sid[stored], ts[stored], values[stored])
        appended = Appended(int(alive.sum()) + len(firsts), duplicates, out_of_order, refused, nonfinite,
                            np.maximum(ids, 0))
        return appended, self._enqueue(sid[alive], ts[alive], values[alive], stale)

    def _resolve(self, ids: np.ndarray, specs: dict[int, SeriesSpec | None]) -> list[tuple[int, SeriesSpec]]:
        """Set the ids of the ``-1`` entries: found ones, 0 refused, -1-k for the k-th series that does not exist yet.

        Return the (entry, spec) of the new ones.
        """
        lookup: dict[str, list[int]] = {}
        for i in np.flatnonzero(ids == -1).tolist():
            spec = specs.get(i)
            if spec is None:
                ids[i] = 0
                continue
            key = series_key(spec)
            known = self._ids.get(key)
            if known is None:
                lookup.setdefault(key, []).append(i)
            else:
                ids[i] = known
        if lookup:
            for key, found in self._find(list(lookup)).items():
                self._ids[key] = found
                ids[lookup.pop(key)] = found
        fresh: list[tuple[int, SeriesSpec]] = []
        for group, positions in enumerate(lookup.values()):
            ids[positions] = -1 - group  # one group per distinct new series, shared by its repeated entries
            fresh.extend((i, specs[i]) for i in positions)  # type: ignore[misc]
        return fresh

    def _find(self, keys: list[str]) -> dict[str, int]:
        cur = self.store.cursor()
        try:
            rows = cur.execute("SELECT series_key, series_id FROM series WHERE series_key IN (SELECT unnest(?))",
                               [keys]).fetchall()
        finally:
            cur.close()
        return {key: int(sid) for key, sid in rows}

    def _create(self, fresh: list[tuple[int, SeriesSpec]], sid: np.ndarray, ts: np.ndarray, values: np.ndarray,
                ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Create new series through the store's writer with their first sample.

        Return the rows written that way and each new group's series id (0: refused); set ``ids`` of the
        new entries in place.
        """
        if not fresh:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        specs: dict[int, SeriesSpec] = {}
        for i, spec in fresh:
            specs.setdefault(-1 - int(ids[i]), spec)
        rows = np.flatnonzero(sid < 0)
        groups, first = np.unique(-1 - sid[rows], return_index=True)
        first_rows = rows[first]
        samples = [Sample(datetime.fromtimestamp(int(ts[row]) / 1000, UTC), specs[g].name, dict(specs[g].labels),
                          float(values[row]), specs[g].host)
                   for g, row in zip(groups.tolist(), first_rows.tolist(), strict=True)]
        try:
            self.store.write(samples, validate=False)
            self.store.flush(self.commit_timeout)
        except (StoreClosedError, FutureTimeout) as exc:
            raise CommitFailed(f"new series not committed: {exc or 'timed out'}") from None
        found = self._find([series_key(spec) for spec in specs.values()])
        created = np.zeros(len(specs), np.int64)
        for g, spec in specs.items():
            created[g] = found.get(series_key(spec), 0)  # 0: the store refused it (its series limit, say)
            if created[g]:
                self._ids[series_key(spec)] = int(created[g])
        for i, _ in fresh:
            ids[i] = created[-1 - int(ids[i])]
        return first_rows[created[groups] > 0], created

    def _enqueue(self, sid: np.ndarray, ts: np.ndarray, values: np.ndarray,
                 stale: tuple[np.ndarray, np.ndarray]) -> _Pending | None:
        """Queue the rows and stale markers for the next group commit (requests meanwhile share one transaction)."""
        if not len(sid) and not len(stale[0]):
            return None
        table = pa.table({"time": pa.array(ts * 1000, pa.int64()).cast(_TIME),
                          "series_id": pa.array(sid, pa.int32()), "value": pa.array(values, pa.float64())})
        markers = pa.table({"time": pa.array(stale[1] * 1000, pa.int64()).cast(_TIME),
                            "series_id": pa.array(stale[0], pa.int32())})
        pending = _Pending(table, np.unique(sid), markers)
        with self._queue_lock:
            self._queue.append(pending)
            start = not self._committing
            self._committing = True
        if start:
            try:
                self.store.submit(self._commit_queued)
            except StoreClosedError as exc:
                self._fail(CommitFailed(f"samples not committed: {exc}"))
        return pending

    def _commit_queued(self, con: duckdb.DuckDBPyConnection) -> None:
        """Commit every queued table in one transaction (writer thread), until none is left."""
        while True:
            with self._queue_lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._committing = False
                    return
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    con.register("_mk_columns", pa.concat_tables([p.table for p in batch]))
                    con.execute("INSERT INTO samples_raw SELECT time, series_id, value FROM _mk_columns")
                    markers = pa.concat_tables([p.stale for p in batch])
                    if markers.num_rows and self._has_markers(con):
                        con.register("_mk_stale", markers)
                        con.execute("INSERT INTO stale_markers SELECT time, series_id FROM _mk_stale")
                    con.execute("COMMIT")
                finally:
                    con.unregister("_mk_columns")
                    con.unregister("_mk_stale")
            except duckdb.Error as exc:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # the failed COMMIT already ended the transaction
                self._fail(CommitFailed(f"samples not committed: {exc}"), batch)
                continue
            self.commits += 1
            for pending in batch:
                pending.future.set_result(None)

    def _has_markers(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Tell whether the file has the rules' stale_markers table (a store without the rules schema has not)."""
        if self._markers is None:
            self._markers = bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'stale_markers' "
                                             "AND schema_name = 'main'").fetchall()[0][0])
        return self._markers

    def _fail(self, error: CommitFailed, batch: list[_Pending] | None = None) -> None:
        """Fail ``batch`` and everything queued after it (checked against state that was never committed)."""
        with self._queue_lock:
            failed, self._queue = (batch or []) + self._queue, []
            self._resets.extend(p.touched for p in failed)
            self._committing = False if batch is None else self._committing
        for pending in failed:
            pending.future.set_exception(error)

    def _grow(self, top: int) -> None:
        if top >= len(self._last_ts):
            size = max(top + 1, 2 * len(self._last_ts))
            self._last_ts = np.concatenate([self._last_ts, np.full(size - len(self._last_ts), UNLOADED, np.int64)])
            self._last_v = np.concatenate([self._last_v, np.zeros(size - len(self._last_v))])

    def _load_last(self, sids: np.ndarray, since_ms: int) -> None:
        """Read the last sample of series seen for the first time by this writer (within LOOKBACK_MS)."""
        if not len(sids):
            return
        self._grow(int(sids.max()))
        todo = sids[self._last_ts[sids] == UNLOADED]
        if not len(todo):
            return
        self._last_ts[todo] = NO_PRIOR
        cur = self.store.cursor()
        try:
            rows = cur.execute(
                "SELECT series_id, epoch_ms(max(time)), arg_max(value, time) FROM samples_raw "
                "WHERE series_id IN (SELECT unnest(?::INTEGER[])) AND time >= to_timestamp(? / 1000.0) "
                "GROUP BY series_id", [todo.tolist(), since_ms - LOOKBACK_MS]).fetchall()
        finally:
            cur.close()
        for sid, ms, value in rows:
            self._last_ts[sid], self._last_v[sid] = ms, value

    def _remember(self, sid: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        if not len(sid):
            return
        self._grow(int(sid.max()))
        order = np.lexsort((ts, sid))
        sid, ts, values = sid[order], ts[order], values[order]
        last = np.flatnonzero(np.append(sid[1:] != sid[:-1], True))
        self._last_ts[sid[last]], self._last_v[sid[last]] = ts[last], values[last]

    def _refusal(self, what: str, specs: dict[int, SeriesSpec | None], ids: np.ndarray, sid: np.ndarray,
                 ts: np.ndarray, bad: np.ndarray) -> str:
        row = int(np.flatnonzero(bad)[0])
        series_id = int(sid[row])
        found = self.store.query("SELECT name, labels FROM series WHERE series_id = ?", [series_id])
        name = f"{found[0][0]}{found[0][1]}" if found else f"series {series_id}"
        return (f"{what}: {int(bad.sum())} sample(s), the first {name} at {int(ts[row])} ms, "
                f"last stored at {int(self._last_ts[series_id])} ms; nothing of this request was written")
