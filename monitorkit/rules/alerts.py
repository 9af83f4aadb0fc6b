"""Alert instances and their history in the database: the ``alerts`` and ``alert_events`` tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from monitorkit.rules.errors import AlertNotFoundError, InvalidRequestError
from monitorkit.rules.state import Event, Phase
from monitorkit.store.literals import bind, values

COLUMNS = (
    "id", "rule", "fingerprint", "labels", "kind", "severity", "state", "value", "summary", "description",
    "since", "fired_at", "last_active", "resolved_at", "updated_at", "acked_by", "acked_at", "ack_comment",
    "silenced_by", "inhibited", "annotations",
)
_LABELS = "MAP(VARCHAR, VARCHAR)"
_TYPES = {
    "id": "BIGINT", "labels": _LABELS, "value": "DOUBLE", "since": "TIMESTAMPTZ", "fired_at": "TIMESTAMPTZ",
    "last_active": "TIMESTAMPTZ", "resolved_at": "TIMESTAMPTZ", "updated_at": "TIMESTAMPTZ",
    "acked_at": "TIMESTAMPTZ", "silenced_by": "BIGINT", "inhibited": "BOOLEAN", "annotations": _LABELS,
}
_EVENT_COLUMNS = ("time", "alert_id", "rule", "fingerprint", "labels", "event", "state", "value", "actor", "comment")
_EVENT_TYPES = ("TIMESTAMPTZ", "BIGINT", "VARCHAR", "VARCHAR", _LABELS, "VARCHAR", "VARCHAR", "DOUBLE", "VARCHAR",
                "VARCHAR")
# Rows per statement: an alert storm is written in statements of bounded size.
_CHUNK = 500


@dataclass
class Instance:
    """One alert instance: a rule and one label set, with its phase and annotations."""

    id: int
    rule: str
    fingerprint: str
    labels: dict[str, str]
    kind: str
    severity: str
    phase: Phase = field(default_factory=Phase)
    value: float | None = None
    summary: str = ""
    description: str = ""
    updated_at: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_comment: str | None = None
    silenced_by: int | None = None
    inhibited: bool = False
    annotations: dict[str, str] = field(default_factory=dict)  # every rendered annotation, summary included
    restoring: bool = False  # read back at a start, not evaluated since: its for-state is restored first

    @property
    def state(self) -> str:
        """Return the current state."""
        return self.phase.state

    def record(self) -> tuple[Any, ...]:
        """Return the row as stored in ``alerts``, in COLUMNS order."""
        p = self.phase
        return (
            self.id, self.rule, self.fingerprint, self.labels, self.kind, self.severity, p.state, self.value,
            self.summary, self.description, p.since, p.fired_at, p.last_active, p.resolved_at, self.updated_at,
            self.acked_by, self.acked_at, self.ack_comment, self.silenced_by, self.inhibited, self.annotations,
        )


def _instance(row: Sequence[Any]) -> Instance:
    r = dict(zip(COLUMNS, row, strict=True))
    phase = Phase(r["state"], r["since"], r["fired_at"], r["last_active"], r["resolved_at"])
    return Instance(
        r["id"], r["rule"], r["fingerprint"], dict(r["labels"]), r["kind"], r["severity"], phase, r["value"],
        r["summary"] or "", r["description"] or "", r["updated_at"], r["acked_by"], r["acked_at"],
        r["ack_comment"], r["silenced_by"], bool(r["inhibited"]), _annotations(r),
    )


def _annotations(r: dict[str, Any]) -> dict[str, str]:
    """Return a stored alert's annotations (rows written before migration 30 have only summary and description)."""
    if r["annotations"] is not None:
        return dict(r["annotations"])
    return {k: v for k, v in (("summary", r["summary"]), ("description", r["description"])) if v}


