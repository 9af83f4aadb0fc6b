"""One evaluation pass: run the due rules (inline, or handed to the slow lane) and write what changed.

``evaluate_due`` runs on the engine's thread over committed data. Inline, every rule gets
INLINE_BUDGET seconds at most; one that overruns it is marked slow and re-run in the slow
lane with its full budget, so one slow rule costs the others at most INLINE_BUDGET, once.
``write_pass`` is the writer-thread half: one transaction with everything the pass changed,
built from copies (``PassWrite.of``) so the next pass may go on changing the live objects.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, NamedTuple

import duckdb

from monitorkit.rules import alerts as alertdb
from monitorkit.rules import views
from monitorkit.rules.alerts import Instance
from monitorkit.rules.errors import RuleEvalError, RuleTimeoutError
from monitorkit.rules.health import write_health
from monitorkit.rules.lanes import Finished, SlowLane
from monitorkit.rules.rulebook import RuleBook
from monitorkit.rules.runner import RuleResult, Watchdog, evaluate_rule
from monitorkit.rules.state import Event, RuleStatus

log = logging.getLogger(__name__)
INLINE_BUDGET = 0.25  # seconds a rule may take in the live pass before it moves to the slow lane
PROMOTE_BELOW = INLINE_BUDGET / 2  # a slow-lane run this fast brings the rule back inline
SPREAD_BUDGET = 0.05  # seconds of `every:` rules per live pass; the rest wait for the next pass
Cadence = Literal["commit", "every"] | None  # which rules a pass runs: without `every:`, with it, or all


class Due(NamedTuple):
    """What the due rules of one pass returned, and the errors (rule -> message as recorded)."""

    results: dict[str, RuleResult]
    errors: dict[str, str]


def evaluate_due(book: RuleBook, cur: duckdb.DuckDBPyConnection, now: datetime, watchdog: Watchdog,
                 slow: SlowLane | None, finished: Iterable[Finished], *, spread: bool, fresh: bool = True,
                 cadence: Cadence = None) -> Due:
    """Apply the slow lane's ``finished`` runs, then run every rule due at ``now`` (``fresh``: data was committed).

    ``cadence`` picks the rules: "commit" those without `every:`, "every" those with it, None all.

    Without ``slow`` (``Engine.run``) every rule runs inline with its full budget. With
    ``spread``, `every:` rules that fall due together are spread over the next passes once
    SPREAD_BUDGET is spent, so one pass stays short and alert latency low.
    """
    results: dict[str, RuleResult] = {}
    errors: dict[str, str] = {}
    for f in finished:
        name = f.rule.name
        if book.rules.get(name) != f.rule:
            continue  # reloaded or removed while it ran
        if isinstance(f.outcome, RuleEvalError):
            errors[name] = book.failed(name, f.at, str(f.outcome), f.seconds, slow=True, now=now)
        else:
            results[name] = f.outcome
            book.succeeded(name, f.at, f.seconds, _rows(f.outcome), slow=f.seconds >= PROMOTE_BELOW)
    full = book.config.budget.total_seconds()
    spent, ran = 0.0, 0  # seconds spent on, and number of, `every:` rules run in this pass
    for name, rule in book.rules.items():
        status = book.status[name]
        if not book.installed(name):
            errors[name] = status.error or "errored"
            continue  # failed to install: nothing to run until the file changes
        if cadence is not None and bool(rule.every) != (cadence == "every"):
            continue  # the other half of the pass runs it
        if name in results or name in errors or (slow is not None and slow.busy(name)):
            continue  # its slow-lane run was just applied, or it is still running there
        at = book.due(rule, now, fresh=fresh)
        if at is None:
            continue  # `every:` asks for fewer evaluations, or it backs off; its alerts keep their state
        if spread and rule.every and status.last_eval is not None and ran and spent >= SPREAD_BUDGET:
            continue  # due, but this pass has done its share: the next pass runs it
        budget = rule.timeout.total_seconds() if rule.timeout else full
        if slow is not None and status.slow:
            slow.submit(rule, at, budget)
            continue
        inline = budget if slow is None else min(budget, INLINE_BUDGET)
        started = time.perf_counter()
        try:
            res = evaluate_rule(cur, rule, at, watchdog=watchdog, budget=inline)
        except RuleTimeoutError as exc:
            if slow is not None and inline < budget:
                log.info("rule %s took over %g s: it runs in the slow lane from now on", name, inline)
                book.status[name] = status._replace(slow=True)
                slow.submit(rule, at, budget)
                continue
            errors[name] = book.failed(name, at, str(exc), time.perf_counter() - started, slow=status.slow, now=now)
            continue
        except RuleEvalError as exc:
            errors[name] = book.failed(name, at, str(exc), time.perf_counter() - started, slow=status.slow, now=now)
            continue
        results[name] = res
        if rule.every:
            spent, ran = spent + res.seconds, ran + 1
        book.succeeded(name, at, res.seconds, _rows(res), slow=False)
    return Due(results, errors)


def _rows(res: RuleResult) -> int:
    return len(res.alerts) + len(res.health)


class PassWrite(NamedTuple):
    """Everything one pass changed, as copies: instances, events, forgotten ids, rule status and health."""

    instances: list[Instance]
    events: list[Event]
    gone: list[int]
    status: dict[str, RuleStatus]
    upserts: list[tuple[Any, ...]]
    history: list[tuple[Any, ...]]
    removed: list[str]

    @classmethod
    def of(cls, instances: Iterable[Instance], events: list[Event], gone: list[int], status: dict[str, RuleStatus],
           upserts: list[tuple[Any, ...]], history: list[tuple[Any, ...]], removed: list[str]) -> PassWrite:
        """Copy the live instances (the next pass changes them while this one waits for the writer)."""
        return cls([copy.copy(i) for i in instances], events, gone, status, upserts, history, removed)

    @property
    def empty(self) -> bool:
        """Tell whether there is nothing to write (no empty transaction then)."""
        return not any(self)


def write_pass(con: duckdb.DuckDBPyConnection, w: PassWrite) -> None:
    """Write one pass in one transaction (writer thread)."""
    con.execute("BEGIN TRANSACTION")
    try:
        alertdb.save_instances(con, w.instances)
        alertdb.append_events(con, w.events)
        alertdb.delete_instances(con, w.gone)
        views.write_status(con, w.status, list(w.status))
        write_health(con, w.upserts, w.history, w.removed)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
