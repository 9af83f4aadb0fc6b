"""Time ranges and the history a chart opens with: the tier (raw, 1 min, 1 h) chosen like ``metric_range``."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from monitorkit.dashboard.errors import DashboardError
from monitorkit.dashboard.layouts import RANGES
from monitorkit.dashboard.reader import Reader
from monitorkit.dashboard.records import Points
from monitorkit.store.tiers import BY_NAME, tier_for

TARGET_POINTS = 900
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


class TimeRange(NamedTuple):
    """A resolved range: ``start``/``end`` in epoch ms, the tier to read and the step in seconds."""

    start_ms: float
    end_ms: float
    tier: str
    step: int
    live: bool

    @property
    def span(self) -> float:
        """Return the length in seconds."""
        return (self.end_ms - self.start_ms) / 1000.0

    @property
    def points(self) -> int:
        """Return how many points a line holds at most (the stream rollover)."""
        return int(self.span / self.step) + 2


def step_for(span_seconds: float, tier: str, tick: float = 1.0) -> int:
    """Return a round step (seconds) giving about TARGET_POINTS points, never finer than the tier."""
    floor = BY_NAME[tier].step or max(1, round(tick))
    want = max(floor, span_seconds / TARGET_POINTS)
    return next((s for s in NICE_STEPS if s >= want), NICE_STEPS[-1])


def resolve(choice: str, *, now: float | None = None, start: datetime | None = None, end: datetime | None = None,
            tick: float = 1.0) -> TimeRange:
    """Resolve ``"15m"`` (relative, live) or ``"absolute"`` with ``start``/``end`` into a TimeRange."""
    if choice == "absolute":
        if start is None or end is None or end <= start:
            raise DashboardError("an absolute range needs a start before its end")
        s, e = _aware(start).timestamp(), _aware(end).timestamp()
        span = e - s
        tier = tier_for(span)
        return TimeRange(s * 1000, e * 1000, tier, step_for(span, tier, tick), live=False)
    if choice not in RANGES:
        raise DashboardError(f"unknown range {choice!r}; use one of {', '.join(RANGES)} or 'absolute'")
    span = RANGES[choice]
    at = time.time() if now is None else now
    tier = tier_for(span)
    return TimeRange((at - span) * 1000, at * 1000, tier, step_for(span, tier, tick), live=True)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(int(i)) for i in sorted(set(ids))) or "NULL"


def history_sql(rng: TimeRange, gauges: Iterable[int], counters: Iterable[int]) -> tuple[str, list[object]]:
    """Return one statement (and parameters) giving (kind, series_id, t_ms, value) for both kinds.

    Gauges are averaged per step; counters become per-second rates (a drop is a reset).
    """
    t0 = datetime.fromtimestamp(rng.start_ms / 1000, UTC)
    t1 = datetime.fromtimestamp(rng.end_ms / 1000, UTC)
    g, c, step = _ids(gauges), _ids(counters), int(rng.step)
    bucket = f"time_bucket(to_seconds({step}::BIGINT), {{col}})"
    if rng.tier == "raw":
        sql = f"""
            SELECT 'v' AS kind, series_id, epoch_ms({bucket.format(col='time')})::DOUBLE AS t, avg(value) AS value
            FROM samples_raw WHERE series_id IN ({g}) AND time >= ? AND time < ? GROUP BY ALL
            UNION ALL
            SELECT 'r', series_id, epoch_ms({bucket.format(col='time')})::DOUBLE,
                   sum(CASE WHEN d < 0 THEN value ELSE d END) / sum(dt)
            FROM (SELECT series_id, time, value, value - lag(value) OVER w AS d, epoch(time - lag(time) OVER w) AS dt
                  FROM samples_raw WHERE series_id IN ({c}) AND time >= ? - INTERVAL 1 HOUR AND time < ?
                  WINDOW w AS (PARTITION BY series_id ORDER BY time))
            WHERE dt > 0 AND time >= ? GROUP BY ALL
            ORDER BY 1, 2, 3"""
        return sql, [t0, t1, t0, t1, t0]
    table = "samples_1m" if rng.tier == "1m" else "samples_1h"
    sql = f"""
        SELECT 'v' AS kind, series_id, epoch_ms({bucket.format(col='bucket')})::DOUBLE AS t, sum(sum) / sum(count) AS value
        FROM {table} WHERE series_id IN ({g}) AND bucket >= ? AND bucket < ? GROUP BY ALL
        UNION ALL
        SELECT 'r', series_id, epoch_ms({bucket.format(col='bucket')})::DOUBLE,
               sum(CASE WHEN d < 0 THEN last ELSE d END) / sum(dt)
        FROM (SELECT series_id, bucket, last, last - lag(last) OVER w AS d, epoch(last_time - lag(last_time) OVER w) AS dt
              FROM {table} WHERE series_id IN ({c}) AND bucket >= ? - INTERVAL 1 DAY AND bucket < ?
              WINDOW w AS (PARTITION BY series_id ORDER BY bucket))
        WHERE dt > 0 AND bucket >= ? GROUP BY ALL
        ORDER BY 1, 2, 3"""
    return sql, [t0, t1, t0, t1, t0]


def load_history(reader: Reader, rng: TimeRange, gauges: Iterable[int], counters: Iterable[int]) -> dict[tuple[int, str], Points]:
    """Return ``{(series_id, "v"|"r"): Points}`` for the range in one query."""
    gauges, counters = list(gauges), list(counters)
    if not gauges and not counters:
        return {}
    sql, params = history_sql(rng, gauges, counters)
    cols = reader.arrow(sql, params).to_pydict()
    out: dict[tuple[int, str], tuple[list[float], list[float]]] = {}
    for kind, sid, t, v in zip(cols["kind"], cols["series_id"], cols["t"], cols["value"], strict=True):
        if v is None:
            continue
        times, values = out.setdefault((int(sid), str(kind)), ([], []))
        times.append(float(t))
        values.append(float(v))
    return {k: Points(tuple(a), tuple(b)) for k, (a, b) in out.items()}
