"""Health: application heartbeats, the current status of every component, and its history.

An application reports itself with ``heartbeat("billing-worker", status="ok", ttl=60)``;
the ``health_heartbeats`` check marks it failing once ``ttl`` seconds pass without a new
one. The engine merges every health check's rows (worst status per component), keeps
``health_status`` current and appends each change to ``health_history``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from monitorkit.errors import OwnerApiError
from monitorkit.owner.local import lookup
from monitorkit.rules import inputs
from monitorkit.rules.errors import InvalidRequestError
from monitorkit.rules.runner import HEALTH_STATUSES, HealthRow
from monitorkit.samples import HOST, utcnow
from monitorkit.store import Store
from monitorkit.store.literals import bind, values

RANK = {"ok": 0, "degraded": 1, "failing": 2}
HEARTBEAT_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE", "TIMESTAMPTZ", "VARCHAR", "INTEGER")  # Heartbeat's fields
OVERALL = "overall"


class Heartbeat(NamedTuple):
    """One heartbeat of an application component; it expires ``ttl`` seconds after ``time``."""

    component: str
    status: str
    reason: str
    ttl: float
    time: datetime
    host: str = HOST
    pid: int = 0


def make_heartbeat(component: str, status: str = "ok", reason: str = "", ttl: float | str = 60,
                   time: datetime | None = None, host: str = HOST, pid: int | None = None) -> Heartbeat:
    """Return a checked Heartbeat (status ok, degraded or failing; ttl a duration of at most 7 days)."""
    if not isinstance(component, str) or not component.strip() or len(component) > 200:
        raise InvalidRequestError("a heartbeat needs a component name (1-200 characters)")
    if status not in HEALTH_STATUSES:
        raise InvalidRequestError(f"heartbeat status must be ok, degraded or failing, got {status!r}")
    return Heartbeat(component, status, inputs.text(reason, "heartbeat reason", 2000),
                     inputs.seconds(ttl, "heartbeat ttl", inputs.MAX_TTL), time or utcnow(),
                     inputs.text(host, "heartbeat host", 255),
                     os.getpid() if pid is None else inputs.whole(pid, "heartbeat pid", 0, inputs.MAX_PID))


def heartbeat_from_json(data: Mapping[str, Any]) -> Heartbeat:
    """Build a Heartbeat from a JSON object (``component``, ``status``, ``reason``, ``ttl``, ``host``, ``pid``)."""
    return make_heartbeat(inputs.text(data.get("component"), "heartbeat component", 200),
                          inputs.text(data.get("status", "ok"), "heartbeat status", 20),
                          data.get("reason") or "", data.get("ttl", 60), None,
                          data.get("host") or HOST, data.get("pid") or 0)


def write_heartbeat(con: duckdb.DuckDBPyConnection, hb: Heartbeat) -> None:
    """Store ``hb`` in ``heartbeats`` on the write connection (call in the writer thread)."""
    write_heartbeats(con, [hb])


def write_heartbeats(con: duckdb.DuckDBPyConnection, hbs: Iterable[Heartbeat]) -> None:
    """Store heartbeats in one statement (the last of each component wins; writer thread).

    One INSERT OR REPLACE of 15 rows costs DuckDB about what one of a single row does (3.4 against
    2.5 ms measured), so the owner's parts are written together rather than one statement each.
    """
    latest = {hb.component: hb for hb in hbs}  # one statement may not replace a key twice
    if latest:
        con.execute("INSERT OR REPLACE INTO heartbeats (component, status, reason, ttl_seconds, updated_at, host, pid) "
                    + values(latest.values(), HEARTBEAT_TYPES))


def submit_heartbeat(store: Store, hb: Heartbeat) -> Future[object]:
    """Queue ``hb`` to the store's writer thread; the hook an ingest endpoint calls for heartbeat rows."""
    return submit_heartbeats(store, [hb])


def submit_heartbeats(store: Store, hbs: list[Heartbeat]) -> Future[object]:
    """Queue heartbeats to the store's writer thread, to be written in one statement."""
    return store.submit(lambda con: write_heartbeats(con, hbs))


def heartbeat(component: str, status: str = "ok", reason: str = "", ttl: float | str = 60, *,
              db: str | Path | None = None) -> bool:
    """Report ``component``'s health; return False when no owner runs to receive it.

    In the owner process the row goes straight to the writer; elsewhere it is sent to the
    owner's API. ``monitorkit.rules.health.heartbeat("worker", ttl=30)``
    """
    hb = make_heartbeat(component, status, reason, ttl)
    here = lookup(db)
    if here is not None:
        submit_heartbeat(here.owner.store, hb)
        return True
    from monitorkit.config import load_settings
    from monitorkit.owner.client import call
    from monitorkit.owner.sidecar import read_owner

    owner = read_owner(Path(db or load_settings().get("store.path")))
    if owner is None:
        return False
    try:
        call(owner, "/heartbeat", hb._asdict() | {"time": None})
    except OwnerApiError:
        return False
    return True


