"""Run one rule's SQL at an evaluation time, within a time budget, and check its columns."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import duckdb

from monitorkit.errors import QueryError
from monitorkit.rules.errors import RuleEvalError, RuleTimeoutError
from monitorkit.rules.loader import HEALTH_COLUMNS, Rule, sql_at
from monitorkit.rules.templates import label_value, render

HEALTH_STATUSES = ("ok", "degraded", "failing")


class AlertRow(NamedTuple):
    """One row of an alert rule: its labels (every column but value and ``_``-prefixed ones), value, raw row."""

    labels: dict[str, str]
    value: float | None
    row: dict[str, Any]


class HealthRow(NamedTuple):
    """One row of a health check."""

    component: str
    status: str
    reason: str


class RuleResult(NamedTuple):
    """What one evaluation of one rule returned."""

    rule: Rule
    at: datetime | None
    alerts: list[AlertRow]
    health: list[HealthRow]
    seconds: float


class Watchdog:
    """Interrupt a cursor whose query runs past its budget: one helper thread for every cursor in use.

    Several threads may run rules at once (the inline pass and the slow lane), each under its
    own budget. While budgets come one after another the thread polls every ``resolution``
    seconds instead of being woken for each rule: no thread switch per rule.
    """

    def __init__(self, resolution: float = 0.05) -> None:
        self.resolution = resolution
        self._cond = threading.Condition()
        self._targets: dict[int, list[Any]] = {}  # token -> [deadline, cursor, fired]
        self._tokens = itertools.count()
        self._closed = False
        self._idle = True
        self._thread = threading.Thread(target=self._run, name="monitorkit-rule-watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def budget(self, cur: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[None]:
        """Run the block with ``cur`` interrupted after ``seconds``; raise RuleTimeoutError if it was."""
        with self._cond:
            token = next(self._tokens)
            self._targets[token] = [time.monotonic() + seconds, cur, False]
            if self._idle or seconds < self.resolution:
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                fired = self._targets.pop(token)[2]
        if fired:
            raise RuleTimeoutError(f"took longer than its {seconds:g} s budget and was interrupted")

    def active(self) -> int:
        """Return how many budgets run now (rules being evaluated)."""
        with self._cond:
            return len(self._targets)

    def close(self) -> None:
        """Stop the helper thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(2.0)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                armed = [t for t in self._targets.values() if not t[2]]
                if not armed:
                    self._idle = True
                    self._cond.wait(None if not self._targets else self.resolution)
                    continue
                self._idle = False
                now = time.monotonic()
                for target in armed:
                    if target[0] <= now:
                        target[1].interrupt()  # the block still runs: its exit waits for this lock
                        target[2] = True
                left = min((t[0] for t in armed if not t[2]), default=now + self.resolution) - now
                self._cond.wait(min(max(left, 0.0), self.resolution))


def fetch_dicts(con: Any, sql: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Run ``sql`` on a DuckDB or remote connection; return (column names, rows as dicts)."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        values = con.execute(sql).fetchall()
        names = [d[0] for d in con.description or []]
        return names, [dict(zip(names, v, strict=True)) for v in values]
    table = con.execute(sql).fetch_arrow_table()  # a RemoteConnection: the result comes back as Arrow
    return list(table.column_names), table.to_pylist()


def _fetch(con: Any, sql: str) -> list[dict[str, Any]]:
    names, rows = fetch_dicts(con, sql)
    # Keep the column names even with no rows, to check them.
    return rows or [{"__columns__": names}]


def query_rule(
    con: Any, rule: Rule, at: datetime | None, *, watchdog: Watchdog | None = None, budget: float | None = None,
) -> list[dict[str, Any]]:
    """Return the rule's rows at ``at`` (None: live) as dicts; SQL errors raise RuleEvalError."""
    sql = sql_at(rule, at)
    try:
        if watchdog is not None and budget is not None:
            with watchdog.budget(con, budget):
                try:
                    return _fetch(con, sql)
                except duckdb.InterruptException as exc:
                    raise RuleTimeoutError(f"took longer than its {budget:g} s budget and was interrupted") from exc
        return _fetch(con, sql)
    except (duckdb.Error, QueryError) as exc:
        raise RuleEvalError(_short(str(exc))) from exc


def _short(text: str) -> str:
    return text.strip().split("\n\nLINE")[0][:2000]


def _columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    if len(rows) == 1 and "__columns__" in rows[0]:
        return list(rows[0]["__columns__"]), []
    return list(rows[0]) if rows else [], rows


def alert_rows(rule: Rule, rows: list[dict[str, Any]]) -> list[AlertRow]:
    """Turn an alert rule's rows into AlertRows; raise RuleEvalError when ``value`` is missing or not a number."""
    columns, rows = _columns(rows)
    if "value" not in columns:
        raise RuleEvalError(f"an alert rule must return a 'value' column; it returned {', '.join(columns) or 'none'}")
    out = []
    for row in rows:
        raw = row["value"]
        if raw is not None and not isinstance(raw, (int, float)):
            try:
                raw = float(raw)
            except (TypeError, ValueError):
                raise RuleEvalError(f"column 'value' must be numeric, got {type(raw).__name__} {raw!r}") from None
        value = float(raw) if raw is not None else None  # +Inf and NaN stay what they are, as in Prometheus
        # Columns starting with "_" are for templates only, not labels (they may change every evaluation).
        labels = {k: label_value(v) for k, v in row.items() if k != "value" and not k.startswith("_") and v is not None}
        out.append(AlertRow(labels, value, row))
    return out


def health_rows(rule: Rule, rows: list[dict[str, Any]]) -> list[HealthRow]:
    """Turn a health check's rows into HealthRows; raise RuleEvalError on missing columns or bad statuses."""
    columns, rows = _columns(rows)
    missing = [c for c in HEALTH_COLUMNS if c not in columns]
    if missing:
        raise RuleEvalError(f"a health check must return component, status, reason; missing {', '.join(missing)}")
    out = []
    for row in rows:
        status = str(row["status"] or "")
        if status not in HEALTH_STATUSES:
            raise RuleEvalError(f"status must be ok, degraded or failing; got {status!r} for {row['component']!r}")
        out.append(HealthRow(str(row["component"]), status, str(row["reason"] or "")))
    return out


def evaluate_rule(
    con: Any, rule: Rule, at: datetime | None, *, watchdog: Watchdog | None = None, budget: float | None = None,
) -> RuleResult:
    """Run ``rule`` at ``at`` and return its checked rows; raise RuleEvalError on any problem."""
    started = time.perf_counter()
    rows = query_rule(con, rule, at, watchdog=watchdog, budget=budget)
    if rule.type == "alert":
        return RuleResult(rule, at, alert_rows(rule, rows), [], time.perf_counter() - started)
    return RuleResult(rule, at, [], health_rows(rule, rows), time.perf_counter() - started)


def alert_labels(rule: Rule, row_labels: Mapping[str, str], row: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Return an alert's label set as Prometheus builds it, plus monitorkit's severity.

    The row's labels, overwritten by the rule's ``labels:`` (templates expanded with the row,
    ``$labels`` and ``$value``); a label whose value is empty is no label; then ``alertname``.
    ``severity`` is the header's unless a column or ``labels:`` gives one.
    """
    labels = dict(row_labels)
    context = {**(row or {}), **row_labels}
    for key, template in rule.labels.items():
        labels[key] = render(template, context, row_labels)
    labels = {k: v for k, v in labels.items() if v != ""}
    labels["alertname"] = rule.name
    labels.setdefault("severity", rule.severity)
    return dict(sorted(labels.items()))
