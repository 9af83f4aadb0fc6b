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


def _bounds() -> tuple[str, str]:
    # What each rollup has covered: newer rows are read from the tier below (a fresh file has no rollup yet).
    def mark(tier: str, step: int) -> str:
        return (f"coalesce((SELECT max(watermark) FROM rollup_state WHERE tier = '{tier}'), "
                f"(SELECT max(bucket) + INTERVAL {step} SECOND FROM samples_{tier}), '-infinity'::TIMESTAMPTZ)")

    return mark("1m", 60), mark("1h", 3600)


def _sources(tier: str, ids: str, lookback: str) -> tuple[str, str]:
    """Return the gauge and counter row sources of ``tier``, each a UNION ALL over the tiers it needs."""
    m1, h1 = _bounds()
    raw_g = f"SELECT series_id, time AS t, value AS s, 1 AS n, value AS lo, value AS hi FROM samples_raw " \
            f"WHERE series_id IN ({ids}) AND time >= ?::TIMESTAMPTZ{lookback} AND time < ?"
    raw_c = f"SELECT series_id, time AS t, value AS last, time AS last_time FROM samples_raw " \
            f"WHERE series_id IN ({ids}) AND time >= ?::TIMESTAMPTZ{lookback} AND time < ?"
    if tier == "raw":
        return raw_g, raw_c

    def roll(table: str, lower: str | None, upper: str) -> tuple[str, str]:
        cond = f"series_id IN ({ids}) AND bucket >= ?::TIMESTAMPTZ{lookback} AND bucket < ? AND bucket < {upper}" + (
            f" AND bucket >= {lower}" if lower else "")
        return (f"SELECT series_id, bucket AS t, sum AS s, count AS n, min AS lo, max AS hi FROM {table} WHERE {cond}",
                f"SELECT series_id, bucket AS t, last, last_time FROM {table} WHERE {cond}")

    parts = [roll("samples_1m", h1 if tier == "1h" else None, m1)]
    if tier == "1h":
        parts.insert(0, roll("samples_1h", None, h1))
    gauges = " UNION ALL ".join([p[0] for p in parts] + [raw_g + f" AND time >= {m1}"])
    counters = " UNION ALL ".join([p[1] for p in parts] + [raw_c + f" AND time >= {m1}"])
    return gauges, counters


def history_sql(rng: TimeRange, gauges: Iterable[int], counters: Iterable[int]) -> tuple[str, list[object]]:
    """Return one statement (and parameters) giving (kind, series_id, t, value, lo, hi, n) per step and series.

    Gauges are averaged per step, with the step's minimum and maximum; counters become per-second
    rates (a drop is a reset): the step's average rate, and the lowest and highest rate of the
    samples (or rollup buckets) in it, so a peak is never averaged away. Rows newer than what a
    rollup tier has covered come from the tier below.
    """
    t0 = datetime.fromtimestamp(rng.start_ms / 1000, UTC)
    t1 = datetime.fromtimestamp(rng.end_ms / 1000, UTC)
    g, c, step = _ids(gauges), _ids(counters), int(rng.step)
    bucket = f"epoch_ms(time_bucket(to_seconds({step}::BIGINT), t))::DOUBLE"
    n_g = 1 if rng.tier == "raw" else (3 if rng.tier == "1h" else 2)
    gsrc, _ = _sources(rng.tier, g, "")
    back = " - INTERVAL 1 HOUR" if rng.tier == "raw" else " - INTERVAL 1 DAY"
    _, csrc = _sources(rng.tier, c, back)
    sql = f"""
        SELECT 'v' AS kind, series_id, {bucket} AS t, sum(s) / sum(n) AS value, min(lo) AS lo, max(hi) AS hi,
               sum(n)::BIGINT AS n
        FROM ({gsrc}) GROUP BY ALL
        UNION ALL
        SELECT 'r', series_id, {bucket}, sum(d) / sum(dt), min(d / dt), max(d / dt), count(*)::BIGINT
        FROM (SELECT series_id, t, CASE WHEN last < prev THEN last ELSE last - prev END AS d,
                     epoch(last_time - prev_time) AS dt
              FROM (SELECT series_id, t, last, lag(last) OVER w AS prev, last_time, lag(last_time) OVER w AS prev_time
                    FROM ({csrc}) WINDOW w AS (PARTITION BY series_id ORDER BY last_time)))
        WHERE dt > 0 AND t >= ? GROUP BY ALL
        ORDER BY 1, 2, 3"""
    n_c = n_g
    params: list[object] = [*([t0, t1] * n_g), *([t0, t1] * n_c), t0]
    return sql, params


def load_history(reader: Reader, rng: TimeRange, gauges: Iterable[int], counters: Iterable[int]) -> dict[tuple[int, str], Points]:
    """Return ``{(series_id, "v"|"r"): Points}`` for the range in one query (with each step's min, max and count)."""
    gauges, counters = list(gauges), list(counters)
    if not gauges and not counters:
        return {}
    sql, params = history_sql(rng, gauges, counters)
    cols = reader.arrow(sql, params).to_pydict()
    out: dict[tuple[int, str], tuple[list[float], list[float], list[float], list[float], list[int]]] = {}
    for kind, sid, t, v, lo, hi, n in zip(cols["kind"], cols["series_id"], cols["t"], cols["value"], cols["lo"],
                                          cols["hi"], cols["n"], strict=True):
        if v is None:
            continue
        rows = out.setdefault((int(sid), str(kind)), ([], [], [], [], []))
        rows[0].append(float(t))
        rows[1].append(float(v))
        rows[2].append(float(v if lo is None else lo))
        rows[3].append(float(v if hi is None else hi))
        rows[4].append(int(n or 1))
    return {k: Points(tuple(a), tuple(b), tuple(lo), tuple(hi), tuple(n)) for k, (a, b, lo, hi, n) in out.items()}
