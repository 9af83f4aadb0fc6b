"""Check rule files: parse every rule, dry-run it against a database when there is one, flag unknown metrics.

``check_rules([Path("rules")], Path("data/monitorkit.duckdb"))`` is what ``monitorkit rules check`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from monitorkit.rules.errors import RuleEvalError
from monitorkit.rules.loader import Rule, load_rules
from monitorkit.rules.names import UnknownMetric, check_names, known_metrics, named_metrics
from monitorkit.rules.runner import evaluate_rule


class RuleCheck(NamedTuple):
    """The outcome for one rule: ``parsed`` (no database to run on), ``ok`` or ``errored``."""

    name: str
    type: str
    state: str
    rows: int | None = None
    ms: float | None = None
    error: str | None = None
    unknown: tuple[UnknownMetric, ...] = ()  # metrics the rule names that nothing knows (a warning)


class CheckReport(NamedTuple):
    """Every rule's check, whether the rules ran against ``database``, and the count of errored ones."""

    checks: list[RuleCheck]
    database: Path
    ran: bool

    @property
    def errored(self) -> int:
        """Return how many rules failed to parse or to run."""
        return sum(1 for c in self.checks if c.state == "errored")


def check_rules(dirs: Sequence[Path], database: Path, *, now: datetime | None = None) -> CheckReport:
    """Parse the rules of ``dirs`` and run each once at ``now`` on ``database`` (through its owner when one runs)."""
    from monitorkit.owner.connect import connect
    from monitorkit.owner.sidecar import read_owner
    from monitorkit.samples import utcnow

    loaded = load_rules(dirs)
    checks = [RuleCheck(name, "?", "errored", error=error) for name, (_file, error) in sorted(loaded.broken.items())]
    con = connect(database) if database.exists() or read_owner(database) is not None else None
    try:
        known = known_metrics(con)
        at = now or utcnow()
        checks += [_check(con, rule, at, known) for _name, rule in sorted(loaded.rules.items())]
    finally:
        if con is not None:
            con.close()
    return CheckReport(checks, database, con is not None)


def _check(con: Any, rule: Rule, at: datetime, known: set[str]) -> RuleCheck:
    unknown = tuple(check_names(named_metrics(rule.sql), known))
    if con is None:
        return RuleCheck(rule.name, rule.type, "parsed", unknown=unknown)
    try:
        result = evaluate_rule(con, rule, at)
    except RuleEvalError as exc:
        return RuleCheck(rule.name, rule.type, "errored", error=str(exc), unknown=unknown)
    return RuleCheck(rule.name, rule.type, "ok", len(result.alerts) + len(result.health), result.seconds * 1000,
                     unknown=unknown)
