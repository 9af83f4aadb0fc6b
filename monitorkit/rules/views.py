"""Install rules as views (``alert_<name>``, ``health_<name>``) and keep the ``rules`` table current."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import duckdb

from monitorkit.rules.loader import HEALTH_COLUMNS, Rule
from monitorkit.rules.schema import EMPTY_HEALTH
from monitorkit.rules.state import RuleStatus
from monitorkit.store.literals import values


def _short(exc: BaseException) -> str:
    return str(exc).strip().split("\n\nLINE")[0][:2000]


def install(con: duckdb.DuckDBPyConnection, rule: Rule, *, replaces: Rule | None = None) -> str | None:
    """Create or replace the rule's view and check its columns; return an error message, or None."""
    if replaces is not None and replaces.view != rule.view:
        drop(con, replaces)
    try:
        con.execute(f'CREATE OR REPLACE VIEW "{rule.view}" AS {rule.sql}')
        columns = [row[0] for row in con.execute(f'DESCRIBE "{rule.view}"').fetchall()]
    except duckdb.Error as exc:
        drop(con, rule)
        return _short(exc)
    if rule.type == "alert" and "value" not in columns:
        drop(con, rule)
        return f"an alert rule must return a 'value' column; it returns {', '.join(columns)}"
    missing = [c for c in HEALTH_COLUMNS if c not in columns]
    if rule.type == "health" and missing:
        drop(con, rule)
        return f"a health check must return component, status, reason; missing {', '.join(missing)}"
    return None


def drop(con: duckdb.DuckDBPyConnection, rule: Rule) -> None:
    """Drop the rule's view if it exists."""
    con.execute(f'DROP VIEW IF EXISTS "{rule.view}"')


def install_health_union(con: duckdb.DuckDBPyConnection, rules: Iterable[Rule]) -> None:
    """Re-create ``health_components`` as the union of every working health check."""
    parts = [
        f"SELECT '{r.name}' AS check_name, component::VARCHAR AS component, status::VARCHAR AS status, "
        f'reason::VARCHAR AS reason FROM "{r.view}"'
        for r in sorted(rules, key=lambda r: r.name)
    ]
    if not parts:
        con.execute(EMPTY_HEALTH)
        return
    con.execute("CREATE OR REPLACE VIEW health_components AS " + "\nUNION ALL ".join(parts))


_RULE_COLUMNS = (
    "name", "type", "kind", "severity", "file", "state", "error", "last_eval", "eval_ms", "rows", "for_seconds",
    "keep_firing_for_seconds", "summary", "description", "labels", "sql", "loaded_at", "failures", "retry_at", "lane",
    "annotations",
)


def write_rules_table(
    con: duckdb.DuckDBPyConnection, rules: Mapping[str, Rule], broken: Mapping[str, tuple[str, str]],
    status: Mapping[str, RuleStatus], now: datetime,
) -> None:
    """Replace the ``rules`` table with the loaded rules and the files that failed to load."""
    rows: list[tuple[Any, ...]] = []
    for name, rule in rules.items():
        st = status[name]
        rows.append((name, rule.type, rule.kind, rule.severity, rule.file, st.state, st.error, st.last_eval,
                     st.eval_ms, st.rows, rule.for_.total_seconds(), rule.keep_firing_for.total_seconds(),
                     rule.summary, rule.description, dict(rule.labels), rule.sql, now, st.failures,
                     st.retry_at, _lane(st), dict(rule.annotations)))
    for name, (file, error) in broken.items():
        rows.append((name, "unknown", "", "", file, "errored", error, None, None, None, 0.0, 0.0, "", "", {}, "", now,
                     0, None, None, {}))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM rules")
        if rows:
            # Inlined rows, not a registered Arrow table: that would load pyarrow and pandas (store/literals.py).
            types = [_type(c) for c in _RULE_COLUMNS]
            con.execute(f"INSERT INTO rules ({', '.join(_RULE_COLUMNS)}) {values(rows, types)}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _lane(status: RuleStatus) -> str:
    return "slow" if status.slow else "inline"


def _type(column: str) -> str:
    if column in ("last_eval", "loaded_at", "retry_at"):
        return "TIMESTAMPTZ"
    if column in ("eval_ms", "for_seconds", "keep_firing_for_seconds"):
        return "DOUBLE"
    if column in ("rows", "failures"):
        return "INTEGER"
    if column in ("labels", "annotations"):
        return "MAP(VARCHAR, VARCHAR)"
    return "VARCHAR"


def write_status(con: duckdb.DuckDBPyConnection, status: Mapping[str, RuleStatus], names: Iterable[str]) -> None:
    """Update state, error, last_eval, eval_ms, rows, failures, retry_at and lane of rules ``names`` (one statement)."""
    names = [n for n in names if n in status]
    if not names:
        return
    columns = ("name", "state", "error", "last_eval", "eval_ms", "rows", "failures", "retry_at", "lane")
    rows = [(n, status[n].state, status[n].error, status[n].last_eval, status[n].eval_ms, status[n].rows,
             status[n].failures, status[n].retry_at, _lane(status[n])) for n in names]
    con.execute(
        "UPDATE rules SET state = s.state, error = s.error, last_eval = s.last_eval, eval_ms = s.eval_ms, "
        "rows = s.rows, failures = s.failures, retry_at = s.retry_at, lane = s.lane "
        f"FROM ({values(rows, [_type(c) for c in columns])}) s({', '.join(columns)}) WHERE rules.name = s.name")
