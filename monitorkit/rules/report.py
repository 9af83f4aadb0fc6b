"""Read-side reports over the rules' tables: health now, and the alerts that ended recently.

``health_report(con)`` is what ``monitorkit health`` prints; ``recent_alerts(con, since)`` what
``monitorkit alerts recent`` does, each ended alert with its ``outcome``: an alert that went
pending and cleared before its ``for`` ran out never fired, and says so instead of "resolved".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from monitorkit.rules.runner import fetch_dicts

# What the last episode of an alert in each state amounts to. The state machine reaches
# ``inactive`` only from ``pending`` (the condition cleared before ``for``) and ``resolved``
# only from ``firing``, so the state alone tells whether the last episode fired.
OUTCOMES = {
    "pending": "pending",
    "firing": "firing",
    "resolved": "resolved",
    "inactive": "pending only (never fired)",
}


def outcome(state: str) -> str:
    """Return what an alert in ``state`` amounts to for a reader: ``inactive`` is ``pending only (never fired)``."""
    return OUTCOMES.get(state, state)


class HealthReport(NamedTuple):
    """The overall status, its counts, each component's status and the latest status changes."""

    overall: str
    components: int
    degraded: int
    failing: int
    rows: list[dict[str, Any]]
    history: list[dict[str, Any]]


def health_report(con: Any, *, history: int = 0) -> HealthReport:
    """Return every component's health from the live views, and the last ``history`` status changes."""
    _, rows = fetch_dicts(
        con, "SELECT c.component, c.status, c.reason, c.check_name, s.since FROM health_components c "
        "LEFT JOIN health_status s USING (component) ORDER BY c.component")
    overall = con.execute("SELECT status, components, degraded, failing FROM health_overall").fetchall()[0]
    changes: list[dict[str, Any]] = []
    if history > 0:
        _, changes = fetch_dicts(
            con, "SELECT time, component, previous, status, reason FROM health_history "
            f"ORDER BY time DESC LIMIT {int(history)}")
    return HealthReport(str(overall[0]), int(overall[1]), int(overall[2]), int(overall[3]), rows, changes)


class RecentAlert(NamedTuple):
    """An alert whose last episode ended (resolved, or cleared while pending) at ``ended``."""

    id: int
    rule: str
    severity: str
    labels: dict[str, str]
    state: str
    outcome: str
    ended: datetime | None
    fired_at: datetime | None
    acked_by: str | None


def recent_alerts(con: Any, since: datetime) -> list[RecentAlert]:
    """Return the alerts that stopped being active at or after ``since``, latest first."""
    _, rows = fetch_dicts(
        con, "SELECT id, rule, severity, labels, state, coalesce(resolved_at, updated_at) AS ended, acked_by, fired_at "
        "FROM alerts WHERE state IN ('resolved', 'inactive') "
        f"AND coalesce(resolved_at, updated_at) >= TIMESTAMPTZ '{since.isoformat()}' ORDER BY ended DESC, id")
    return [
        RecentAlert(int(r["id"]), str(r["rule"]), str(r["severity"]), _labels(r["labels"]), str(r["state"]),
                    outcome(str(r["state"])), r["ended"], r["fired_at"],
                    r["acked_by"])
        for r in rows
    ]


def _labels(value: Any) -> dict[str, str]:
    # a local connection gives a MAP as a dict, a remote one (Arrow) as a list of pairs
    items = value.items() if isinstance(value, dict) else (value or [])
    return {str(k): str(v) for k, v in items}
