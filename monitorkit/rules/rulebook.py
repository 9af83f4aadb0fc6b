"""The loaded rules: read the files, install their views, keep each rule's status and tell which are due.

``RuleBook.reload(con, now)`` re-reads the rule folders when a file changed, installs or
drops views on the write connection and rewrites the ``rules`` table; ``due`` applies
``every:`` and the backoff of errored rules; ``succeeded``/``failed`` record an evaluation;
``status_to_write`` decides which status rows a pass writes.

An ``every:`` rule runs at fixed steps from its last evaluation (last + k × every, the
latest step not in the future) and is evaluated *at* that step, as Prometheus does: a
rule with ``every: 1m`` and ``for: 2m`` fires exactly 120 s after its condition started,
whatever the jitter of the commits that trigger the passes.
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
BACKOFF_BASE = timedelta(seconds=1)  # an errored rule without `every:` waits 1 s, 2 s, 4 s ... before its next run
MAX_BACKOFF = timedelta(minutes=5)


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
        self._dirty: set[str] = set()  # evaluated since their status was last written

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

    def changed(self) -> bool:
        """Tell whether a rule file or folder changed since the last reload (cheap: ``stat`` calls only)."""
        return snapshot(self.config.dirs) != self._mtimes

    def installed(self, name: str) -> bool:
        """Tell whether rule ``name`` has a view to run (a rule whose view failed to install has none)."""
        status = self.status[name]
        return not (status.state == "errored" and status.last_eval is None)

    def due(self, rule: Rule, now: datetime, *, fresh: bool = True) -> datetime | None:
        """Return the time to evaluate ``rule`` at if it is due at ``now``, else None.

        Not due while an errored rule backs off. Never run: ``now``. Without `every:` it is
        ``now`` when ``fresh`` data was committed since the last pass; with `every:` it is the
        latest step last + k × every that is not after ``now``.
        """
        status = self.status[rule.name]
        if status.retry_at is not None and now < status.retry_at:
            return None
        last = status.last_eval
        if last is None:
            return now
        if not rule.every:
            return now if fresh or status.state == "errored" else None
        if now - last < rule.every:
            return None
        return last + rule.every * ((now - last) // rule.every)

    def next_due(self) -> datetime | None:
        """Return when the next `every:` step or end of a backoff comes, if any (rules without `every:` wait for commits)."""
        times = []
        for name, rule in self.rules.items():
            status = self.status[name]
            if not self.installed(name):
                continue
            if status.retry_at is not None:
                times.append(status.retry_at)
            elif rule.every and status.last_eval is not None:
                times.append(status.last_eval + rule.every)
        return min(times, default=None)

    def wants_commits(self) -> bool:
        """Tell whether a commit can make a rule due: one without `every:`, or one never evaluated."""
        return any(not rule.every or self.status[name].last_eval is None for name, rule in self.rules.items())

    def any_due(self, now: datetime, *, fresh: bool = True, every: bool | None = None) -> bool:
        """Tell whether a pass at ``now`` would evaluate at least one rule (``every``: only rules with/without it)."""
        return any(self.installed(name) and (every is None or bool(rule.every) == every)
                   and self.due(rule, now, fresh=fresh) is not None for name, rule in self.rules.items())

    def succeeded(self, name: str, at: datetime, seconds: float, rows: int, *, slow: bool) -> None:
        """Record an evaluation of ``name`` at ``at`` that returned ``rows`` rows in ``seconds``."""
        self.status[name] = RuleStatus("ok", None, at, seconds * 1000, rows, 0, None, slow)

    def failed(self, name: str, at: datetime, error: str, seconds: float, *, slow: bool, now: datetime) -> str:
        """Record a failed evaluation, back the rule off exponentially from ``now`` and return the error as recorded.

        The backoff counts from when the failure is known (``now``), not from ``at``: a slow-lane
        run that used its whole budget must not be due again the moment it ends.
        """
        rule, known = self.rules[name], self.status[name]
        failures = known.failures + 1
        delay = min(MAX_BACKOFF, max(rule.every, BACKOFF_BASE) * 2 ** min(failures - 1, 20))
        text = f"{error} (failed {failures} time{'s' if failures > 1 else ''} in a row; " \
               f"next try in {delay.total_seconds():g} s)"
        if known.state != "errored":
            log.warning("rule %s errored: %s", name, text)
        self.status[name] = RuleStatus("errored", text, at, seconds * 1000, None, failures, max(at, now) + delay,
                                       slow)
        return text

    def status_to_write(self, names: list[str], mono: float) -> list[str]:
        """Return which rules' status to write: ``names`` whose state or error changed at once, and every
        rule evaluated since its last write each STATUS_EVERY s (so `every:` rules, evaluated in other
        passes than the periodic write, keep a fresh ``last_eval`` too)."""
        self._dirty.update(n for n in names if n in self.status)
        changed = [n for n in names if self._status_written.get(n) != self.status[n][:2]]
        if mono >= self._next_status:
            self._next_status = mono + STATUS_EVERY
            changed = sorted(n for n in self._dirty if n in self.status)
        self._dirty.difference_update(changed)
        for n in changed:
            self._status_written[n] = self.status[n][:2]
        return changed
