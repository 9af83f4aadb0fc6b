"""Aggregation groups as Alertmanager's dispatcher runs them: ticks, a notification log, dedup.

A group (one route, one set of ``group_by`` values) is flushed on ticks: ``group_wait`` after
its first alert (at once if that alert fired longer ago than ``group_wait``), then every
``group_interval``. At a tick silenced and inhibited alerts are left out, and each channel (an
Alertmanager integration) is notified only if its notification log says so (Alertmanager's
DedupStage): a firing alert it was not told about, all alerts resolved after some fired, a
resolution when it sends resolved ones, or ``repeat_interval`` passed since its last
notification (and some firing alert is not acknowledged: monitorkit's addition). So an alert
notified before a silence or an inhibition is not notified again when it ends until
``repeat_interval``; a partial resolution is not notified to a channel without
``send_resolved``. Resolved alerts leave the group after the tick that flushed them.

The log outlives the group and a restart (``notify_groups``): ``plan(alerts, now)`` returns the
notifications due, the dispatcher calls ``delivered`` / ``failed`` per channel.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    annotations: Mapping[str, str] | None = None  # every annotation; None: summary and description

    @property
    def all_annotations(self) -> dict[str, str]:
        """Return the alert's annotations (summary and description included)."""
        if self.annotations is not None:
            return dict(self.annotations)
        return {k: v for k, v in (("summary", self.summary), ("description", self.description)) if v}


class Notification(NamedTuple):
    """One flush of one group to one channel of its receiver, and what the flush saw (``sent``, for the log)."""

    group_key: str
    receiver: str
    group_labels: Mapping[str, str]
    alerts: tuple[AlertView, ...]
    time: datetime
    sent: Mapping[str, str]  # fingerprint -> firing | resolved: every unmuted alert of the group at the tick
    channel: int | None = None  # the receiver's channel to deliver to (None: every channel)
    am_group_key: str = ""  # Alertmanager's groupKey: {}/{matchers}:{group labels}

    @property
    def status(self) -> str:
        """Return ``firing`` if any alert fires, else ``resolved``."""
        return "firing" if any(a.state == "firing" for a in self.alerts) else "resolved"

    @property
    def log_key(self) -> str:
        """Return the key of this channel's notification log entry (``notify_groups.group_key``)."""
        return self.group_key if self.channel is None else f"{self.group_key}#{self.channel}"


class Entry(NamedTuple):
    """Alertmanager's notification log entry: when a channel was last notified, and what was firing and resolved."""

    time: datetime
    firing: frozenset[str]
    resolved: frozenset[str]


def needs_update(entry: Entry | None, firing: set[str], resolved: set[str], *, send_resolved: bool,
                 repeat: timedelta, now: datetime, unacked: bool = True) -> bool:
    """Tell whether a channel must be notified (Alertmanager's DedupStage.needsUpdate)."""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        return bool(entry.firing)  # everything resolved: notified even without send_resolved, to clear the log
    if send_resolved and not resolved <= entry.resolved:
        return True
    return unacked and entry.time < now - repeat


@dataclass
class Group:
    """One aggregation group: its alerts (as Alertmanager's group store) and its next tick."""

    key: str
    route: Route
    labels: dict[str, str]
    next_flush: datetime
    has_flushed: bool = False
    alerts: dict[str, AlertView] = field(default_factory=dict)
    in_flight: set[int] = field(default_factory=set)  # channels with a delivery under way


