"""Backtest a rule over stored history: when would it have fired, and for how long?

The rule's SQL is re-run with ``eval_time()`` fixed to each evaluation time (``start``,
``start + step``, ... up to ``end``) and its rows go through the live engine's alert book
(``for``, ``keep_firing_for``, labels and annotations exactly as live). Nothing is written: any read connection works,
including ``monitorkit.connect()`` while an owner runs.

```python
from monitorkit.rules.backtest import backtest
result = backtest(monitorkit.connect(), "cpu_saturation", start, end, step="1m")
for w in result.windows:
    print(w.labels, w.start, w.end, w.duration)
```
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from monitorkit.config import parse_duration
from monitorkit.errors import ConfigError
from monitorkit.rules.alerts import Instance
from monitorkit.rules.errors import RuleEvalError, UnknownRuleError
from monitorkit.rules.instances import AlertBook
from monitorkit.rules.loader import Rule, load_file, parse_rule
from monitorkit.rules.runner import evaluate_rule
from monitorkit.rules.state import STATES, Event

MAX_EVALUATIONS = 100_000


class FiringWindow(NamedTuple):
    """One period an alert instance fired: from ``start`` until ``end`` (None: still firing at the range end)."""

    labels: dict[str, str]
    start: datetime
    end: datetime | None
    duration: timedelta
    max_value: float | None


class BacktestResult(NamedTuple):
    """Every firing window of a backtest, plus evaluations that failed."""

    rule: str
    start: datetime
    end: datetime
    step: timedelta
    evaluations: int
    windows: list[FiringWindow]
    errors: list[tuple[datetime, str]]


class Replay:
    """Advance one rule's alert instances evaluation by evaluation, through the live engine's AlertBook."""

    def __init__(self, rule: Rule) -> None:
        if rule.type != "alert":
            raise UnknownRuleError(f"{rule.name} is a health check; only alert rules can be replayed")
        self.rule = rule
        self.book = AlertBook()
        self.maxima: dict[int, float] = {}  # alert id -> the highest value of its current firing window

    def step(self, con: Any, at: datetime) -> list[tuple[Instance, str]]:
        """Evaluate at ``at``; return ``(instance, state entered)`` for each transition (RuleEvalError on failure)."""
        events: list[Event] = []
        changed: dict[int, Instance] = {}
        self.book.apply(evaluate_rule(con, self.rule, at), at, events, changed)
        for inst in changed.values():
            value = inst.value
            if inst.state == "firing" and value is not None and not math.isnan(value):
                self.maxima[inst.id] = max(self.maxima.get(inst.id, value), value)
        return [(self.book.instances[(e.rule, e.fingerprint)], e.event) for e in events if e.event in STATES]

    def active(self) -> list[Instance]:
        """Return the instances now pending or firing."""
        return [i for i in self.book.instances.values() if i.state in ("pending", "firing")]

    def window_max(self, inst: Instance) -> float | None:
        """Return the highest value of ``inst``'s current firing window and forget it."""
        return self.maxima.pop(inst.id, None)


def _times(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    at = start
    while at <= end:
        yield at
        at += step


def resolve_rule(con: Any, rule: Rule | str) -> Rule:
    """Return ``rule`` itself, the rule in a ``.sql`` file, or the rule of that name in the ``rules`` table."""
    if isinstance(rule, Rule):
        return rule
    if rule.endswith(".sql") and Path(rule).is_file():
        return load_file(Path(rule))
    rows = con.execute(
        "SELECT name, type, kind, severity, for_seconds, keep_firing_for_seconds, summary, description, sql, file, "
        "labels, annotations FROM rules WHERE name = ? AND sql <> ''", [rule]
    ).fetchall()
    if not rows:
        raise UnknownRuleError(f"no rule named {rule!r} in this database; pass a Rule or a .sql file instead")
    name, rtype, kind, severity, for_s, keep_s, summary, description, sql, file, labels, annotations = rows[0]
    header = (f"-- name: {name}\n-- type: {rtype}\n-- kind: {kind}\n-- severity: {severity}\n"
              f"-- for: {for_s}s\n-- keep_firing_for: {keep_s}s\n")
    parsed = parse_rule(header + sql, file=file)
    return Rule(**{**parsed.__dict__, "summary": summary or "", "description": description or "",
                   "labels": dict(labels or {}), "annotations": dict(annotations or {})})


def backtest(con: Any, rule: Rule | str, start: datetime, end: datetime,
             step: timedelta | float | str = 60) -> BacktestResult:
    """Evaluate ``rule`` (a Rule, a ``.sql`` path or a loaded rule's name) every ``step`` from ``start`` to ``end``.

    Returns every firing window per label set; ``for`` and ``keep_firing_for`` apply as live.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("backtest start and end must be timezone-aware datetimes (e.g. UTC)")
    step_td = parse_duration(step)
    if step_td <= timedelta(0) or end < start:
        raise ConfigError("backtest needs step > 0 and end >= start")
    if (end - start) / step_td > MAX_EVALUATIONS:
        raise ConfigError(f"more than {MAX_EVALUATIONS} evaluations; use a larger step")
    replay = Replay(resolve_rule(con, rule))
    windows: list[FiringWindow] = []
    errors: list[tuple[datetime, str]] = []
    count = 0
    for at in _times(start, end, step_td):
        count += 1
        try:
            transitions = replay.step(con, at)
        except RuleEvalError as exc:
            errors.append((at, str(exc)))
            continue
        for inst, state in transitions:
            if state == "resolved" and inst.phase.fired_at is not None:
                windows.append(FiringWindow(dict(inst.labels), inst.phase.fired_at, at,
                                            at - inst.phase.fired_at, replay.window_max(inst)))
    for inst in replay.book.instances.values():
        if inst.state == "firing" and inst.phase.fired_at is not None:
            windows.append(FiringWindow(dict(inst.labels), inst.phase.fired_at, None,
                                        end - inst.phase.fired_at, replay.window_max(inst)))
    windows.sort(key=lambda w: (w.start, sorted(w.labels.items())))
    return BacktestResult(replay.rule.name, start, end, step_td, count, windows, errors)
