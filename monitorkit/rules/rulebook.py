"""The loaded rules: read the files, install their views, keep each rule's status and tell which are due.

``RuleBook.reload(con, now)`` re-reads the rule folders when a file changed, installs or
drops views on the write connection and rewrites the ``rules`` table; ``due`` applies
``every:``; ``status_to_write`` decides which status rows a pass writes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import duckdb

from monitorkit.rules import views
from monitorkit.rules.loader import Rule, RulesConfig, load_rules, snapshot
from monitorkit.rules.state import RuleStatus

log = logging.getLogger(__name__)
STATUS_EVERY = 30.0  # seconds between writes of every rule's last_eval/eval_ms to the `rules` table
# A rule is due this much before its `every:` has fully elapsed: commits come once per
# store.flush_interval with some jitter, and a 15 s rule must not slip to the commit after.
DUE_SLACK = timedelta(seconds=0.5)


class RuleBook:
    """Rules loaded from ``config.dirs``, files that failed (name -> (file, error)) and every rule's status."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self.rules: dict[str, Rule] = {}
        self.broken: dict[str, tuple[str, str]] = {}
        self.status: dict[str, RuleStatus] = {}
        self._mtimes: dict[str, float] = {}
        self._status_written: dict[str, tuple[str, str | None]] = {}
        self._next_status = 0.0

    def reload(self, con: duckdb.DuckDBPyConnection, now: datetime, *, force: bool = False) -> list[Rule] | None:
        """Reload rule files if any changed (or ``force``) and install views; return the removed rules, or None."""
        mtimes = snapshot(self.config.dirs)
        if not force and mtimes == self._mtimes:
            return None
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
        log.info("rules loaded: %d ok, %d errored", sum(1 for s in self.status.values() if s.state == "ok"),
                 sum(1 for s in self.status.values() if s.state != "ok"))
        return removed

    def installed(self, name: str) -> bool:
        """Tell whether rule ``name`` has a view to run (a rule whose view failed to install has none)."""
        status = self.status[name]
        return not (status.state == "errored" and status.last_eval is None)

    def due(self, rule: Rule, now: datetime) -> bool:
        """Tell whether ``rule`` should run at ``now``: no `every:`, never run, or its `every:` (less slack) elapsed."""
        last = self.status[rule.name].last_eval
        if not rule.every or last is None:
            return True
        return now - last >= rule.every - min(DUE_SLACK, rule.every / 10)

    def any_due(self, now: datetime) -> bool:
        """Tell whether a pass at ``now`` would evaluate at least one rule."""
        return any(self.installed(name) and self.due(rule, now) for name, rule in self.rules.items())

    def status_to_write(self, names: list[str], mono: float) -> list[str]:
        """Return which of ``names`` to write: a change of state or error at once, every one each STATUS_EVERY s."""
        changed = [n for n in names if self._status_written.get(n) != self.status[n][:2]]
        if mono >= self._next_status:
            self._next_status = mono + STATUS_EVERY
            changed = names
        for n in changed:
            self._status_written[n] = self.status[n][:2]
        return changed
