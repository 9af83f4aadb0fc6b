"""Stale markers: a series that stops being reported ends at once, as in Prometheus.

Prometheus writes a stale marker for every series a scrape no longer returns (and for all of
them when the scrape fails); a series whose latest entry is a marker drops out of instant
selectors at once instead of lasting the 5-minute lookback. monitorkit keeps markers in
``stale_markers (time, series_id)``; ``gauge_window``, ``counter_window`` and ``instant`` leave
a series out from its marker on. A source that reports whole sets of series keeps a
``SeriesTracker`` and hands what vanished to ``submit_stale``:

```python
tracker = SeriesTracker()
store.write(samples)
gone = tracker.vanished(samples)
if gone:
    submit_stale(store, gone, at)
```
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb

from monitorkit.errors import StoreClosedError
from monitorkit.samples import Sample
from monitorkit.store.literals import bind

if TYPE_CHECKING:
    from monitorkit.store import Store

log = logging.getLogger(__name__)
KEEP = timedelta(days=31)  # markers older than this are dropped: the raw samples they end are gone by then
CLEANUP_EVERY = 3600.0  # seconds between those deletions (each one reads the times of the whole table)
_next_cleanup = 0.0


def series_key(host: str, name: str, labels: Mapping[str, str]) -> str:
    """Return the ``series.series_key`` the store's writer gives a series (host, name, sorted labels as JSON)."""
    return json.dumps((host, name, tuple(sorted(labels.items()))))


class SeriesTracker:
    """Remember the series of a source's last report and tell which ones its next report lacks."""

    def __init__(self) -> None:
        # Frozensets, not series keys: building JSON for every sample of every report costs about
        # six times more (benchmarks/staleness_bench.py), and label order does not matter to a
        # frozenset; only the few vanished series are turned into keys.
        self.last: set[tuple[str, str, frozenset[tuple[str, str]]]] = set()

    def vanished(self, samples: Iterable[Sample]) -> list[str]:
        """Return the keys of the series the previous report had and ``samples`` lacks; remember ``samples``'."""
        keys = {(s.host, s.name, frozenset(s.labels.items())) for s in samples}
        gone, self.last = self.last - keys, keys
        return sorted(series_key(host, name, dict(labels)) for host, name, labels in gone)


def mark_stale(con: duckdb.DuckDBPyConnection, keys: Sequence[str], at: datetime) -> int:
    """Write a stale marker at ``at`` for each stored series of ``keys`` (writer thread); return how many."""
    if not keys:
        return 0
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'stale_markers' "
                       "AND schema_name = 'main'").fetchall()[0][0]:
        return 0  # a store without the rules' schema: no rule reads markers there
    row = con.execute(bind("INSERT INTO stale_markers SELECT ?::TIMESTAMPTZ, series_id FROM series "
                           "WHERE series_key IN (SELECT unnest(?::VARCHAR[]))", [at, list(keys)])).fetchone()
    global _next_cleanup
    now = time.monotonic()
    if now >= _next_cleanup:  # at most hourly: collectors mark often (say, a process group that empties)
        _next_cleanup = now + CLEANUP_EVERY
        con.execute(bind("DELETE FROM stale_markers WHERE time < ?::TIMESTAMPTZ", [at - KEEP]))
    return int(row[0]) if row else 0


def submit_stale(store: Store, keys: Sequence[str], at: datetime) -> Future[int]:
    """Queue stale markers for ``keys`` at ``at`` in the writer thread (never blocks); the future says how many.

    A failure is logged: a missing marker only lets a vanished series last its window, as before.
    """
    keys = list(keys)
    future = store.submit(lambda con: mark_stale(con, keys, at))
    future.add_done_callback(_log_failure)
    return future


def _log_failure(future: Future[int]) -> None:
    exc = future.exception()
    if exc is not None and not isinstance(exc, StoreClosedError):
        log.error("writing stale markers failed: %s", exc)
