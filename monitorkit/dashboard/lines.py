"""What a chart line draws: which series (``Trace``), how they combine, and how live points fill time buckets.

A ``Line`` reads one or more input series (``Key`` = series id and "v" for values or "r" for
rates) and combines them per time: one series as it is (scaled), several summed, a ratio of two
rates (disk latency = seconds per operation), or a histogram quantile. When the range's step is
coarser than the tick, live points are averaged into the step's buckets; the bucket still filling
is drawn too (patched in place), with its minimum and maximum, so nothing waits a whole step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.records import Points, SeriesInfo

Key = tuple[int, str]  # (series_id, "v" for values or "r" for per-second rates)
Row = tuple[float, float, float, float]  # (time ms, value, low, high)
Combine = Callable[[Sequence[float]], float]


class Trace(NamedTuple):
    """Which series a chart draws: ``Trace("net_bytes_recv_total", "{nic} in", exclude={"nic": "^lo$"})``.

    ``where`` maps a label to the value it must have (None: must be absent, "*": must be present);
    cumulative series are drawn as per-second rates, times ``scale``. ``group`` sums the matching
    series of a host into one line per value of those labels (``()``: one line for all);
    ``per`` divides by how many CPUs the host has (CPU seconds per second as percent);
    ``over`` names the counter whose rate divides this one's, series by series (seconds per read).
    """

    metric: str
    legend: str = "{name}"
    where: Mapping[str, str | None] = {}
    exclude: Mapping[str, str] = {}
    scale: float = 1.0
    group: tuple[str, ...] | None = None
    per: str | None = None
    over: str | None = None

    def matches(self, info: SeriesInfo, host: str | None, metric: str | None = None) -> bool:
        """Tell whether ``info`` belongs to this trace (on ``host``, when given)."""
        if info.name != (metric or self.metric) or (host is not None and info.host != host):
            return False
        for label, want in self.where.items():
            have = info.labels.get(label)
            if (want is None and have is not None) or (want == "*" and have is None) or (
                want not in (None, "*") and have != want
            ):
                return False
        return not any(re.search(rx, info.labels.get(label, "")) for label, rx in self.exclude.items())

    def label(self, info: SeriesInfo) -> str:
        """Return the legend text of ``info``."""
        values = {"name": info.name, "host": info.host, **info.labels}
        return self.legend.format_map(_Missing(values)).strip() or info.name

    def line_id(self, info: SeriesInfo) -> tuple[str, ...]:
        """Return what identifies the line ``info`` is drawn on (the group's label values, or the series)."""
        if self.group is None:
            return (str(info.series_id),)
        return tuple(info.labels.get(label, "") for label in self.group)


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def key_of(info: SeriesInfo) -> Key:
    """Return the key a series is read under: its rate for counters, else its values."""
    return (info.series_id, "r" if info.cumulative else "v")


def total(values: Sequence[float]) -> float:
    """Return the sum of the values present (NaN when none is)."""
    present = [v for v in values if not math.isnan(v)]
    return math.fsum(present) if present else math.nan


def ratio(values: Sequence[float]) -> float:
    """Return the first value over the second (NaN when either is missing or the second is 0: nothing happened)."""
    if len(values) != 2 or math.isnan(values[0]) or math.isnan(values[1]) or not values[1]:
        return math.nan
    return values[0] / values[1]


class Bucket:
    """The step bucket being filled by live points: its start, sum, count, minimum and maximum."""

    __slots__ = ("hi", "lo", "n", "start", "total")

    def __init__(self, start: float, total: float = 0.0, n: int = 0, lo: float = math.inf, hi: float = -math.inf) -> None:
        self.start, self.total, self.n, self.lo, self.hi = start, total, n, lo, hi

    def add(self, value: float) -> None:
        """Count one more point."""
        self.total += value
        self.n += 1
        self.lo = min(self.lo, value)
        self.hi = max(self.hi, value)

    def row(self) -> Row:
        """Return the bucket as a drawn point (its average, minimum and maximum)."""
        return (self.start, self.total / self.n, self.lo, self.hi)


class Line:
    """One drawn line: its inputs, how they combine, and what the chart already shows of it."""

    __slots__ = ("bucket", "column", "combine", "index", "inputs", "key", "label", "last_t", "scale", "source")

    def __init__(self, key: Key, inputs: Iterable[Key], scale: float = 1.0, combine: Combine | None = None) -> None:
        self.key = key
        self.inputs: list[Key] = list(inputs)
        self.scale = scale
        self.combine = combine
        self.source: Any = None  # the ColumnDataSource the line is drawn from (its chart sets it)
        self.column = "v"
        self.label = ""
        self.index = 0
        self.last_t = -math.inf
        self.bucket: Bucket | None = None

    def points(self, by_key: Mapping[Key, Points]) -> list[Row]:
        """Return the line's rows (time, value, low, high) from its inputs' points, scaled."""
        s = self.scale
        if self.combine is None and len(self.inputs) == 1:
            pts = by_key.get(self.inputs[0])
            if pts is None:
                return []
            lows = pts.lows or pts.values
            highs = pts.highs or pts.values
            return [(t, v * s, lo * s, hi * s) for t, v, lo, hi in zip(pts.times, pts.values, lows, highs, strict=True)]
        # Several inputs: one value per input at each time (NaN where one has none), combined.
        at: dict[float, list[float]] = {}
        width = len(self.inputs)
        for i, key in enumerate(self.inputs):
            pts = by_key.get(key)
            for t, v in zip(pts.times, pts.values, strict=True) if pts else ():
                at.setdefault(t, [math.nan] * width)[i] = v
        fn = self.combine or total
        rows = []
        for t in sorted(at):
            v = fn(at[t]) * s
            if not math.isnan(v):
                rows.append((t, v, math.nan, math.nan))
        return rows

    def history(self, rows: list[Row], rng: TimeRange, tick_ms: float, newest_ms: float | None = None,
                count: int = 1) -> list[Row]:
        """Take the history to show; live points continue its newest bucket when that one is still filling."""
        self.bucket = None
        self.last_t = rows[-1][0] if rows else -math.inf
        step_ms = rng.step * 1000.0
        if rows and rng.live and step_ms > tick_ms and rows[-1][0] >= math.floor(rng.end_ms / step_ms) * step_ms:
            t, v, lo, hi = rows[-1]
            n = max(1, count)
            self.bucket = Bucket(t, v * n, n, v if math.isnan(lo) else lo, v if math.isnan(hi) else hi)
            self.last_t = max(t, newest_ms or t)
        return rows

    def count(self, by_key: Mapping[Key, Points]) -> int:
        """Return how many samples the newest history point of a one-series line averages (1 if unknown)."""
        pts = by_key.get(self.inputs[0]) if len(self.inputs) == 1 and self.combine is None else None
        return int(pts.counts[-1]) if pts is not None and pts.counts else 1

    def take(self, rows: Iterable[Row], rng: TimeRange, tick_ms: float) -> tuple[list[Row], Row | None]:
        """Return the points to append and the bucket still filling (drawn in place), from new live rows."""
        step_ms = rng.step * 1000.0
        out: list[Row] = []
        changed = False
        for row in rows:
            t = row[0]
            if t <= self.last_t:
                continue
            self.last_t = t
            if step_ms <= tick_ms:
                out.append(row)
                continue
            start = math.floor(t / step_ms) * step_ms
            if self.bucket is not None and start != self.bucket.start:
                out.append(self.bucket.row())
                self.bucket = None
            if self.bucket is None:
                self.bucket = Bucket(start)
            self.bucket.add(row[1])
            changed = True
        return out, (self.bucket.row() if changed and self.bucket is not None else None)