class Groups:
    """Every live aggregation group of one owner and the notification log (thread-safe)."""

    def __init__(self, config: AlertingConfig) -> None:
        self.config = config
        self.groups: dict[str, Group] = {}
        self.log: dict[tuple[str, int | None], Entry] = {}  # (group key, channel) -> entry; None: any channel
        # (group key, fingerprint) -> resolved_at of a resolution already flushed: it left the group
        self.gone: dict[tuple[str, str], datetime | None] = {}
        self._lock = threading.Lock()

    def restore(self, rows: Iterable[tuple[str, datetime | None, str]]) -> None:
        """Take ``(log key, time, {fingerprint: state} JSON)`` rows saved by a previous owner."""
        with self._lock:
            for key, when, sent in rows:
                group_key, _, channel = key.rpartition("#")
                states = dict(json.loads(sent))
                entry = Entry(when or datetime.min.replace(tzinfo=UTC), frozenset(f for f, s in states.items() if s == "firing"),
                              frozenset(f for f, s in states.items() if s == "resolved"))
                if channel.isdigit() and group_key:
                    self.log[(group_key, int(channel))] = entry
                else:
                    self.log[(key, None)] = entry  # written before per-channel logs: stands for every channel

    def _entry(self, key: str, channel: int) -> Entry | None:
        return self.log.get((key, channel)) or self.log.get((key, None))

    def plan(self, alerts: Sequence[AlertView], now: datetime) -> list[Notification]:
        """Take every firing or resolved alert, flush the groups whose tick came; return the notifications due."""
        with self._lock:
            self._insert(alerts, now)
            out: list[Notification] = []
            for key in list(self.groups):
                group = self.groups[key]
                if now >= group.next_flush:
                    out.extend(self._flush(group, now))
                if not group.alerts and not group.in_flight:
                    del self.groups[key]
            return out

    def _insert(self, alerts: Sequence[AlertView], now: datetime) -> None:
        present: dict[str, set[str]] = {}
        for alert in alerts:
            if alert.state not in ("firing", "resolved"):
                continue
            for route in match_routes(self.config.root, alert.labels):
                key = route.group_key(alert.labels)
                if alert.state == "firing":
                    self.gone.pop((key, alert.fingerprint), None)
                elif (key, alert.fingerprint) in self.gone and self.gone[(key, alert.fingerprint)] == alert.resolved_at:
                    present.setdefault(key, set()).add(alert.fingerprint)
                    continue  # this resolution was flushed already
                group = self.groups.get(key)
                if group is None:
                    if alert.state != "firing" and not self._told_firing(key, route, alert.fingerprint):
                        continue  # a resolution nobody was told about the firing of
                    group = self.groups[key] = Group(key, route, route.group_labels(alert.labels),
                                                     now + route.group_wait)
                known = group.alerts.get(alert.fingerprint)
                if alert.state == "resolved" and known is None and not self._told_firing(key, route, alert.fingerprint):
                    continue  # resolved and already flushed as such: it left the group
                group.alerts[alert.fingerprint] = alert
                present.setdefault(key, set()).add(alert.fingerprint)
                fired = alert.fired_at
                if not group.has_flushed and fired is not None and fired + route.group_wait < now:
                    group.next_flush = min(group.next_flush, now)  # Alertmanager flushes an old alert at once
        self.gone = {k: v for k, v in self.gone.items() if k[1] in present.get(k[0], ())}
        for key, group in self.groups.items():
            for fp, alert in list(group.alerts.items()):
                if fp not in present.get(key, ()) and alert.state == "firing":
                    # No longer firing nor resolved (a new episode is pending): its firing has ended.
                    group.alerts[fp] = alert._replace(state="resolved", resolved_at=alert.resolved_at or now)

    def _told_firing(self, key: str, route: Route, fingerprint: str) -> bool:
        channels = len(self.config.receivers[route.receiver].channels)
        return any(fingerprint in e.firing for i in range(channels) if (e := self._entry(key, i)) is not None)

    def _flush(self, group: Group, now: datetime) -> list[Notification]:
        route = group.route
        interval = route.group_interval
        # The next tick on the group's own grid (Alertmanager's timer is reset at each tick), however
        # late this pass came.
        group.next_flush = now if interval <= timedelta(0) else \
            group.next_flush + interval * ((now - group.next_flush) // interval + 1)
        group.has_flushed = True
        shown = [a for a in group.alerts.values() if not a.muted]
        resolved_now = {fp: a for fp, a in group.alerts.items() if a.state == "resolved"}
        for fp, alert in resolved_now.items():
            del group.alerts[fp]  # Alertmanager deletes resolved alerts after the flush that saw them
            self.gone[(group.key, fp)] = alert.resolved_at
        if not shown:
            return []
        firing = {a.fingerprint for a in shown if a.state == "firing"}
        resolved = {a.fingerprint for a in shown if a.state == "resolved"}
        unacked = any(not a.acked for a in shown if a.state == "firing")
        sent = {**{fp: "resolved" for fp in resolved}, **{fp: "firing" for fp in firing}}
        ordered = sorted(shown, key=_alert_order)
        am_key = f"{route.am_group_key}:{_labelset(group.labels)}"
        out = []
        for index, channel in enumerate(self.config.receivers[route.receiver].channels):
            if index in group.in_flight:
                continue  # its last delivery is still under way: the next tick looks again
            entry = self._entry(group.key, index)
            if not needs_update(entry, firing, resolved, send_resolved=channel.send_resolved,
                                repeat=route.repeat_interval, now=now, unacked=unacked):
                continue
            send = tuple(a for a in ordered if a.state == "firing" or channel.send_resolved)
            if not send:  # only resolutions, and this channel does not send them: logged, not sent
                self.log[(group.key, index)] = Entry(now, frozenset(firing), frozenset(resolved))
                continue
            group.in_flight.add(index)
            out.append(Notification(group.key, route.receiver, dict(group.labels), send, now, sent, index, am_key))
        return out

    def next_due(self) -> datetime | None:
        """Return the next tick at which some group would notify, as of the last ``plan`` (for the engine's timer)."""
        with self._lock:
            times = [t for g in self.groups.values() if (t := self._next_notifying_tick(g)) is not None]
            return min(times, default=None)

    def _next_notifying_tick(self, group: Group) -> datetime | None:
        shown = [a for a in group.alerts.values() if not a.muted]
        if any(a.state == "resolved" for a in group.alerts.values()):
            return group.next_flush  # resolved alerts leave at the next tick
        if not shown:
            return None
        firing = {a.fingerprint for a in shown if a.state == "firing"}
        unacked = any(not a.acked for a in shown if a.state == "firing")
        route, tick = group.route, group.next_flush
        channels = self.config.receivers[route.receiver].channels
        entries = [self._entry(group.key, i) for i in range(len(channels)) if i not in group.in_flight]
        if any(needs_update(e, firing, set(), send_resolved=False, repeat=route.repeat_interval, now=tick,
                            unacked=unacked) for e in entries):
            return tick
        logged = [e.time for e in entries if e is not None]
        if not unacked or not logged or route.group_interval <= timedelta(0):
            return None
        # the first tick strictly after the oldest entry + repeat_interval
        ticks = (min(logged) + route.repeat_interval - tick) // route.group_interval + 1
        return tick + route.group_interval * max(ticks, 0)

    def delivered(self, note: Notification) -> None:
        """Record that ``note`` reached its channel: its log entry is what the flush saw."""
        with self._lock:
            group = self.groups.get(note.group_key)
            if group is not None and note.channel is not None:
                group.in_flight.discard(note.channel)
            firing = frozenset(fp for fp, s in note.sent.items() if s == "firing")
            resolved = frozenset(fp for fp, s in note.sent.items() if s == "resolved")
            self.log[(note.group_key, note.channel)] = Entry(note.time, firing, resolved)

    def failed(self, note: Notification) -> None:
        """Record that ``note`` did not reach its channel: its resolved alerts go back, the next tick retries."""
        with self._lock:
            group = self.groups.get(note.group_key)
            if group is None:
                return
            if note.channel is not None:
                group.in_flight.discard(note.channel)
            for alert in note.alerts:
                if alert.state == "resolved":
                    group.alerts.setdefault(alert.fingerprint, alert)
                    self.gone.pop((note.group_key, alert.fingerprint), None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Return each group's state, for tests and the CLI."""
        with self._lock:
            return {k: {"next_flush": g.next_flush, "in_flight": sorted(g.in_flight), "alerts": sorted(g.alerts),
                        "log": {c: e for (key, c), e in self.log.items() if key == k}}
                    for k, g in self.groups.items()}


def _labelset(labels: Mapping[str, str]) -> str:
    """Return labels as Prometheus prints a label set: ``{alertname="x", host="y"}``."""
    return "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()) if v) + "}"


def _alert_order(alert: AlertView) -> tuple[str, str, list[tuple[str, str]]]:
    """Sort as Alertmanager does (types.AlertSlice): by job, then instance, then the whole label set."""
    return alert.labels.get("job", ""), alert.labels.get("instance", ""), sorted(alert.labels.items())