def load_instances(con: Any) -> dict[tuple[str, str], Instance]:
    """Return every stored alert instance keyed by (rule, fingerprint)."""
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM alerts").fetchall()
    return {(i.rule, i.fingerprint): i for i in map(_instance, rows)}


def get_alert(con: Any, alert_id: int) -> Instance:
    """Return alert ``alert_id`` or raise AlertNotFoundError."""
    rows = con.execute(bind(f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE id = ?", [alert_id])).fetchall()
    if not rows:
        raise AlertNotFoundError(f"no alert with id {alert_id}; list them with `monitorkit alerts list --all`")
    return _instance(rows[0])


def list_alerts(con: Any, *, state: str | None = None, include_all: bool = False) -> list[Instance]:
    """Return alerts: pending and firing by default, one state with ``state``, every one with ``include_all``."""
    if state:
        where, params = "WHERE state = ?", [state]
    elif include_all:
        where, params = "", []
    else:
        where, params = "WHERE state IN ('pending', 'firing')", []
    rows = con.execute(bind(f"SELECT {', '.join(COLUMNS)} FROM alerts {where} ORDER BY id", params)).fetchall()
    return [_instance(r) for r in rows]


def history(con: Any, alert_id: int) -> list[Event]:
    """Return every event of alert ``alert_id`` in time order."""
    rows = con.execute(bind(
        "SELECT time, alert_id, rule, fingerprint, labels, event, state, value, actor, comment "
        "FROM alert_events WHERE alert_id = ? ORDER BY time, rowid", [alert_id]
    )).fetchall()
    return [Event(r[0], r[1], r[2], r[3], dict(r[4]), *r[5:]) for r in rows]


def _chunks(rows: Sequence[Sequence[Any]]) -> Iterable[Sequence[Sequence[Any]]]:
    return (rows[i:i + _CHUNK] for i in range(0, len(rows), _CHUNK))


def save_instances(con: duckdb.DuckDBPyConnection, instances: Iterable[Instance]) -> int:
    """Insert or replace ``instances`` in ``alerts``; return how many.

    The rows are inlined (store/literals.py), not a registered Arrow table, which loads pyarrow and pandas.
    """
    rows = [i.record() for i in instances]
    types = [_TYPES.get(c, "VARCHAR") for c in COLUMNS]
    for chunk in _chunks(rows):
        con.execute(f"INSERT OR REPLACE INTO alerts ({', '.join(COLUMNS)}) {values(chunk, types)}")
    return len(rows)


def append_events(con: duckdb.DuckDBPyConnection, events: Sequence[Event]) -> int:
    """Append ``events`` to ``alert_events``; return how many."""
    rows = [(e.time, e.alert_id, e.rule, e.fingerprint, dict(e.labels), e.event, e.state, e.value, e.actor,
             e.comment) for e in events]
    for chunk in _chunks(rows):
        con.execute(f"INSERT INTO alert_events ({', '.join(_EVENT_COLUMNS)}) {values(chunk, _EVENT_TYPES)}")
    return len(events)


def delete_instances(con: duckdb.DuckDBPyConnection, ids: Sequence[int]) -> None:
    """Forget alert instances (their events stay)."""
    if ids:
        con.execute(bind("DELETE FROM alerts WHERE list_contains(?, id)", [list(ids)]))


def ack(con: duckdb.DuckDBPyConnection, alert_id: int, *, by: str, comment: str, now: datetime) -> Instance:
    """Acknowledge alert ``alert_id`` (who, when, why) and record the event; return the updated alert."""
    if not by.strip():
        raise InvalidRequestError("an acknowledgement needs --by NAME")
    inst = get_alert(con, alert_id)
    inst.acked_by, inst.acked_at, inst.ack_comment = by, now, comment
    con.execute(bind("UPDATE alerts SET acked_by = ?, acked_at = ?, ack_comment = ? WHERE id = ?",
                     [by, now, comment, alert_id]))
    append_events(con, [Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, "ack", inst.state,
                              inst.value, by, comment)])
    return inst
