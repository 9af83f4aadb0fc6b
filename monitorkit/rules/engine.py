"""The rule engine: load rules, install their views, evaluate after each commit, keep state.

Threading: ``RuleService`` registers a store hook, so ``Engine.evaluate`` runs in the
writer thread right after each committed batch. No other thread writes the database
then, so the engine reads through its own cursor and writes its state directly on the
write connection in one transaction per evaluation (no ``writer.submit`` round trip, no
lock). Everything else that writes (acks, silences, heartbeats, notification records)
goes through ``store.writer.submit`` and is therefore serialized with it. Deliveries run
in the dispatcher thread and never delay an evaluation.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import duckdb

from monitorkit.config import Settings, load_settings
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.rules import alerts as alertdb
from monitorkit.rules import views
from monitorkit.rules.alerts import Event, Instance
from monitorkit.rules.dispatch import Attempt, Dispatcher, Sender
from monitorkit.rules.errors import RuleEvalError
from monitorkit.rules.groups import AlertView, Groups, Notification
from monitorkit.rules.health import HealthTracker, write_health
from monitorkit.rules.loader import Rule, load_rules, render, rules_config, snapshot
from monitorkit.rules.notify import send
from monitorkit.rules.routing import AlertingConfig, from_settings, inhibited
from monitorkit.rules.runner import RuleResult, Watchdog, alert_labels, evaluate_rule
from monitorkit.rules.schema import SCHEMA as RULES_SCHEMA
from monitorkit.rules.silences import active_silences, silenced_by
from monitorkit.rules.state import State, Timing, advance, fingerprint
from monitorkit.samples import utcnow
from monitorkit.store import Store

log = logging.getLogger(__name__)
STATUS_EVERY = 30.0  # seconds between writes of every rule's last_eval/eval_ms to the `rules` table
SPREAD_BUDGET = 0.05  # seconds of `every:` rules per live pass; the rest wait for the next commit
HOUSEKEEP_EVERY = 5.0  # seconds between passes (silences, garbage) when a commit finds no rule due
# A rule is due this much before its `every:` has fully elapsed: commits come once per
# store.flush_interval with some jitter, and a 15 s rule must not slip to the commit after.
DUE_SLACK = timedelta(seconds=0.5)


class RuleStatus(NamedTuple):
    """How a rule last went: ok or errored (with the message), when, how long, how many rows."""

    state: str = "ok"
    error: str | None = None
    last_eval: datetime | None = None
    eval_ms: float | None = None
    rows: int | None = None


class PassReport(NamedTuple):
    """What one evaluation did."""

    time: datetime
    evaluated: int
    errors: dict[str, str]
    events: list[Event]
    notifications: list[Notification]
    seconds: float


class Engine:
    """Evaluate every rule of one store: ``e = Engine(store); e.start(); e.run(at)``."""

    def __init__(self, store: Store, settings: Settings | None = None, *, sender: Sender = send) -> None:
        self.store = store
        store.apply_schema(EXECUTIONS_SCHEMA, RULES_SCHEMA)  # rules read tool runs and write alert state
        self.settings = settings or store.settings or load_settings()
        self.config = rules_config(self.settings)
        self.alerting: AlertingConfig = from_settings(self.settings)
        self.rules: dict[str, Rule] = {}
        self.broken: dict[str, tuple[str, str]] = {}  # name -> (file, error) of files that do not load
        self.status: dict[str, RuleStatus] = {}
        self.instances: dict[tuple[str, str], Instance] = {}
        self.groups = Groups(self.alerting)
        self.health = HealthTracker()
        self.dispatcher = Dispatcher(self.alerting, record=self._record_attempt, done=self._delivery_done,
                                     sender=sender)
        self.watchdog = Watchdog()
        self.passes = 0
        self.last_pass_seconds = 0.0
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._mtimes: dict[str, float] = {}
        self._next_poll = 0.0
        self._last_pass = -1e18
        self._next_status = 0.0
        self._next_housekeep = 0.0
        self._status_written: dict[str, tuple[str, str | None]] = {}
        self._next_id = 1

    # -- lifecycle (open runs in the writer thread) ------------------------------------------

    def start(self) -> None:
        """Load state and rules, install views (in the writer thread), start the dispatcher."""
        self.store.submit(self.open).result()
        self.dispatcher.start()

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read saved state and install every rule (writer thread)."""
        self._cur = self.store.cursor()
        self.instances = alertdb.load_instances(con)
        self._next_id = max((i.id for i in self.instances.values()), default=0) + 1
        self.health = HealthTracker.load(con)
        self.groups.restore(con.execute("SELECT group_key, last_flush, sent FROM notify_groups").fetchall())
        self.reload(con, utcnow(), force=True)

    def close(self) -> None:
        """Stop the dispatcher (after the delivery in progress) and the watchdog."""
        self.dispatcher.stop()
        self.watchdog.close()
        if self._cur is not None:
            self._cur.close()
            self._cur = None

    def on_commit(self) -> None:
        """Evaluate now, on the write connection (call in the writer thread: the store hook does)."""
        started = time.monotonic()
        if started - self._last_pass < self.config.min_interval.total_seconds():
            return  # throttled by rules.min_interval
        self._last_pass = started
        con, now = self.store.connection, utcnow()
        if started >= self._next_poll:
            self._next_poll = started + self.config.poll.total_seconds()
            self.reload(con, now)
        if started < self._next_housekeep and not self._any_due(now):
            return  # every rule waits for its `every:`; nothing to evaluate after this commit
        self.evaluate(con, now, spread=True)

    def _any_due(self, now: datetime) -> bool:
        """Tell whether a pass at ``now`` would evaluate at least one rule."""
        for name, rule in self.rules.items():
            status = self.status[name]
            if status.state == "errored" and status.last_eval is None:
                continue
            if _due(rule, status, now):
                return True
        return False

    def run(self, at: datetime | None = None) -> PassReport:
        """Evaluate once at ``at`` (default now) in the writer thread and wait; for tests and tools."""
        return self.store.submit(lambda con: self.evaluate(con, at or utcnow())).result()

    # -- rules ---------------------------------------------------------------------------------

    def reload(self, con: duckdb.DuckDBPyConnection, now: datetime, *, force: bool = False) -> bool:
        """Reload rule files if any changed (or ``force``); install views; return whether it reloaded."""
        mtimes = snapshot(self.config.dirs)
        if not force and mtimes == self._mtimes:
            return False
        self._mtimes = mtimes
        loaded = load_rules(self.config.dirs, self.config.disabled)
        old = self.rules
        self.broken = loaded.broken
        self.rules = {}
        for name, rule in loaded.rules.items():
            self.rules[name] = rule
            if old.get(name) == rule and name in self.status:
                continue  # unchanged and installed: keep its view and status
            error = views.install(con, rule, replaces=old.get(name))
            self.status[name] = RuleStatus("errored", error) if error else RuleStatus()
        for name, (_file, error) in self.broken.items():
            if name in old:
                views.drop(con, old[name])
            self.status[name] = RuleStatus("errored", error)
        removed = [r for n, r in old.items() if n not in self.rules and n not in self.broken]
        for rule in removed:
            views.drop(con, rule)
            self.status.pop(rule.name, None)
        views.install_health_union(con, [r for r in self.rules.values()
                                         if r.type == "health" and self.status[r.name].state == "ok"])
        views.write_rules_table(con, self.rules, self.broken, self.status, now)
        if removed:
            self._retire(con, {r.name for r in removed}, now)
        log.info("rules loaded: %d ok, %d errored", sum(1 for s in self.status.values() if s.state == "ok"),
                 sum(1 for s in self.status.values() if s.state != "ok"))
        return True

    def _retire(self, con: duckdb.DuckDBPyConnection, names: set[str], now: datetime) -> None:
        events = []
        for inst in self.instances.values():
            if inst.rule in names and inst.state in ("pending", "firing"):
                state: State = "inactive" if inst.state == "pending" else "resolved"
                inst.phase = inst.phase._replace(state=state, resolved_at=now if state == "resolved" else None)
                inst.updated_at = now
                events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, state, state,
                                    inst.value, "engine", "rule removed"))
        alertdb.save_instances(con, [i for i in self.instances.values() if i.rule in names])
        alertdb.append_events(con, events)

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, con: duckdb.DuckDBPyConnection, now: datetime, *, spread: bool = False) -> PassReport:
        """Evaluate every due rule at ``now``, advance alert states, write state, queue notifications.

        With ``spread`` (live passes), `every:` rules that fall due together are spread over the
        next commits once SPREAD_BUDGET is spent, so one pass stays short and alert latency low.
        """
        started = time.perf_counter()
        self._next_housekeep = started + HOUSEKEEP_EVERY
        if started >= self._next_poll:
            self._next_poll = started + self.config.poll.total_seconds()
            self.reload(con, now)
        cur = self._cur or self.store.cursor()
        results: dict[str, RuleResult] = {}
        errors: dict[str, str] = {}
        skipped: list[str] = []
        budget = self.config.budget.total_seconds()
        spent, ran = 0.0, 0  # seconds spent on, and number of, `every:` rules run in this pass
        for name, rule in self.rules.items():
            status = self.status[name]
            if status.state == "errored" and status.last_eval is None:
                errors[name] = status.error or "errored"
                continue  # failed to install: nothing to run until the file changes
            if not _due(rule, status, now):
                skipped.append(name)
                continue  # `every:` asks for fewer evaluations; its alerts keep their state meanwhile
            if spread and rule.every and status.last_eval is not None and ran and spent >= SPREAD_BUDGET:
                skipped.append(name)
                continue  # due, but this pass has done its share: the next commit runs it
            t0 = time.perf_counter()
            try:
                results[name] = evaluate_rule(cur, rule, now, watchdog=self.watchdog,
                                              budget=rule.timeout.total_seconds() if rule.timeout else budget)
            except RuleEvalError as exc:
                errors[name] = str(exc)
                if self.status[name].state != "errored":
                    log.warning("rule %s errored: %s", name, exc)
                self.status[name] = RuleStatus("errored", str(exc), now, (time.perf_counter() - t0) * 1000, None)
                continue
            res = results[name]
            if rule.every:
                spent, ran = spent + res.seconds, ran + 1
            self.status[name] = RuleStatus("ok", None, now, res.seconds * 1000, len(res.alerts) + len(res.health))
        silences = active_silences(cur, now)
        events: list[Event] = []
        changed: dict[int, Instance] = {}
        for res in results.values():
            if res.rule.type == "alert":
                self._apply(res, now, events, changed)
        self._mute(silences, now, events, changed)
        gone = self._collect_garbage(now)
        health_rows = [(r.rule.name, row) for r in results.values() for row in r.health]
        upserts, history, removed = self.health.update(
            health_rows, now, keep_checks=[n for n in [*errors, *skipped] if n in self.rules
                                           and self.rules[n].type == "health"])
        status_names = self._status_to_write([*results, *errors], started)
        if changed or events or gone or status_names or upserts or history or removed:
            con.execute("BEGIN TRANSACTION")  # nothing changed: no empty transaction
            try:
                alertdb.save_instances(con, changed.values())
                alertdb.append_events(con, events)
                alertdb.delete_instances(con, gone)
                views.write_status(con, self.status, status_names)
                write_health(con, upserts, history, removed)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        notes = self.groups.plan(self._alert_views(), now)
        for note in notes:
            self.dispatcher.enqueue(note)
        self.passes += 1
        self.last_pass_seconds = time.perf_counter() - started
        return PassReport(now, len(results), errors, events, notes, self.last_pass_seconds)

    def _status_to_write(self, names: list[str], mono: float) -> list[str]:
        # A change of state or error is written at once; last_eval and eval_ms every STATUS_EVERY s.
        changed = [n for n in names if self._status_written.get(n) != self.status[n][:2]]
        if mono >= self._next_status:
            self._next_status = mono + STATUS_EVERY
            changed = names
        for n in changed:
            self._status_written[n] = self.status[n][:2]
        return changed

    def _apply(self, res: RuleResult, now: datetime, events: list[Event], changed: dict[int, Instance]) -> None:
        rule = res.rule
        timing = Timing(rule.for_, rule.keep_firing_for)
        seen: set[str] = set()
        for row in res.alerts:
            labels = alert_labels(rule, row.labels)
            fp = fingerprint(labels)
            if fp in seen:
                continue  # two rows with the same labels: the first one counts
            seen.add(fp)
            inst = self.instances.get((rule.name, fp))
            if inst is None:
                inst = Instance(self._next_id, rule.name, fp, labels, rule.kind, labels["severity"])
                self._next_id += 1
                self.instances[(rule.name, fp)] = inst
            context = {**row.row, **labels, "value": row.value}
            inst.value, inst.kind, inst.severity = row.value, rule.kind, labels["severity"]
            inst.summary, inst.description = render(rule.summary, context), render(rule.description, context)
            self._step(inst, True, now, timing, events)
            changed[inst.id] = inst
        for (name, fp), inst in self.instances.items():
            if name != rule.name or fp in seen or inst.state in ("inactive", "resolved"):
                continue
            if self._step(inst, False, now, timing, events):
                changed[inst.id] = inst

    def _step(self, inst: Instance, active: bool, now: datetime, timing: Timing, events: list[Event]) -> bool:
        phase, entered = advance(inst.phase, active, now, timing)
        inst.phase = phase
        for state in entered:
            if state == "pending":
                inst.acked_by = inst.acked_at = inst.ack_comment = None  # a new episode starts unacknowledged
            events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, state, state, inst.value))
        if entered or active:
            inst.updated_at = now
        return bool(entered)

    def _mute(self, silences: list[Any], now: datetime, events: list[Event], changed: dict[int, Instance]) -> None:
        firing = [(i.fingerprint, i.labels) for i in self.instances.values() if i.state == "firing"]
        for inst in self.instances.values():
            if inst.state == "inactive":
                continue
            sid = silenced_by(silences, inst.labels, now)
            inh = inst.state == "firing" and inhibited(inst.labels, inst.fingerprint, firing,
                                                       self.alerting.inhibit_rules)
            if sid != inst.silenced_by:
                event = "silenced" if sid is not None else "unsilenced"
                events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, event, inst.state,
                                    inst.value, None, f"silence {sid or inst.silenced_by}"))
                inst.silenced_by = sid
                changed[inst.id] = inst
            if inh != inst.inhibited:
                events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels,
                                    "inhibited" if inh else "uninhibited", inst.state, inst.value))
                inst.inhibited = inh
                changed[inst.id] = inst

    def _collect_garbage(self, now: datetime) -> list[int]:
        limit = now - self.alerting.resolved_retention
        gone = [k for k, i in self.instances.items()
                if i.state in ("inactive", "resolved") and i.updated_at is not None and i.updated_at < limit]
        return [self.instances.pop(k).id for k in gone]

    def _alert_views(self) -> list[AlertView]:
        return [
            AlertView(i.id, i.rule, i.fingerprint, i.labels, i.state, i.value, i.summary, i.description,
                      i.phase.fired_at, i.phase.resolved_at, i.acked_by is not None,
                      i.silenced_by is not None or i.inhibited)
            for i in self.instances.values() if i.state in ("firing", "resolved")
        ]

    # -- actions (writer thread, through writer.submit) ----------------------------------------

    def ack(self, con: duckdb.DuckDBPyConnection, alert_id: int, by: str, comment: str, now: datetime) -> Instance:
        """Acknowledge an alert in the database and in memory."""
        inst = alertdb.ack(con, alert_id, by=by, comment=comment, now=now)
        live = self.instances.get((inst.rule, inst.fingerprint))
        if live is not None:
            live.acked_by, live.acked_at, live.ack_comment = by, now, comment
        return inst

    # -- dispatcher callbacks (dispatcher thread) ------------------------------------------------

    def _record_attempt(self, attempt: Attempt) -> None:
        note, result = attempt.note, attempt.result
        ids = [a.id for a in note.alerts]
        events = [Event(attempt.time, a.id, a.rule, a.fingerprint, dict(a.labels), "notified", a.state, a.value,
                        note.receiver, f"{attempt.channel.label} ({note.status})") for a in note.alerts]

        def write(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(
                "INSERT INTO notifications (time, receiver, channel, group_key, status, alerts, attempt, ok, error, "
                "status_code, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [attempt.time, note.receiver, attempt.channel.label, note.group_key, note.status, ids,
                 attempt.attempt, result.ok, result.error, result.status_code, result.seconds],
            )
            if result.ok:
                alertdb.append_events(con, events)

        self.store.submit(write)

    def _delivery_done(self, note: Notification, ok: bool) -> None:
        if not ok:
            self.groups.failed(note)
            return
        self.groups.delivered(note)
        sent = json.dumps(dict(note.sent), sort_keys=True)
        self.store.submit(lambda con: con.execute(
            "INSERT OR REPLACE INTO notify_groups (group_key, receiver, last_flush, sent, updated_at) "
            "VALUES (?, ?, ?, ?, ?)", [note.group_key, note.receiver, note.time, sent, utcnow()]))


def _due(rule: Rule, status: RuleStatus, now: datetime) -> bool:
    """Tell whether ``rule`` should run at ``now``: no `every:`, never run, or its `every:` (less slack) elapsed."""
    if not rule.every or status.last_eval is None:
        return True
    return now - status.last_eval >= rule.every - min(DUE_SLACK, rule.every / 10)
