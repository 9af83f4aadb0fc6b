"""Aggregation groups: when a group of alerts is due to be notified (group_wait, group_interval, repeat).

``Groups.plan(alerts, now)`` is called after each evaluation and returns the notifications
due; ``delivered``/``failed`` are called by the dispatcher thread when a delivery ends.
What each group last delivered is persisted (``notify_groups``) so a restarted owner does
not notify twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from monitorkit.rules.routing import AlertingConfig, Route, match_routes


class AlertView(NamedTuple):
    """What notification needs to know of one alert instance."""

    id: int
    rule: str
    fingerprint: str
    labels: Mapping[str, str]
    state: str
    value: float | None
    summary: str
    description: str
    fired_at: datetime | None
    resolved_at: datetime | None
    acked: bool = False
    muted: bool = False  # silenced or inhibited: never notified


class Notification(NamedTuple):
    """One flush of one group to its receiver: the alerts to send and what counts as sent after."""

    group_key: str
    receiver: str
    group_labels: Mapping[str, str]
    alerts: tuple[AlertView, ...]
    time: datetime
    sent: Mapping[str, str]

    @property
    def status(self) -> str:
        """Return ``firing`` if any alert fires, else ``resolved``."""
        return "firing" if any(a.state == "firing" for a in self.alerts) else "resolved"


@dataclass
class Group:
    """One aggregation group's bookkeeping."""

    key: str
    route: Route
    labels: dict[str, str]
    first_seen: datetime
    last_flush: datetime | None = None
    sent: dict[str, str] = field(default_factory=dict)  # fingerprint -> state last notified
    in_flight: bool = False
    alerts: dict[str, AlertView] = field(default_factory=dict)


class Groups:
    """Every live aggregation group of one owner (thread-safe)."""

    def __init__(self, config: AlertingConfig) -> None:
        self.config = config
        self.groups: dict[str, Group] = {}
        self._restored: dict[str, tuple[datetime | None, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def restore(self, rows: Iterable[tuple[str, datetime | None, str]]) -> None:
        """Take ``(group_key, last_flush, sent JSON)`` rows saved by a previous owner."""
        with self._lock:
            for key, last_flush, sent in rows:
                self._restored[key] = (last_flush, dict(json.loads(sent)))

    def plan(self, alerts: Sequence[AlertView], now: datetime) -> list[Notification]:
        """Return the notifications due at ``now`` given every firing or resolved alert."""
        with self._lock:
            for group in self.groups.values():
                group.alerts = {}
            for alert in alerts:
                if alert.muted or alert.state not in ("firing", "resolved"):
                    continue
                for route in match_routes(self.config.root, alert.labels):
                    key = route.group_key(alert.labels)
                    known = self.groups.get(key)
                    if known is None:
                        if alert.state != "firing" and key not in self._restored:
                            continue
                        known = self._new_group(key, route, alert.labels, now)
                    group = known
                    if alert.state == "resolved" and group.sent.get(alert.fingerprint) != "firing":
                        continue  # never notified as firing: nothing to resolve
                    group.alerts[alert.fingerprint] = alert
            out: list[Notification] = []
            for key in list(self.groups):
                note = self._due(self.groups[key], now)
                if note is not None:
                    out.append(note)
            return out

    def _new_group(self, key: str, route: Route, labels: Mapping[str, str], now: datetime) -> Group:
        group = Group(key, route, route.group_labels(labels), now)
        if key in self._restored:
            group.last_flush, group.sent = self._restored.pop(key)
        self.groups[key] = group
        return group

    def _due(self, group: Group, now: datetime) -> Notification | None:
        if group.in_flight:
            return None
        firing = {fp for fp, a in group.alerts.items() if a.state == "firing"}
        notified = {fp for fp, state in group.sent.items() if state == "firing"}
        if not firing and not group.sent:
            del self.groups[group.key]
            return None
        route = group.route
        due = self._due_at(group, firing, notified)
        if due is None or now < due:
            return None
        receiver = self.config.receivers[route.receiver]
        send = [a for a in group.alerts.values() if a.state == "firing" or receiver.send_resolved]
        sent = {fp: "firing" for fp in firing}
        if not send:
            group.last_flush, group.sent = now, sent  # only unsent resolutions: nothing to deliver
            return None
        group.in_flight = True
        send.sort(key=lambda a: (a.state != "firing", a.id))
        return Notification(group.key, route.receiver, dict(group.labels), tuple(send), now, sent)

    @staticmethod
    def _due_at(group: Group, firing: set[str], notified: set[str]) -> datetime | None:
        """Return when ``group`` is next due (group_wait, group_interval or repeat_interval), or None."""
        route = group.route
        if group.last_flush is None:
            return group.first_seen + route.group_wait if firing else None
        if firing != notified:
            return group.last_flush + route.group_interval
        if firing and any(not group.alerts[fp].acked for fp in firing):
            return group.last_flush + route.repeat_interval
        return None

    def next_due(self) -> datetime | None:
        """Return when the next group falls due, as of the last ``plan`` (the engine sets a timer for it)."""
        with self._lock:
            times = []
            for group in self.groups.values():
                if group.in_flight:
                    continue
                firing = {fp for fp, a in group.alerts.items() if a.state == "firing"}
                notified = {fp for fp, state in group.sent.items() if state == "firing"}
                due = self._due_at(group, firing, notified)
                if due is not None:
                    times.append(due)
            return min(times, default=None)

    def delivered(self, note: Notification) -> None:
        """Record that ``note`` reached its receiver."""
        with self._lock:
            group = self.groups.get(note.group_key)
            if group is not None:
                group.in_flight = False
                group.last_flush = note.time
                group.sent = dict(note.sent)

    def failed(self, note: Notification) -> None:
        """Record that every channel failed for ``note``: try again after group_interval."""
        with self._lock:
            group = self.groups.get(note.group_key)
            if group is not None:
                group.in_flight = False
                group.last_flush = note.time

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Return each group's state, for tests and the CLI."""
        with self._lock:
            return {k: {"last_flush": g.last_flush, "sent": dict(g.sent), "in_flight": g.in_flight,
                        "alerts": sorted(g.alerts)} for k, g in self.groups.items()}
