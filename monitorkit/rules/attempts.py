"""Record notification attempts and what each group delivered, through the store's writer.

The dispatcher threads call ``record`` after every attempt and ``done`` when a notification
ends; both only queue writes (``store.submit``), so a delivery never waits for the database.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import duckdb

from monitorkit.rules import alerts as alertdb
from monitorkit.rules.dispatch import Attempt
from monitorkit.rules.groups import Groups, Notification
from monitorkit.rules.state import Event
from monitorkit.store import Store
from monitorkit.store.literals import bind


class AttemptLog:
    """Write each attempt to ``notifications`` (and ``notified`` events once delivered) and group state to ``notify_groups``."""

    def __init__(self, store: Store, groups: Groups, now: Callable[[], datetime]) -> None:
        self.store = store
        self.groups = groups
        self.now = now

    def record(self, attempt: Attempt) -> None:
        """Queue the row of one delivery attempt."""
        note, result = attempt.note, attempt.result
        ids = [a.id for a in note.alerts]
        events = [Event(attempt.time, a.id, a.rule, a.fingerprint, dict(a.labels), "notified", a.state, a.value,
                        note.receiver, f"{attempt.channel.label} ({note.status})") for a in note.alerts]

        def write(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(bind(
                "INSERT INTO notifications (time, receiver, channel, group_key, status, alerts, attempt, ok, error, "
                "status_code, seconds) VALUES (?, ?, ?, ?, ?, ?::BIGINT[], ?, ?, ?, ?, ?)",
                [attempt.time, note.receiver, attempt.channel.label, note.group_key, note.status, ids,
                 attempt.attempt, result.ok, result.error, result.status_code, result.seconds],
            ))
            if result.ok:
                alertdb.append_events(con, events)

        self.store.submit(write)

    def done(self, note: Notification, ok: bool) -> None:
        """Tell the group how ``note`` ended and, when delivered, save what it sent (a restart must not resend)."""
        if not ok:
            self.groups.failed(note)
            return
        self.groups.delivered(note)
        sent = json.dumps(dict(note.sent), sort_keys=True)
        self.store.submit(lambda con: con.execute(bind(
            "INSERT OR REPLACE INTO notify_groups (group_key, receiver, last_flush, sent, updated_at) "
            "VALUES (?, ?, ?, ?, ?)", [note.log_key, note.receiver, note.time, sent, self.now()])))
