"""The rule engine: evaluate the due rules over committed data on its own thread, keep alert state, notify.

Threading: the engine's loop (``monitorkit-rules``) wakes after each commit (the store hook
only sets a flag), on a timer when an `every:` step, a backoff or a notification group falls
due, and every HOUSEKEEP_EVERY seconds. It reads through its own cursor, so it sees committed
data and never holds the writer; it writes alert state, events, health and rule status
through ``store.submit`` (one transaction per pass), queued behind at most one commit. Each
rule runs inline with a short budget (INLINE_BUDGET); one that overruns it moves to the slow
lane (``lanes.py``) and runs there with its full budget, and an errored rule backs off
exponentially (``rulebook.py``). Deliveries run in the dispatcher's threads.

``run(at)`` (tests, tools) evaluates every due rule at ``at`` inline with full budgets and
waits for the write. The clocks are injectable (``clock``: monotonic seconds for cadences,
``now``: the wall clock passes are stamped with), so cadence tests run without real time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import duckdb

from monitorkit.config import Settings, load_settings
from monitorkit.errors import StoreClosedError
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.rules import actions
from monitorkit.rules import alerts as alertdb
from monitorkit.rules.alerts import Instance
from monitorkit.rules.attempts import AttemptLog
from monitorkit.rules.dispatch import Dispatcher, Sender
from monitorkit.rules.evaluation import Cadence, PassWrite, evaluate_due, write_pass
from monitorkit.rules.groups import Groups
from monitorkit.rules.health import HealthTracker
from monitorkit.rules.instances import AlertBook
from monitorkit.rules.lanes import SlowLane
from monitorkit.rules.loader import Rule, rules_config
from monitorkit.rules.notify import send
from monitorkit.rules.restore import RestoreSettings
from monitorkit.rules.routing import AlertingConfig, from_settings
from monitorkit.rules.rulebook import RuleBook
from monitorkit.rules.runner import HealthRow, Watchdog
from monitorkit.rules.schema import SCHEMA as RULES_SCHEMA
from monitorkit.rules.silences import active_silences
from monitorkit.rules.state import Event, PassReport, RuleStatus
from monitorkit.samples import utcnow
from monitorkit.store import Store

log = logging.getLogger(__name__)
HOUSEKEEP_EVERY = 5.0  # seconds between passes (silences, garbage, repeats) when nothing else is due
STALLED_AFTER = 30.0  # seconds without a pass after which the loop counts as stalled in health
MIN_WAIT = 0.05  # seconds: the shortest wait of the loop for a timer
OWN_CHECK = "engine"  # the check name of the components the engine reports from memory


class Engine:
    """Evaluate every rule of one store: ``e = Engine(store); e.start(); e.run(at)``; live: ``e.start_loop()``."""

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
        self.slow = SlowLane(store.cursor, self.watchdog, self._wake_up)
        self.listeners: list[Callable[[PassReport], None]] = []  # called once a pass's state is committed
        self.passes = 0
        self.last_pass_seconds = 0.0
        self.write_errors = 0
        self.loop_error: str | None = None
        self._lock = threading.RLock()  # one pass, reload or ack at a time
        self._wake = threading.Condition()
        self._kicked = False
        self._fresh = False  # data was committed since the last pass
        self._stopping = False
        self._loop: threading.Thread | None = None
        self._cur: duckdb.DuckDBPyConnection | None = None
        self._next_poll = -1e18
        self._last_pass = -1e18
        self._loop_started = -1e18
        self._hold_until: float | None = None  # see start_loop(hold=...)
        self._commit_wake = True  # whether a commit can make a rule due (RuleBook.wants_commits)
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

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load state and rules, install views (in the writer thread), start the dispatcher."""
        self.store.submit(self.open).result()
        self.dispatcher.start()

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read saved state and install every rule (writer thread)."""
        self.book = AlertBook(alertdb.load_instances(con), RestoreSettings(
            self.config.for_outage_tolerance, self.config.for_grace_period))
        self.health = HealthTracker.load(con)
        self.groups.restore(con.execute("SELECT group_key, last_flush, sent FROM notify_groups").fetchall())
        self.reload(con, self.now(), force=True)

    def start_loop(self, *, hold: float = 0.0) -> None:
        """Evaluate on the engine's own thread from now on: after each ``on_commit`` and on its timers.

        With ``hold`` the first pass waits for ``release()`` (at most ``hold`` seconds): an owner
        releases once its first tick is committed, so no check judges the data of the previous run
        ("no report since <the last stop>") or an empty file and holds that verdict for its `every:`.
        """
        self._hold_until = self.clock() + hold if hold > 0 else None
        self._loop = threading.Thread(target=self._run_loop, name="monitorkit-rules", daemon=True)
        self._loop_started = self.clock()  # a loop that has not passed yet is not stalled until STALLED_AFTER
        self._loop.start()

    def on_commit(self, info: object = None) -> None:
        """Wake the loop: new data is committed (a store hook; returns at once, evaluates nothing here).

        Only rules without `every:` (and rules never evaluated yet) run on fresh data; when there
        are none (the shipped set, once started) the loop sleeps on to its timers instead of waking
        for nothing on every commit.
        """
        with self._wake:
            self._fresh = True
            if self._commit_wake:  # worked out after each pass: this runs in the writer thread, per commit
                self._kicked = True
                self._wake.notify()

    def release(self) -> None:
        """End the hold of ``start_loop``: the owner's first tick is committed, evaluate from now on."""
        self._hold_until = None
        self._wake_up()

    def _wake_up(self) -> None:
        with self._wake:
            self._kicked = True
            self._wake.notify()

    def close(self) -> None:
        """Stop the loop (after its pass), the slow lane, the dispatcher (after the delivery in progress)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._loop is not None:
            self._loop.join(10.0)
        self.slow.close()
        self.dispatcher.stop()
        self.watchdog.close()
        if self._cur is not None:
            self._cur.close()
            self._cur = None

    def _run_loop(self) -> None:
        while True:
            with self._wake:
                # A floor under timer waits: a timer due now (or `rules.poll = 0s`) must not spin the loop.
                wait = max(self._next_wake() - self.clock(), MIN_WAIT)
                if not self._kicked and not self._stopping:
                    self._wake.wait(wait)
                if self._stopping:
                    return
                self._kicked = False
            try:
                self.step()
                self._commit_wake = self.rulebook.wants_commits()
                self.loop_error = None
            except StoreClosedError:
                return  # the owner is shutting down
            except Exception as exc:  # a bug in one pass must not end evaluation; health shows it
                self.loop_error = f"{type(exc).__name__}: {exc}"
                log.exception("rule evaluation pass failed")
                with self._wake:
                    self._wake.wait(1.0)  # no hot loop on a persistent error

    def _next_wake(self) -> float:
        """Return the monotonic time of the next timer: housekeeping, polling, a due rule or group, a throttled commit."""
        mono, now = self.clock(), self.now()
        if self._hold_until is not None:
            return self._hold_until  # nothing runs before release() or the end of the hold
        throttle = self._last_pass + self.config.min_interval.total_seconds()
        times = [self._next_housekeep, self._next_poll, *([throttle] if self._fresh else [])]
        for due in (self.rulebook.next_due(), self.groups.next_due()):
            if due is not None:
                times.append(mono + (due - now).total_seconds())
        return max(min(times), throttle)

    # -- evaluation -------------------------------------------------------------------------------

    def step(self) -> PassReport | None:
        """Evaluate what is due now, as a commit or a timer asks; return the pass, or None if nothing ran."""
        with self._lock:
            mono = self.clock()
            if self._hold_until is not None:
                if mono < self._hold_until:
                    return None  # the owner's first tick is not committed yet
                log.warning("the owner's first tick was not committed within the hold: evaluating anyway")
                self._hold_until = None
            if mono - self._last_pass < self.config.min_interval.total_seconds():
                return None  # throttled by rules.min_interval; the loop comes back when it ends
            now = self.now()
            self._poll(now, mono)
            with self._wake:
                fresh, self._fresh = self._fresh, False
            group = self.groups.next_due()
            if (mono < self._next_housekeep and not self.rulebook.any_due(now, fresh=fresh)
                    and not self.slow.has_finished() and (group is None or group > now)):
                return None  # every rule waits for its `every:` step or new data: nothing to do now
            self._last_pass = mono
            self.passes += 1
            # Rules a commit triggers first, written and notified before any `every:` rule runs:
            # the latency of an alert on fresh data never includes the periodic rules' cost.
            report = self._pass(now, mono, live=True, fresh=fresh, cadence="commit")[0]
            if self.rulebook.any_due(now, fresh=fresh, every=True):
                later = self._pass(now, mono, live=True, fresh=fresh, cadence="every")[0]
                report = PassReport(now, report.evaluated + later.evaluated, {**report.errors, **later.errors},
                                    report.events + later.events, report.notifications + later.notifications,
                                    report.seconds + later.seconds)
            return report

    def run(self, at: datetime | None = None) -> PassReport:
        """Evaluate every due rule once at ``at`` (default now) with full budgets and wait; for tests and tools."""
        with self._lock:
            now = at or self.now()
            self._poll(now, self.clock())
            self.passes += 1
            report, written = self._pass(now, self.clock(), live=False, fresh=True, cadence=None)
        if written is not None:
            written.result()
        return report

    def _pass(self, now: datetime, mono: float, *, live: bool, fresh: bool,
              cadence: Cadence) -> tuple[PassReport, Future[None] | None]:
        started = time.perf_counter()
        self._next_housekeep = mono + HOUSEKEEP_EVERY
        cur = self._cursor()
        due = evaluate_due(self.rulebook, cur, now, self.watchdog, self.slow if live else None,
                           [] if not live or cadence == "every" else self.slow.take(), spread=live, fresh=fresh,
                           cadence=cadence)
        events: list[Event] = []
        changed: dict[int, Instance] = {}
        for res in due.results.values():
            if res.rule.type == "alert":
                self.book.apply(res, res.at or now, events, changed)
        if self.book.any_live():  # silences and inhibitions act on live instances only: no query without one
            self.book.mute(active_silences(cur, now), self.alerting.inhibit_rules, now, events, changed)
        gone = self.book.collect_garbage(now, self.alerting.resolved_retention)
        rules = self.rulebook.rules
        rows = [(r.rule.name, row) for r in due.results.values() for row in r.health]
        rows += [(OWN_CHECK, row) for row in self.health_rows(mono)]
        keep = [n for n, r in rules.items() if r.type == "health" and n not in due.results]
        upserts, history, removed = self.health.update(rows, now, keep_checks=keep)
        names = self.rulebook.status_to_write([*due.results, *due.errors], mono)
        write = PassWrite.of(changed.values(), events, gone, {n: self.rulebook.status[n] for n in names},
                             upserts, history, removed)
        notes = self.groups.plan(self.book.views(), now)
        for note in notes:
            self.dispatcher.enqueue(note)
        self.last_pass_seconds = time.perf_counter() - started
        report = PassReport(now, len(due.results), due.errors, events, notes, self.last_pass_seconds)
        future = None if write.empty else self.store.submit(lambda con: write_pass(con, write))
        if future is not None:
            future.add_done_callback(lambda f: self._written(f, report))
        else:
            self._notify(report)
        return report, future

    def _written(self, future: Future[None], report: PassReport) -> None:
        exc = future.exception()
        if exc is not None:  # in memory the state is right; the next change of each row writes it again
            self.write_errors += 1
            log.error("writing the rule pass of %s failed: %s", report.time, exc)
            return
        self._notify(report)

    def _notify(self, report: PassReport) -> None:
        for listener in list(self.listeners):
            try:
                listener(report)
            except Exception:  # a listener is for tests and benchmarks: it must not break a pass
                log.exception("pass listener %r failed", listener)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._cur is None:
            self._cur = self.store.cursor()
        return self._cur

    def health_rows(self, mono: float | None = None) -> list[HealthRow]:
        """Return the components the engine knows from memory: its loop, the dispatcher and each receiver.

        These need no query, so ``/healthz`` can call this even when nothing can be written.
        """
        rows = self.dispatcher.health_rows()
        if self._loop is None:
            return rows  # no live loop (tests, tools): nothing to say about it
        mono = self.clock() if mono is None else mono
        if not self._loop.is_alive() and not self._stopping:
            rows.append(HealthRow("rule_engine", "failing", f"the evaluation thread stopped: {self.loop_error}"))
        elif not self.slow.alive():
            rows.append(HealthRow("rule_engine", "failing", "the slow lane's thread stopped"))
        elif self.loop_error is not None:
            rows.append(HealthRow("rule_engine", "failing", f"evaluation passes fail: {self.loop_error}"))
        elif mono - max(self._last_pass, self._loop_started) > STALLED_AFTER:
            rows.append(HealthRow("rule_engine", "failing", f"no evaluation pass for {STALLED_AFTER:g} s"))
        else:
            rows.append(HealthRow("rule_engine", "ok", "evaluating on its own thread"))
        return rows

    # -- rules and actions ---------------------------------------------------------------------

    def _poll(self, now: datetime, mono: float) -> None:
        if mono >= self._next_poll:
            self._next_poll = mono + self.config.poll.total_seconds()
            if self.rulebook.changed():
                self.store.submit(lambda con: self.reload(con, now)).result()

    def reload(self, con: duckdb.DuckDBPyConnection, now: datetime, *, force: bool = False) -> bool:
        """Reload rule files if any changed (or ``force``); install views; return whether it did.

        Runs in the writer thread while the caller holds the engine lock (``_poll``, ``reload_now``)
        or before the loop starts (``open``): taking the lock here would deadlock with the waiter.
        """
        removed = self.rulebook.reload(con, now, force=force)
        if removed is None:
            return False
        if removed:
            instances, events = self.book.retire({r.name for r in removed}, now)
            alertdb.save_instances(con, instances)
            alertdb.append_events(con, events)
        return True

    def reload_now(self) -> bool:
        """Reload every rule file now (the ``/reload`` route); return whether it reloaded."""
        with self._lock:
            self._commit_wake = True  # new rules may run on commits; the next pass works it out again
            return bool(self.store.submit(lambda con: self.reload(con, self.now(), force=True)).result())

    def ack(self, payload: Mapping[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Acknowledge through the one ack action (writer thread), then take the stored ack onto the live alert."""
        def task(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, Any], Instance]:
            answer = actions.ACTIONS["/ack"](con, payload, self.now())
            return answer, alertdb.get_alert(con, int(answer["id"]))

        with self._lock:  # no pass between the write and the copy: the next pass saves the acked alert
            answer, stored = self.store.submit(task).result(timeout)
            self.book.copy_ack(stored)
        return answer
