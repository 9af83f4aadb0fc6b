"""Stale markers for OTLP: each resource + scope is a stream, as a target is to a Prometheus scrape.

An OpenTelemetry SDK exports every stream of its MeterProvider in full at each collection
(cumulative temporality), so a series a stream's previous export had and its next one lacks
has vanished: it gets a stale marker at the new export's time, as Prometheus marks what a
scrape no longer returns. Points flagged "no recorded value" (the OTel collector's Prometheus
receiver sends them for series a scrape lost) are markers too, as Prometheus's own OTLP
receiver and the collector's remote-write exporter turn them into StaleNaN.

What is not compared: delta points (an SDK leaves out a delta series with nothing new, which
is no vanishing) and ``target_info``. A request whose stream is older than its last export (a
retry) changes nothing. A request with the same time as the stream's last export is more of
that export (a sender that splits exports, such as the collector's batch processor with
``send_batch_max_size``): its series join the export and the markers their absence from the
first part wrote are taken back. A sender that stops sending gets no markers; its series end
with the 5-minute lookback (the collector's Prometheus exporter keeps them 5 minutes too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np

from monitorkit.interop.bulk import STALE_NAN, ColumnWriter, CommitFailed
from monitorkit.store.literals import bind

log = logging.getLogger(__name__)
Key = tuple[str, str, tuple[tuple[str, str], ...]]  # host, name, sorted labels: one series of a request
StreamKey = tuple[tuple[tuple[str, str], ...], str, str]  # resource attributes, scope name, scope version
MAX_STREAMS = 10_000  # streams remembered; the longest silent is forgotten first (pods come and go)
STALE = float(np.array([STALE_NAN], np.uint64).view(np.float64)[0])  # the ColumnWriter stores it as a marker
NONE = np.zeros(0, np.int64)


@dataclass
class Export:
    """One stream's part of a request: its newest point time (ns), its compared samples, the series it ended."""

    newest: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)  # [start, stop) of the batch's samples
    ended: set[Key] = field(default_factory=set)  # flagged "no recorded value"


@dataclass
class _Last:
    time: int  # ns
    ids: np.ndarray  # the series ids of that export, sorted
    marked: np.ndarray  # those of the export before that it lacked, marked at ``time``


class StreamTracker:
    """Remember each stream's last export by series id; ``settle`` marks what the next one lacks.

    Series ids, not keys: numpy compares thousands of them in microseconds after the write has
    given every series its id, where hashing each request's keys once more cost about 1 µs a point.
    """

    def __init__(self, max_streams: int = MAX_STREAMS) -> None:
        self.max_streams = max_streams
        self._last: dict[StreamKey, _Last] = {}
        self._lock = threading.Lock()

    def compare(self, exports: Mapping[StreamKey, tuple[int, np.ndarray, np.ndarray]]
                ) -> tuple[list[tuple[np.ndarray, int]], list[tuple[np.ndarray, int]]]:
        """Given (newest ns, present ids, ended ids) per stream, return (ids to mark, markers to take back) by time."""
        mark: list[tuple[np.ndarray, int]] = []
        revive: list[tuple[np.ndarray, int]] = []
        with self._lock:
            for stream, (newest, present, ended) in exports.items():
                last = self._last.pop(stream, None)
                if last is None or newest > last.time:
                    gone = np.setdiff1d(np.setdiff1d(last.ids, present, True), ended, True) if last is not None else NONE
                    if len(gone):
                        mark.append((gone, newest))
                    last = _Last(newest, present, gone)
                elif newest == last.time:  # more of the same export (a split one, or a resend)
                    back = np.intersect1d(last.marked, present, True)
                    if len(back):
                        revive.append((back, last.time))
                        last.marked = np.setdiff1d(last.marked, back, True)
                    last.ids = np.union1d(last.ids, present)
                self._last[stream] = last  # last in the dict: most recently heard from
            while len(self._last) > self.max_streams:
                del self._last[next(iter(self._last))]
        return mark, revive

    def settle(self, writer: ColumnWriter, exports: Mapping[StreamKey, Export], index: np.ndarray,
               entry_ids: np.ndarray, id_of: Callable[[Key], int]) -> int:
        """After a request's commit: mark what its streams' exports lack, take back what a split's first part marked.

        ``index`` holds each sample's series entry, ``entry_ids`` each entry's id (0: refused).
        Return how many markers were written.
        """
        reports = {}
        for stream, export in exports.items():
            rows = np.concatenate([index[a:b] for a, b in export.ranges]) if export.ranges else NONE
            present = np.unique(entry_ids[rows])
            ended = np.unique(np.array([id_of(k) for k in export.ended], np.int64))
            ended = ended[ended > 0]
            reports[stream] = (export.newest, np.setdiff1d(present[present > 0], ended, True), ended)
        mark, revive = self.compare(reports)
        if revive:
            writer.store.submit(lambda con: take_back(con, revive))
        if not mark:
            return 0
        sids = np.concatenate([ids for ids, _ in mark])
        ts = np.concatenate([np.full(len(ids), at // 1_000_000, np.int64) for ids, at in mark])
        try:  # the samples are committed already: a lost marker only lets a series last its window
            writer.write(sids, {}, np.arange(len(sids)), ts, np.full(len(sids), STALE))
        except CommitFailed as exc:
            log.error("writing OTLP stale markers failed: %s", exc)
            return 0
        return len(sids)


def take_back(con: duckdb.DuckDBPyConnection, markers: Iterable[tuple[np.ndarray, int]]) -> None:
    """Delete the stale markers (series ids, time ns) a first part of an export wrote (writer thread)."""
    for sids, at in markers:
        con.execute(bind("DELETE FROM stale_markers WHERE epoch_ms(time) = ? AND series_id IN (SELECT unnest(?))",
                         [at // 1_000_000, sids.tolist()]))