def merge(rows: Iterable[tuple[str, HealthRow]]) -> dict[str, tuple[str, HealthRow]]:
    """Return the worst row per component from ``(check_name, row)`` pairs."""
    out: dict[str, tuple[str, HealthRow]] = {}
    for check, row in rows:
        known = out.get(row.component)
        if known is None or RANK[row.status] > RANK[known[1].status]:
            out[row.component] = (check, row)
    return out


def overall(statuses: Iterable[str]) -> str:
    """Return the worst of ``statuses`` (ok when there are none)."""
    worst = max((RANK[s] for s in statuses), default=0)
    return next(s for s, r in RANK.items() if r == worst)


class HealthTracker:
    """The current status of every component; ``update`` returns what to write."""

    def __init__(self, current: Mapping[str, tuple[str, str, str, datetime]] | None = None) -> None:
        # component -> (check_name, status, reason, since)
        self.current: dict[str, tuple[str, str, str, datetime]] = dict(current or {})

    @classmethod
    def load(cls, con: Any) -> HealthTracker:
        """Read ``health_status``."""
        rows = con.execute("SELECT component, check_name, status, reason, since FROM health_status").fetchall()
        return cls({r[0]: (r[1], r[2], r[3], r[4]) for r in rows})

    def update(self, rows: Iterable[tuple[str, HealthRow]], now: datetime, *, keep_checks: Iterable[str] = ()
               ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[str]]:
        """Apply one evaluation; return (changed health_status rows, health_history rows, components removed).

        Components of checks in ``keep_checks`` (errored this time) keep their last status.
        """
        merged = merge(rows)
        keep = set(keep_checks)
        upserts: list[tuple[Any, ...]] = []
        history: list[tuple[Any, ...]] = []
        removed: list[str] = []
        for component, (check, row) in merged.items():
            known = self.current.get(component)
            if known is not None and known[1:3] == (row.status, row.reason):
                # The same verdict, perhaps from another check (the engine reports the dispatcher from
                # memory, the heartbeats check from its row): not a change, nothing to write.
                continue
            if known is None or known[1] != row.status:
                since = now
                history.append((now, component, check, row.status, known[1] if known else None, row.reason))
            else:
                since = known[3]
            self.current[component] = (check, row.status, row.reason, since)
            if known is None or known[:3] != (check, row.status, row.reason):
                upserts.append((component, check, row.status, row.reason, since, now))
        for component, (check, status, _reason, _since) in list(self.current.items()):
            if component in merged or component == OVERALL or check in keep:
                continue
            del self.current[component]
            removed.append(component)
            history.append((now, component, check, "removed", status, "no health check reports it any more"))
        worst = overall(s for c, (_, s, _, _) in self.current.items() if c != OVERALL)
        failing = sorted(c for c, v in self.current.items() if c != OVERALL and v[1] != "ok")
        reason = "all components ok" if not failing else "not ok: " + ", ".join(failing[:20])
        known = self.current.get(OVERALL)
        if known is None or known[1] != worst:
            history.append((now, OVERALL, OVERALL, worst, known[1] if known else None, reason))
            since = now
        else:
            since = known[3]
        self.current[OVERALL] = (OVERALL, worst, reason, since)
        if known is None or known[1:3] != (worst, reason):
            upserts.append((OVERALL, OVERALL, worst, reason, since, now))
        return upserts, history, removed


def write_health(con: duckdb.DuckDBPyConnection, upserts: list[tuple[Any, ...]],
                 history: list[tuple[Any, ...]], removed: list[str]) -> None:
    """Write one update of HealthTracker (in the writer thread, inside the caller's transaction)."""
    # One statement per row, as executemany runs them, with the values inlined (store/literals.py).
    for row in upserts:
        con.execute(bind("INSERT OR REPLACE INTO health_status (component, check_name, status, reason, since, "
                         "updated_at) VALUES (?, ?, ?, ?, ?, ?)", row))
    for row in history:
        con.execute(bind("INSERT INTO health_history (time, component, check_name, status, previous, reason) "
                         "VALUES (?, ?, ?, ?, ?, ?)", row))
    if removed:
        con.execute(bind("DELETE FROM health_status WHERE list_contains(?, component)", [removed]))
