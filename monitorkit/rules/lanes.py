"""The slow lane: one thread that runs the rules too slow for the inline pass, each within its full budget.

The engine's pass runs every rule on its own thread with a short inline budget; a rule that
overruns it is handed here and runs again with its whole budget (``[rules] budget`` or its
``timeout:``), so it delays only the other slow rules, never the pass, ingestion or alerts.
Finished evaluations wait in ``take()`` for the next pass, which applies them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import duckdb

from monitorkit.rules.errors import RuleEvalError
from monitorkit.rules.loader import Rule
from monitorkit.rules.runner import RuleResult, Watchdog, evaluate_rule

log = logging.getLogger(__name__)


class Finished(NamedTuple):
    """One evaluation the slow lane finished: its rows, or the error it raised."""

    rule: Rule
    at: datetime
    outcome: RuleResult | RuleEvalError
    seconds: float


class SlowLane:
    """Run rules one at a time on a thread of their own: ``lane.submit(rule, at, 30.0)``; ``lane.take()``."""

    def __init__(self, cursor: Callable[[], duckdb.DuckDBPyConnection], watchdog: Watchdog,
                 wake: Callable[[], None]) -> None:
        self._cursor = cursor
        self._watchdog = watchdog
        self._wake = wake
        self._queue: deque[tuple[Rule, datetime, float]] = deque()
        self._busy: set[str] = set()  # queued or running
        self._done: list[Finished] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._cur: duckdb.DuckDBPyConnection | None = None
        self.running: str | None = None

    def submit(self, rule: Rule, at: datetime, budget: float) -> None:
        """Queue ``rule`` to run at ``at`` within ``budget`` seconds (a rule already queued is not queued twice)."""
        with self._cond:
            if self._closed or rule.name in self._busy:
                return
            self._busy.add(rule.name)
            self._queue.append((rule, at, budget))
            if self._thread is None:  # most owners never have a slow rule: no thread until one comes
                self._thread = threading.Thread(target=self._run, name="monitorkit-rules-slow", daemon=True)
                self._thread.start()
            self._cond.notify()

    def busy(self, name: str) -> bool:
        """Tell whether rule ``name`` is queued or running here (or finished and not yet taken)."""
        with self._cond:
            return name in self._busy

    def has_finished(self) -> bool:
        """Tell whether an evaluation waits to be taken."""
        with self._cond:
            return bool(self._done)

    def take(self) -> list[Finished]:
        """Return the evaluations finished since the last call."""
        with self._cond:
            done, self._done = self._done, []
            for f in done:
                self._busy.discard(f.rule.name)
            return done

    def alive(self) -> bool:
        """Tell whether the lane's thread runs (or was never needed)."""
        return self._thread is None or self._thread.is_alive() or self._closed

    def close(self) -> None:
        """Stop now: the rule in progress is interrupted (the store closes after this)."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            if self._cur is not None and self.running is not None:
                self._cur.interrupt()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        cur = self._cur = self._cursor()
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    rule, at, budget = self._queue.popleft()
                    self.running = rule.name
                started = time.perf_counter()
                outcome: RuleResult | RuleEvalError
                try:
                    outcome = evaluate_rule(cur, rule, at, watchdog=self._watchdog, budget=budget)
                except RuleEvalError as exc:
                    outcome = exc
                except Exception as exc:  # a bug must not stop the lane: the rule is errored with it
                    log.exception("slow lane: rule %s raised", rule.name)
                    outcome = RuleEvalError(f"{type(exc).__name__}: {exc}")
                with self._cond:
                    self.running = None
                    self._done.append(Finished(rule, at, outcome, time.perf_counter() - started))
                self._wake()
        finally:
            cur.close()
