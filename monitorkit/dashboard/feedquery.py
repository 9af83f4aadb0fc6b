"""What the feed asks the store each tick, and how it reads the answer's rows back into records.

One UNION ALL statement covers every source: samples (src 0), alert changes (1), health
status (2), health history (3), recent tool runs (4), when priming every series (5), and stale
markers (6: a series that vanished, ``rules/staleness.py``); each row is (src, sid, t, v, doc)
with ``doc`` a JSON text (or ``host SEP name SEP labels`` for samples).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from monitorkit.dashboard.records import AlertRow, ExecutionRow, HealthEvent, HealthRow, SeriesInfo

SEP = "\x1f"
LATENESS_MS = 5000.0  # rows committed up to this late behind the newest seen are still picked up
RECENT_ALERTS = timedelta(days=1)
RECENT_RUNS = timedelta(hours=1)

SAMPLES_SQL = (
    "SELECT 0 AS src, r.series_id::BIGINT AS sid, epoch_ms(r.time)::DOUBLE AS t, r.value AS v, "
    "s.host || chr(31) || s.name || chr(31) || to_json(s.labels)::VARCHAR AS doc "
    "FROM samples_raw r JOIN series s USING (series_id) WHERE r.time > ?"
)
# An acknowledgement sets acked_at but not updated_at, so a change is whichever is later.
ALERTS_SQL = (
    "SELECT 1, id::BIGINT, epoch_ms(greatest(updated_at, coalesce(acked_at, updated_at)))::DOUBLE, value, "
    "to_json(struct_pack(rule := rule, labels := labels, "
    "severity := severity, state := state, summary := summary, since := epoch_ms(since), "
    "resolved := epoch_ms(resolved_at), acked_by := acked_by, silenced_by := silenced_by))::VARCHAR "
    "FROM alerts WHERE greatest(updated_at, coalesce(acked_at, updated_at)) > ?{extra}"
)
HEALTH_SQL = (
    "SELECT 2, NULL, epoch_ms(updated_at)::DOUBLE, NULL, to_json(struct_pack(component := component, "
    "check_name := check_name, status := status, reason := reason, since := epoch_ms(since)))::VARCHAR "
    "FROM health_status WHERE updated_at > ?"
)
HEALTH_EVENTS_SQL = (
    "SELECT 3, NULL, epoch_ms(time)::DOUBLE, NULL, to_json(struct_pack(component := component, status := status, "
    "previous := previous, reason := reason))::VARCHAR FROM health_history WHERE time > ?"
)
# Priming only: every series the file holds, so hosts and series with older data are listed too.
SERIES_SQL = (
    "SELECT 5, series_id::BIGINT, NULL, NULL, host || chr(31) || name || chr(31) || to_json(labels)::VARCHAR FROM series"
)
RUNS_SQL = (
    "SELECT 4, NULL, epoch_ms(started)::DOUBLE, duration_s, to_json(struct_pack(run_id := run_id, tool := tool, "
    "outcome := outcome, error_type := error_type, host := host))::VARCHAR "
    "FROM (SELECT * FROM executions WHERE started > ? ORDER BY started DESC LIMIT 20)"
)
# Markers newer than the newest seen, with the samples' lateness overlap (a series that vanished).
STALE_SQL = "SELECT 6, series_id::BIGINT, epoch_ms(time)::DOUBLE, NULL, NULL FROM stale_markers WHERE time > ?"



def _dt(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, UTC)


def poll_query(tables: frozenset[str], marks: Mapping[str, float], now_ms: float, window_ms: float,
               prime: bool) -> tuple[str, list[Any]]:
    """Return the statement and parameters of one poll: everything newer than ``marks`` (or the window, priming)."""
    since = now_ms - window_ms if prime else marks["samples"] - LATENESS_MS
    parts, params = [SAMPLES_SQL], [_dt(since)]
    if prime:
        parts.append(SERIES_SQL)
    recent = now_ms - RECENT_ALERTS.total_seconds() * 1000
    if "alerts" in tables:
        extra = " OR state IN ('pending', 'firing')" if prime else ""
        parts.append(ALERTS_SQL.format(extra=extra))
        params.append(_dt(recent if prime else marks["alerts"] - LATENESS_MS))
    if "health_status" in tables:
        parts.append(HEALTH_SQL)
        params.append(_dt(0 if prime else marks["health"] - LATENESS_MS))
    if "health_history" in tables:
        parts.append(HEALTH_EVENTS_SQL)
        params.append(_dt(recent if prime else marks["events"] - LATENESS_MS))
    if "executions" in tables:
        parts.append(RUNS_SQL)
        params.append(_dt(now_ms - RECENT_RUNS.total_seconds() * 1000))
    if "stale_markers" in tables:  # the rules' schema set creates it; a bare store has none
        parts.append(STALE_SQL)
        params.append(_dt(now_ms - window_ms if prime else marks["stale"] - LATENESS_MS))
    return " UNION ALL ".join(parts), params


def series_info(sid: int, doc: str) -> SeriesInfo:
    """Return the SeriesInfo of a sample row's ``host SEP name SEP labels`` text."""
    host, name, labels = doc.split(SEP, 2)
    return SeriesInfo(sid, host, name, json.loads(labels))


def alert_row(aid: int, t: float, value: float | None, doc: str) -> AlertRow:
    """Return the AlertRow of an alerts row."""
    d = json.loads(doc)
    return AlertRow(
        int(aid), d["rule"], d["labels"] or {}, d["severity"], d["state"], value, d["summary"] or "",
        d["since"], d["resolved"], t, d["acked_by"], d["silenced_by"],
    )


def health_row(t: float, doc: str) -> HealthRow:
    """Return the HealthRow of a health_status row."""
    d = json.loads(doc)
    return HealthRow(d["component"], d["check_name"], d["status"], d["reason"], d["since"], t)


def health_event(t: float, doc: str) -> HealthEvent:
    """Return the HealthEvent of a health_history row."""
    d = json.loads(doc)
    return HealthEvent(t, d["component"], d["status"], d["previous"], d["reason"])


def execution_row(t: float, duration: float | None, doc: str) -> ExecutionRow:
    """Return the ExecutionRow of an executions row."""
    d = json.loads(doc)
    return ExecutionRow(d["run_id"], d["tool"], t, duration or 0.0, d["outcome"], d["error_type"], d["host"])
