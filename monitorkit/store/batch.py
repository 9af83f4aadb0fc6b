"""Turn a batch of samples into insert columns: series ids (new series inserted with the batch), times, values.

Owned by the writer thread; kept apart from the queue and commit loop in ``writer.py``.
A per-store series limit refuses samples of series past it (the first refused one is logged),
in the spirit of Prometheus's ``sample_limit``: a runaway label must not grow the file forever.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import duckdb

from monitorkit.samples import Sample
from monitorkit.store.literals import bind

log = logging.getLogger(__name__)

SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]
# Below this many samples a batch is inserted from bound lists: registering an Arrow table
# costs a few ms of fixed CPU per commit, which dominates a 1 s collector tick (~200 samples);
# larger batches (ingest bursts, backfills) go through Arrow, which scales far better.
SMALL_BATCH = 1000
# Distinct times go once (a tick shares one), each row picks its own by index: converting
# datetimes is the costly part of binding lists. Each list goes as ONE string literal cast to its
# list type ('[1,2,3]'::INTEGER[]), not a list of literals: DuckDB then parses one constant, not one
# expression per element (0.74 -> 0.48 ms for a 146-sample tick, measured on a copy of a live file).
# The cast from text is exact for doubles (repr round-trips; inf, -inf, nan and -0.0 included).
INSERT_LISTS = (
    "INSERT INTO samples_raw SELECT make_timestamptz(($1::BIGINT[])[r]), id, v "
    "FROM (SELECT unnest($2::INTEGER[]) AS r, unnest($3::INTEGER[]) AS id, unnest($4::DOUBLE[]) AS v)"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(t: datetime) -> int:
    """Return ``t`` as integer microseconds since the epoch (exact, unlike a float timestamp)."""
    delta = t - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def list_texts(firsts: Sequence[datetime], runs: Sequence[int], ids: Sequence[int],
               values: Sequence[float]) -> list[str]:
    """Return INSERT_LISTS' four parameters as list texts (``bind`` quotes them; the SQL casts them)."""
    return ["[" + ",".join([str(micros(t)) for t in firsts]) + "]",
            "[" + ",".join([str(r + 1) for r in runs]) + "]",
            "[" + ",".join(map(str, ids)) + "]",
            "[" + ",".join(map(float.__repr__, map(float, values))) + "]"]


# New series of one batch in one statement, not one INSERT each.
INSERT_SERIES = (
    "INSERT INTO series (series_id, host, name, labels, series_key, created_at) "
    "SELECT id, host, name, MAP(ks, vs), key, now() FROM (SELECT unnest(?::INTEGER[]) AS id, "
    "unnest(?::VARCHAR[]) AS host, unnest(?::VARCHAR[]) AS name, unnest(?::VARCHAR[][]) AS ks, "
    "unnest(?::VARCHAR[][]) AS vs, unnest(?::VARCHAR[]) AS key)"
)


class SeriesIds:
    """Assign series ids to samples, remembering the file's series; new ones wait in ``pending`` until committed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, max_series: int = 0) -> None:
        self.max_series = max_series  # 0: no limit
        self.refused = 0  # samples refused because their series would pass the limit
        self._series: dict[SeriesKey, int] = {}
        self.pending: list[SeriesKey] = []
        self._aliases: dict[SeriesKey, int] = {}
        self._warned = False
        for sid, host, name, labels in con.execute("SELECT series_id, host, name, labels FROM series").fetchall():
            self._series[(host, name, tuple(sorted(labels.items())))] = sid
        self._next_id = max(self._series.values(), default=0) + 1

    def __len__(self) -> int:
        return len(self._series)

    def columns(self, batch: Sequence[Sample]) -> tuple[list[datetime], list[int], list[int], list[float]]:
        """Return distinct times, each kept sample's index into them, series ids and values."""
        ids: list[int] = []
        firsts: list[datetime] = []
        runs: list[int] = []
        values: list[float] = []
        last: object = None
        aliases = self._aliases
        for s in batch:
            sid = aliases.get((s.host, s.name, tuple(s.labels.items())))
            if sid is None:
                sid = self._series_id(s)
                if sid is None:
                    continue
            ids.append(sid)
            values.append(s.value)
            # A collector's tick shares one datetime: convert each run once, not every sample.
            if s.time is not last:
                last = s.time
                firsts.append(s.time)
            runs.append(len(firsts) - 1)
        return firsts, runs, ids, values

    def insert_new(self, con: duckdb.DuckDBPyConnection) -> int:
        """Insert the batch's new series in one statement; return how many."""
        new = self.pending
        if new:
            con.execute(bind(INSERT_SERIES, [
                [self._series[k] for k in new], [k[0] for k in new], [k[1] for k in new],
                [[lk for lk, _ in k[2]] for k in new], [[lv for _, lv in k[2]] for k in new],
                [json.dumps(k) for k in new],
            ]))
        return len(new)

    def committed(self) -> None:
        """The batch's transaction committed: its new series exist."""
        self.pending = []

    def rolled_back(self) -> None:
        """The batch's transaction rolled back: forget the series it would have created."""
        for key in self.pending:
            self._series.pop(key, None)
        self.pending = []
        self._aliases.clear()
        self._next_id = max(self._series.values(), default=0) + 1

    def _series_id(self, s: Sample) -> int | None:
        key = (s.host, s.name, tuple(sorted(s.labels.items())))
        sid = self._series.get(key)
        if sid is None:
            if self.max_series and len(self._series) >= self.max_series:
                self.refused += 1
                if not self._warned:
                    self._warned = True
                    log.error("series limit store.max_series = %d reached: refusing new series, first %s %s %s; "
                              "raise the limit or drop the label that grows", self.max_series, s.host, s.name,
                              dict(s.labels))
                return None
            sid = self._series[key] = self._next_id
            self._next_id += 1
            self.pending.append(key)
        # Labels in the order this caller gives them: skips sorting on the next sample.
        self._aliases[(s.host, s.name, tuple(s.labels.items()))] = sid
        return sid
