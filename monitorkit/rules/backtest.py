"""Backtest a rule over stored history: when would it have fired, and for how long?

The rule's SQL is re-run with ``eval_time()`` fixed to each evaluation time (``start``,
``start + step``, ... up to ``end``) and its rows go through the same state machine as
live alerts (``for``, ``keep_firing_for``). Nothing is written: any read connection works,
including ``monitorkit.connect()`` while an owner runs.

```python
from monitorkit.rules.backtest import backtest
result = backtest(monitorkit.connect(), "cpu_saturation", start, end, step="1m")
for w in result.windows:
    print(w.labels, w.start, w.end, w.duration)
```
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from monitorkit.config import parse_duration
from monitorkit.errors import ConfigError
from monitorkit.rules.errors import RuleEvalError, UnknownRuleError
from monitorkit.rules.loader import Rule, load_file, parse_rule
from monitorkit.rules.runner import alert_labels, evaluate_rule
from monitorkit.rules.state import Phase, Timing, advance, fingerprint

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


@dataclass
class _Track:
    labels: dict[str, str]
    phase: Phase = field(default_factory=Phase)
    value: float | None = None
    window_max: float | None = None


class Replay:
    """Advance one rule's alert instances through the state machine, evaluation by evaluation."""

    def __init__(self, rule: Rule) -> None:
        if rule.type != "alert":
            raise UnknownRuleError(f"{rule.name} is a health check; only alert rules can be replayed")
        self.rule = rule
        self.timing = Timing(rule.for_, rule.keep_firing_for)
        self.tracks: dict[str, _Track] = {}

    def step(self, con: Any, at: datetime) -> list[tuple[_Track, str]]:
        """Evaluate at ``at``; return ``(instance, state entered)`` for each transition (RuleEvalError on failure)."""
        result = evaluate_rule(con, self.rule, at)
        seen: set[str] = set()
        out: list[tuple[_Track, str]] = []
        for row in result.alerts:
            labels = alert_labels(self.rule, row.labels)
            fp = fingerprint(labels)
            if fp in seen:
                continue
            seen.add(fp)
            track = self.tracks.setdefault(fp, _Track(labels))
            track.value = row.value
            track.phase, entered = advance(track.phase, True, at, self.timing)
            out.extend((track, s) for s in entered)
            if track.phase.state == "firing" and row.value is not None:
                track.window_max = row.value if track.window_max is None else max(track.window_max, row.value)
        for fp, track in self.tracks.items():
            if fp not in seen and track.phase.state in ("pending", "firing"):
                track.phase, entered = advance(track.phase, False, at, self.timing)
                out.extend((track, s) for s in entered)
        return out

    def active(self) -> list[_Track]:
        """Return the instances now pending or firing."""
        return [t for t in self.tracks.values() if t.phase.state in ("pending", "firing")]


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
        "labels FROM rules WHERE name = ? AND sql <> ''", [rule]
    ).fetchall()
    if not rows:
        raise UnknownRuleError(f"no rule named {rule!r} in this database; pass a Rule or a .sql file instead")
    name, rtype, kind, severity, for_s, keep_s, summary, description, sql, file, labels = rows[0]
    header = (f"-- name: {name}\n-- type: {rtype}\n-- kind: {kind}\n-- severity: {severity}\n"
              f"-- for: {for_s}s\n-- keep_firing_for: {keep_s}s\n")
    parsed = parse_rule(header + sql, file=file)
    return Rule(**{**parsed.__dict__, "summary": summary or "", "description": description or "",
                   "labels": dict(labels or {})})


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
        for track, state in transitions:
            if state == "resolved" and track.phase.fired_at is not None:
                windows.append(FiringWindow(dict(track.labels), track.phase.fired_at, at,
                                            at - track.phase.fired_at, track.window_max))
                track.window_max = None
    for track in replay.tracks.values():
        if track.phase.state == "firing" and track.phase.fired_at is not None:
            windows.append(FiringWindow(dict(track.labels), track.phase.fired_at, None,
                                        end - track.phase.fired_at, track.window_max))
    windows.sort(key=lambda w: (w.start, sorted(w.labels.items())))
    return BacktestResult(replay.rule.name, start, end, step_td, count, windows, errors)
