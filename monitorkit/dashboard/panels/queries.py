"""The readable SQL behind a chart: what "SQL" opens in the console, runnable as it is.

``chart_sql(traces, "web-1", rng)`` returns one statement giving ``time, series, value`` for every
trace (gauges through ``metric_range``, counters as per-second rates), so the console draws the
same lines the chart does.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.lines import Trace
from monitorkit.dashboard.records import CUMULATIVE_SUFFIXES


def quote(text: str) -> str:
    """Return ``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def series_expr(legend: str, metric: str) -> str:
    """Return SQL building a trace's legend text from ``labels``: ``"{disk} read"`` -> ``concat(labels['disk'], ' read')``."""
    parts: list[str] = []
    for literal, field, _, _ in string.Formatter().parse(legend):
        if literal:
            parts.append(quote(literal))
        if field:
            parts.append(quote(metric) if field == "name" else "host" if field == "host" else
                         f"coalesce(labels[{quote(field)}], '')")
    return f"concat({', '.join(parts)})" if len(parts) > 1 else (parts[0] if parts else quote(metric))


def label_filter(trace: Trace) -> str:
    """Return the SQL conditions of a trace's ``where`` and ``exclude``."""
    conds = []
    for label, want in trace.where.items():
        if want is None:
            conds.append(f"labels[{quote(label)}] IS NULL")
        elif want == "*":
            conds.append(f"labels[{quote(label)}] IS NOT NULL")
        else:
            conds.append(f"labels[{quote(label)}] = {quote(want)}")
    for label, rx in trace.exclude.items():
        conds.append(f"NOT regexp_matches(coalesce(labels[{quote(label)}], ''), {quote(rx)})")
    return "".join(f" AND {c}" for c in conds)


def _scale(trace: Trace, host: str | None) -> str:
    out = f" * {trace.scale:g}" if trace.scale != 1 else ""
    if trace.per is not None:
        where = f" AND host = {quote(host)}" if host else ""
        out += f" / (SELECT max(value) FROM latest WHERE name = 'cpu_count'{where})"
    return out


def _window(rng: TimeRange | None) -> tuple[str, int]:
    span = int(rng.span) if rng else 3600
    step = int(rng.step) if rng else 60
    return f"now() - INTERVAL {span} SECOND", step


def _counter(metric: str, trace: Trace, host: str | None, rng: TimeRange | None, value: str = "rate") -> str:
    since, step = _window(rng)
    hosts = f" AND host = {quote(host)}" if host else ""
    series = series_expr(trace.legend, trace.metric)
    if (rng is None or rng.tier == "raw") and metric.endswith("_total"):
        return (f"SELECT time_bucket(INTERVAL {step} SECOND, time) AS time, {series} AS series, "
                f"avg({value}){_scale(trace, host)} AS value FROM counter_rates WHERE name = {quote(metric)}{hosts}"
                f"{label_filter(trace)} AND time > {since} GROUP BY ALL")
    if rng is None or rng.tier == "raw":
        return raw_rates(metric, series, f"{hosts}{label_filter(trace)}", since, step, _scale(trace, host))
    table = "rollup_1m" if rng.tier == "1m" else "rollup_1h"
    return (f"SELECT time_bucket(INTERVAL {step} SECOND, bucket) AS time, {series} AS series, "
            f"sum(greatest(d, 0)) / sum(dt){_scale(trace, host)} AS value FROM (SELECT bucket, labels, "
            f"last - lag(last) OVER w AS d, epoch(last_time - lag(last_time) OVER w) AS dt FROM {table} "
            f"WHERE name = {quote(metric)}{hosts}{label_filter(trace)} AND bucket > {since} "
            "WINDOW w AS (PARTITION BY series_id ORDER BY bucket)) WHERE dt > 0 GROUP BY ALL")


def trace_sql(trace: Trace, host: str | None, rng: TimeRange | None) -> str:
    """Return the SELECT of one trace: ``time, series, value``."""
    since, step = _window(rng)
    hosts = f" AND host = {quote(host)}" if host else ""
    if trace.over is not None:
        num = _counter(trace.metric, trace, host, rng)
        den = _counter(trace.over, trace, host, rng)
        return (f"SELECT n.time, n.series, n.value / nullif(d.value, 0) AS value FROM ({num}) n "
                f"JOIN ({den}) d USING (time, series)")
    if trace.metric.endswith(CUMULATIVE_SUFFIXES):
        return _counter(trace.metric, trace, host, rng)
    series = series_expr(trace.legend, trace.metric)
    agg = "sum(avg)" if trace.group is not None else "avg"
    group = " GROUP BY ALL" if trace.group is not None else ""
    return (f"SELECT time, {series} AS series, {agg}{_scale(trace, host)} AS value "
            f"FROM metric_range({quote(trace.metric)}, {since}, now(), step := {step}) "
            f"WHERE true{hosts}{label_filter(trace)}{group}")


def chart_sql(title: str, traces: Iterable[Trace], host: str | None, rng: TimeRange | None) -> str:
    """Return a statement drawing the same lines as a chart of ``traces`` (one ``series`` per line)."""
    parts = [trace_sql(t, host, rng) for t in traces]
    head = re.sub(r"[^ -~]", " ", f"-- {title}" + (f" on {host}" if host else "")) + "\n"  # one comment line
    if len(parts) == 1:
        return head + parts[0] + "\nORDER BY time"
    return head + "\nUNION ALL BY NAME\n".join(f"({p})" for p in parts) + "\nORDER BY time"


def histogram_sql(title: str, metric: str, host: str | None, rng: TimeRange | None, quantiles: Iterable[float]) -> str:
    """Return the bucket rates a quantile chart interpolates (as ``histogram_quantile`` does), one line per bucket."""
    since, step = _window(rng)
    hosts = f" AND host = {quote(host)}" if host else ""
    shown = ", ".join(f"p{int(q * 100)}" for q in quantiles)
    head = re.sub(r"[^ -~]", " ", f"-- {title}: {shown} interpolate these cumulative bucket rates per le")
    rest = "array_to_string(list_transform(list_filter(map_entries(labels), e -> e.key != 'le'), e -> e.value), ' ')"
    series = f"concat({rest}, ' le=', labels['le'])"
    return f"{head}\n" + raw_rates(metric + "_bucket", series, hosts, since, step, "") + "\nORDER BY time"


def raw_rates(metric: str, series: str, where: str, since: str, step: int, scale: str) -> str:
    """Return per-second rates of a cumulative metric from raw samples (a drop is a reset), per step."""
    return (f"SELECT time_bucket(INTERVAL {step} SECOND, time) AS time, {series} AS series, "
            f"sum(CASE WHEN d < 0 THEN value ELSE d END) / sum(dt){scale} AS value FROM (SELECT time, host, labels, "
            f"value, value - lag(value) OVER w AS d, epoch(time - lag(time) OVER w) AS dt FROM samples "
            f"WHERE name = {quote(metric)}{where} AND time > {since} WINDOW w AS (PARTITION BY series_id ORDER BY time)) "
            "WHERE dt > 0 GROUP BY ALL")
