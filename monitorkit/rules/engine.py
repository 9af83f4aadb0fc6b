"""The rule engine: evaluate the due rules after each commit, advance alert states, write them, notify.

Threading: ``RuleService`` registers a store hook, so ``Engine.on_commit`` runs in the
writer thread right after each committed batch. No other thread writes the database
then, so the engine reads through its own cursor and writes its state directly on the
write connection in one transaction per evaluation (no ``store.submit`` round trip, no
lock). Everything else that writes (acks, silences, heartbeats, notification records)
goes through ``store.submit`` and is therefore serialized with it. Deliveries run in the
dispatcher thread and never delay an evaluation.

The clocks are injectable (``clock``: monotonic seconds for cadences, ``now``: the wall
clock evaluations are stamped with), so cadence tests run without real time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import duckdb

from monitorkit.config import Settings, load_settings
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.rules import actions, views
from monitorkit.rules import alerts as alertdb
from monitorkit.rules.alerts import Instance
from monitorkit.rules.attempts import AttemptLog
from monitorkit.rules.dispatch import Dispatcher, Sender
from monitorkit.rules.errors import RuleEvalError
from monitorkit.rules.groups import Groups
from monitorkit.rules.health import HealthTracker, write_health
from monitorkit.rules.instances import AlertBook
from monitorkit.rules.loader import Rule, rules_config
from monitorkit.rules.notify import send
from monitorkit.rules.routing import AlertingConfig, from_settings
from monitorkit.rules.rulebook import RuleBook
from monitorkit.rules.runner import RuleResult, Watchdog, evaluate_rule
from monitorkit.rules.schema import SCHEMA as RULES_SCHEMA
from monitorkit.rules.silences import active_silences
from monitorkit.rules.state import Event, PassReport, RuleStatus
from monitorkit.samples import utcnow
from monitorkit.store import Store

log = logging.getLogger(__name__)
SPREAD_BUDGET = 0.05  # seconds of `every:` rules per live pass; the rest wait for the next commit
HOUSEKEEP_EVERY = 5.0  # seconds between passes (silences, garbage) when a commit finds no rule due


class Engine:
    """Evaluate every rule of one store: ``e = Engine(store); e.start(); e.run(at)``."""

    def __init__(self, store: Store, settings: Settings | None = None, *, sender: Sender = send,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        store.apply_schema(EXECUTIONS_SCHEMA, RULES_SCHEMA)  # rules read tool runs and write alert state
        self.settings = settings or store.settings or load_settings()
        self.config = rules_config(self.settings)
        self.alerting: AlertingConfig = from_settings(self.settings)
        self.clock = clock
        self.now = now
        self.rulebook = RuleBook(self.config)
        self.book = AlertBook()
        self.groups = Groups(self.alerting)
        self.health = HealthTracker()
        self.attempts = AttemptLog(store, self.groups, now)
        self.dispatcher = Dispatcher(self.alerting, record=self.attempts.record, done=self.attempts.done,
                                     sender=sender)
        self.watchdog = Watchdog()
        self.passes = 0
        self.last_pass_seconds = 0.0
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._next_poll = -1e18
        self._last_pass = -1e18
        self._next_housekeep = -1e18

    @property
    def rules(self) -> dict[str, Rule]:
        """Return the loaded rules by name."""
        return self.rulebook.rules

    @property
    def status(self) -> dict[str, RuleStatus]:
        """Return every rule's status by name (files that failed to load included)."""
        return self.rulebook.status

    @property
    def instances(self) -> dict[tuple[str, str], Instance]:
        """Return every alert instance by (rule, fingerprint)."""
        return self.book.instances

    # -- lifecycle (open runs in the writer thread) ------------------------------------------

    def start(self) -> None:
        """Load state and rules, install views (in the writer thread), start the dispatcher."""
        self.store.submit(self.open).result()
        self.dispatcher.start()

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read saved state and install every rule (writer thread)."""
        self._cur = self.store.cursor()
        self.book = AlertBook(alertdb.load_instances(con))
        self.health = HealthTracker.load(con)
        self.groups.restore(con.execute("SELECT group_key, last_flush, sent FROM notify_groups").fetchall())
        self.reload(con, self.now(), force=True)

    def close(self) -> None:
        """Stop the dispatcher (after the delivery in progress) and the watchdog."""
        self.dispatcher.stop()
        self.watchdog.close()
        if self._cur is not None:
            self._cur.close()
            self._cur = None

    def on_commit(self) -> None:
        """Evaluate now, on the write connection (call in the writer thread: the store hook does)."""
        started = self.clock()
        if started - self._last_pass < self.config.min_interval.total_seconds():
            return  # throttled by rules.min_interval
        self._last_pass = started
        con, now = self.store.connection, self.now()
        self._poll(con, now, started)
        if started < self._next_housekeep and not self.rulebook.any_due(now):
            return  # every rule waits for its `every:`; nothing to evaluate after this commit
        self.evaluate(con, now, spread=True)

    def run(self, at: datetime | None = None) -> PassReport:
        """Evaluate once at ``at`` (default now) in the writer thread and wait; for tests and tools."""
        return self.store.submit(lambda con: self.evaluate(con, at or self.now())).result()

    # -- rules ---------------------------------------------------------------------------------

    def _poll(self, con: duckdb.DuckDBPyConnection, now: datetime, mono: float) -> None:
        if mono >= self._next_poll:
            self._next_poll = mono + self.config.poll.total_seconds()
            self.reload(con, now)

    def reload(self, con: duckdb.DuckDBPyConnection, now: datetime, *, force: bool = False) -> bool:
        """Reload rule files if any changed (or ``force``); install views; return whether it reloaded."""
        removed = self.rulebook.reload(con, now, force=force)
        if removed is None:
            return False
        if removed:
            instances, events = self.book.retire({r.name for r in removed}, now)
            alertdb.save_instances(con, instances)
            alertdb.append_events(con, events)
        return True

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, con: duckdb.DuckDBPyConnection, now: datetime, *, spread: bool = False) -> PassReport:
        """Evaluate every due rule at ``now``, advance alert states, write state, queue notifications.

        With ``spread`` (live passes), `every:` rules that fall due together are spread over the
        next commits once SPREAD_BUDGET is spent, so one pass stays short and alert latency low.
        """
        started = time.perf_counter()
        mono = self.clock()
        self._next_housekeep = mono + HOUSEKEEP_EVERY
        self._poll(con, now, mono)
        results, errors, skipped = self._evaluate_due(now, spread)
        cur = self._cur or self.store.cursor()
        events: list[Event] = []
        changed: dict[int, Instance] = {}
        for res in results.values():
            if res.rule.type == "alert":
                self.book.apply(res, now, events, changed)
        self.book.mute(active_silences(cur, now), self.alerting.inhibit_rules, now, events, changed)
        gone = self.book.collect_garbage(now, self.alerting.resolved_retention)
        rules = self.rulebook.rules
        health_rows = [(r.rule.name, row) for r in results.values() for row in r.health]
        upserts, history, removed = self.health.update(
            health_rows, now, keep_checks=[n for n in [*errors, *skipped] if n in rules and rules[n].type == "health"])
        status_names = self.rulebook.status_to_write([*results, *errors], mono)
        if changed or events or gone or status_names or upserts or history or removed:
            con.execute("BEGIN TRANSACTION")  # nothing changed: no empty transaction
            try:
                alertdb.save_instances(con, changed.values())
                alertdb.append_events(con, events)
                alertdb.delete_instances(con, gone)
                views.write_status(con, self.rulebook.status, status_names)
                write_health(con, upserts, history, removed)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        notes = self.groups.plan(self.book.views(), now)
        for note in notes:
            self.dispatcher.enqueue(note)
        self.passes += 1
        self.last_pass_seconds = time.perf_counter() - started
        return PassReport(now, len(results), errors, events, notes, self.last_pass_seconds)

    def _evaluate_due(self, now: datetime, spread: bool) -> tuple[dict[str, RuleResult], dict[str, str], list[str]]:
        """Run every due rule at ``now``; return (results, errors, names skipped as not due)."""
        book = self.rulebook
        cur = self._cur or self.store.cursor()
        results: dict[str, RuleResult] = {}
        errors: dict[str, str] = {}
        skipped: list[str] = []
        budget = self.config.budget.total_seconds()
        spent, ran = 0.0, 0  # seconds spent on, and number of, `every:` rules run in this pass
        for name, rule in book.rules.items():
            status = book.status[name]
            if not book.installed(name):
                errors[name] = status.error or "errored"
                continue  # failed to install: nothing to run until the file changes
            if not book.due(rule, now):
                skipped.append(name)
                continue  # `every:` asks for fewer evaluations; its alerts keep their state meanwhile
            if spread and rule.every and status.last_eval is not None and ran and spent >= SPREAD_BUDGET:
                skipped.append(name)
                continue  # due, but this pass has done its share: the next commit runs it
            t0 = time.perf_counter()
            try:
                res = evaluate_rule(cur, rule, now, watchdog=self.watchdog,
                                    budget=rule.timeout.total_seconds() if rule.timeout else budget)
            except RuleEvalError as exc:
                errors[name] = str(exc)
                if status.state != "errored":
                    log.warning("rule %s errored: %s", name, exc)
                book.status[name] = RuleStatus("errored", str(exc), now, (time.perf_counter() - t0) * 1000, None)
                continue
            results[name] = res
            if rule.every:
                spent, ran = spent + res.seconds, ran + 1
            book.status[name] = RuleStatus("ok", None, now, res.seconds * 1000, len(res.alerts) + len(res.health))
        return results, errors, skipped

    # -- actions (writer thread, through store.submit) -------------------------------------------

    def ack(self, con: duckdb.DuckDBPyConnection, payload: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Acknowledge through the one ack action, then take the stored acknowledgement onto the live alert."""
        answer = actions.ACTIONS["/ack"](con, payload, now)
        self.book.copy_ack(alertdb.get_alert(con, int(answer["id"])))
        return answer
