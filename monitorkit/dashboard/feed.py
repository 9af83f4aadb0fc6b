"""The shared feed: one query per tick for every session, a cache of recent points, and deltas.

``Feed.poll()`` asks the store once for everything new since the previous poll (samples,
alert changes, health changes, recent tool runs) in a single UNION ALL statement, turns
counters into rates, keeps the last ``window`` seconds of the charted metrics, and returns a
``Delta`` that every subscribed session streams into its own charts.

Stale markers come in the same statement: a series whose marker is as new as its last sample
(or newer) has vanished (an unplugged NIC, an evicted process group, an OTLP series that
stopped), so it leaves ``latest`` (what ``/metrics`` and the "newest value" panels read) and
the Delta names it in ``ended``, as the store's ``latest`` view leaves it out. A sample newer
than the marker brings it back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from monitorkit.dashboard.feedquery import (
    LATENESS_MS,
    RECENT_ALERTS,
    alert_row,
    execution_row,
    health_event,
    health_row,
    poll_query,
    series_info,
)
from monitorkit.dashboard.reader import Reader, table_names
from monitorkit.dashboard.records import (
    AlertRow,
    Delta,
    ExecutionRow,
    HealthEvent,
    HealthRow,
    Points,
    SeriesInfo,
)
from monitorkit.dashboard.ring import Ring
from monitorkit.errors import MonitorkitError

log = logging.getLogger(__name__)

Subscriber = Callable[[Delta], None]
Key = tuple[int, str]  # (series_id, "v" for values or "r" for rates)


@dataclass
class Snapshot:
    """What a new session starts from: the cache as of delta ``seq``."""

    seq: int
    series: dict[int, SeriesInfo]
    latest: dict[int, tuple[float, float]]
    history: dict[Key, Points]
    alerts: dict[int, AlertRow]
    health: dict[str, HealthRow]
    health_events: list[HealthEvent]
    executions: tuple[ExecutionRow, ...]
    window_ms: float
    newest_ms: float | None = None
    tables: frozenset[str] = field(default_factory=frozenset)


class Feed:
    """Poll a Reader once per tick and fan the delta out to subscribers.

    ``cached`` names the metrics whose last ``window`` seconds are kept so new sessions open
    without querying. In a server, ``start()`` runs the polls in a thread woken by
    ``trigger()`` (a scheduler tick hook); in a notebook, call ``poll()`` from a periodic callback.
    """

    def __init__(
        self, reader: Reader, *, tick: float = 1.0, window: float = 900.0, cached: Iterable[str] = (),
        before_poll: Callable[[], None] | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self.reader = reader
        self.tick = tick
        self.window_ms = window * 1000.0
        self.cached = frozenset(cached)
        self.before_poll = before_poll
        self.clock = clock
        self.polls = 0
        self.triggers = 0
        self.errors = 0
        self.last_error: str | None = None
        self.seq = 0
        self.series: dict[int, SeriesInfo] = {}
        self.latest: dict[int, tuple[float, float]] = {}
        self._history: dict[Key, Ring] = {}
        self.alerts: dict[int, AlertRow] = {}
        self.health: dict[str, HealthRow] = {}
        self.health_events: deque[HealthEvent] = deque(maxlen=500)
        self._event_keys: deque[tuple[float, str, str]] = deque(maxlen=500)
        self.executions: tuple[ExecutionRow, ...] = ()
        self.newest_ms: float | None = None
        self._marks = {"samples": 0.0, "alerts": 0.0, "health": 0.0, "events": 0.0, "stale": 0.0}
        # Series ended by a marker -> the marker's time: the lateness overlap reads their last
        # samples again, which must not bring them back (only a newer sample does).
        self._ended: dict[int, float] = {}
        self._subscribers: dict[int, Subscriber] = {}
        self._next_sub = 0
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tables: frozenset[str] = frozenset()
        self._primed = False

    # -- polling -------------------------------------------------------------------------

    def _sql(self, prime: bool) -> tuple[str, list[Any]]:
        return poll_query(self.tables, self._marks, self.clock() * 1000.0, self.window_ms, prime)

    def prime(self) -> None:
        """Learn which tables exist and load the cache window (two queries, once)."""
        with self._lock:
            if self._primed:
                return
            self.tables = frozenset(table_names(self.reader))
            now_ms = self.clock() * 1000.0
            sql, params = self._sql(prime=True)
            self._apply(self.reader.rows(sql, params), prime=True)
            # Polls continue from where the priming read stopped, even when it found nothing:
            # never from the epoch (a whole-table scan every tick).
            recent = now_ms - RECENT_ALERTS.total_seconds() * 1000
            window = now_ms - self.window_ms
            for key, floor in (("samples", window), ("alerts", recent), ("events", recent), ("stale", window)):
                self._marks[key] = max(self._marks[key], floor)
            self._primed = True

    def poll(self) -> Delta:
        """Ask the store once for what is new and return it as a Delta (also kept in the cache)."""
        with self._lock:
            if not self._primed:
                self.prime()
            sql, params = self._sql(prime=False)
            rows = self.reader.rows(sql, params)
            self.polls += 1
            return self._apply(rows, prime=False)

    def _apply(self, rows: list[tuple[Any, ...]], prime: bool) -> Delta:
        """Take one poll's rows (src, sid, t, v, doc): update the cache and return what is new."""
        new_series: list[SeriesInfo] = []
        values: dict[int, tuple[list[float], list[float]]] = {}
        rates: dict[int, tuple[list[float], list[float]]] = {}
        alerts: list[AlertRow] = []
        health: list[HealthRow] = []
        events: list[HealthEvent] = []
        runs: list[ExecutionRow] = []
        ended: list[int] = []
        newest = self.newest_ms
        now_ms = self.clock() * 1000.0
        delta_newest: float | None = None
        marks = self._marks
        for src, sid, t, v, doc in sorted(rows, key=lambda r: (r[0], r[2] or 0.0)):
            if src == 0:
                info = self.series.get(sid)
                if info is None:
                    info = self.series[sid] = series_info(sid, doc)
                    new_series.append(info)
                gone = self._ended.get(sid)
                if gone is not None:
                    if t <= gone:
                        continue  # from before its marker (the lateness overlap, or a late row)
                    del self._ended[sid]  # back after its marker
                prev = self.latest.get(sid)
                if prev is not None and t <= prev[0]:
                    continue  # already seen (the lateness overlap)
                self.latest[sid] = (t, v)
                # A sample stamped in the future (an application's clock) must not hide what follows.
                marks["samples"] = max(marks["samples"], min(t, now_ms + LATENESS_MS))
                newest = t if newest is None else max(newest, t)
                delta_newest = t if delta_newest is None else max(delta_newest, t)
                self._add(values, sid, "v", t, v, info)
                if info.cumulative and prev is not None and t > prev[0]:
                    rate = (v if v < prev[1] else v - prev[1]) / ((t - prev[0]) / 1000.0)
                    self._add(rates, sid, "r", t, rate, info)
            elif src == 1:
                row = alert_row(sid, t, v, doc)
                marks["alerts"] = max(marks["alerts"], t)
                if self.alerts.get(row.id) != row:
                    self.alerts[row.id] = row
                    alerts.append(row)
            elif src == 2:
                hrow = health_row(t, doc)
                marks["health"] = max(marks["health"], t)
                if self.health.get(hrow.component) != hrow:
                    self.health[hrow.component] = hrow
                    health.append(hrow)
            elif src == 3:
                event = health_event(t, doc)
                key = (t, event.component, event.status)
                marks["events"] = max(marks["events"], t)
                if key not in self._event_keys:
                    self._event_keys.append(key)
                    self.health_events.append(event)
                    events.append(event)
            elif src == 4:
                runs.append(execution_row(t, v, doc))
            elif src == 5 and sid not in self.series:
                info = self.series[sid] = series_info(sid, doc)
                new_series.append(info)
            elif src == 6:
                # Rows come sorted by source, so this poll's samples are in ``latest`` already.
                marks["stale"] = max(marks["stale"], min(t, now_ms + LATENESS_MS))
                last = self.latest.get(sid)
                if last is None or last[0] <= t:  # as the `latest` view: a marker at the sample's time ends it
                    self._ended[sid] = max(t, self._ended.get(sid, t))
                    if last is not None:
                        del self.latest[sid]
                        ended.append(sid)
        self.newest_ms = newest
        run_list = tuple(sorted(runs, key=lambda r: -r.started_ms))
        changed_runs = run_list if run_list != self.executions else None
        self.executions = run_list
        if not prime:
            self.seq += 1
        self._trim()
        self._forget_ended()
        return Delta(
            self.seq, self.clock() * 1000.0, tuple(new_series),
            {k: Points(tuple(a), tuple(b)) for k, (a, b) in values.items()},
            {k: Points(tuple(a), tuple(b)) for k, (a, b) in rates.items()},
            tuple(alerts), tuple(health), tuple(events), changed_runs,
            delta_newest, tuple(ended),
        )

    def _add(self, out: dict[int, tuple[list[float], list[float]]], sid: int, kind: str, t: float, v: float,
             info: SeriesInfo) -> None:
        times, vals = out.setdefault(sid, ([], []))
        times.append(t)
        vals.append(v)
        if info.name in self.cached:
            buf = self._history.get((sid, kind))
            if buf is None:
                buf = self._history[(sid, kind)] = Ring()
            buf.append(t, v)

    def _forget_ended(self) -> None:
        """Drop the markers older than what any poll reads again (neither their samples nor themselves)."""
        floor = min(self._marks["samples"], self._marks["stale"]) - LATENESS_MS
        for sid in [sid for sid, t in self._ended.items() if t <= floor]:
            del self._ended[sid]

    def _trim(self) -> None:
        if self.newest_ms is None:
            return
        cutoff = self.newest_ms - self.window_ms
        for buf in self._history.values():
            buf.trim(cutoff)

    # -- sessions ------------------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> tuple[int, Snapshot]:
        """Register ``fn(delta)`` for every later poll; return its id and the cache as of now."""
        with self._lock:
            if not self._primed:
                self.prime()
            sub = self._next_sub
            self._next_sub += 1
            self._subscribers[sub] = fn
            return sub, self.snapshot()

    def unsubscribe(self, sub: int) -> None:
        """Stop sending deltas to subscriber ``sub``."""
        with self._lock:
            self._subscribers.pop(sub, None)

    @property
    def subscribers(self) -> int:
        """Return how many sessions are subscribed."""
        return len(self._subscribers)

    def snapshot(self) -> Snapshot:
        """Return a copy of the cache (series, latest values, recent points, alerts, health, runs)."""
        with self._lock:
            return Snapshot(
                self.seq, dict(self.series), dict(self.latest),
                {k: Points(*buf.points()) for k, buf in self._history.items()},
                dict(self.alerts), dict(self.health), list(self.health_events), self.executions, self.window_ms,
                self.newest_ms, self.tables,
            )

    def recent(self, keys: Iterable[Key]) -> dict[Key, Points]:
        """Return the cached points of ``keys`` (the last ``window`` seconds)."""
        with self._lock:
            out = {}
            for key in keys:
                buf = self._history.get(key)
                if buf:
                    out[key] = Points(*buf.points())
            return out

    def dispatch(self, delta: Delta) -> None:
        """Hand ``delta`` to every subscriber; a failing one is dropped, not retried."""
        with self._lock:
            subs = list(self._subscribers.items())
        for sub, fn in subs:
            try:
                fn(delta)
            except Exception:  # a session whose document is gone must not stop the others
                log.exception("dashboard session %d failed to take an update; dropping it", sub)
                self.unsubscribe(sub)

    # -- the server thread ---------------------------------------------------------------

    def trigger(self, now: object = None) -> None:
        """Wake the poll thread (use as a scheduler tick hook: ``scheduler.tick_hooks.append(feed.trigger)``)."""
        self.triggers += 1
        self._wake.set()

    def start(self, *, triggered: bool = True) -> None:
        """Poll in a background thread: after each trigger, or every tick when nothing triggers it."""
        self.prime()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(triggered,), name="monitorkit-dashboard-feed", daemon=True)
        self._thread.start()

    def _run(self, triggered: bool) -> None:
        timeout = self.tick * 5 if triggered else self.tick
        while not self._stop.is_set():
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self.before_poll is not None:
                    self.before_poll()
                delta = self.poll()
            except MonitorkitError as exc:  # the store may be busy or closing; the next tick retries
                self.errors += 1
                self.last_error = str(exc)
                log.warning("dashboard poll failed: %s", exc)
                continue
            self.dispatch(delta)

    def stop(self) -> None:
        """Stop the poll thread and forget every subscriber."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            self._subscribers.clear()
