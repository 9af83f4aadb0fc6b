"""The metric names a query or a rule spells out, and which of them nothing knows: a hint, never a refusal.

A misspelled metric (``cpu_percnt``) makes a query return no rows and a rule never fire, without
an error. ``unknown_metrics(con, sql)`` finds the names written as literals (``name = '...'``,
``name IN (...)``, ``name LIKE '...'`` over a metric relation, and the first argument of
``metric_range``, ``gauge_window`` and ``counter_window``) and returns those that neither the
metric catalog nor the ``series`` table holds, each with the closest known names.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import duckdb

from monitorkit.errors import MonitorkitError
from monitorkit.store.literals import bind

# Relations whose ``name`` column is a metric name.
METRIC_RELATIONS = frozenset({"series", "samples", "latest", "counter_rates", "rollup_1m", "rollup_1h"})
# Table macros whose first argument names a metric: exactly, or as a LIKE pattern.
EXACT_MACROS = frozenset({"metric_range"})
PATTERN_MACROS = frozenset({"gauge_window", "counter_window"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class NamedMetric(NamedTuple):
    """A metric name (or LIKE pattern) written as a literal in a query."""

    name: str
    pattern: bool = False


class UnknownMetric(NamedTuple):
    """A metric a query names that no catalog entry nor stored series has, with the closest known name."""

    name: str
    pattern: bool
    suggestions: tuple[str, ...]

    @property
    def message(self) -> str:
        """Return the warning: ``no metric 'cpu_percnt'; did you mean cpu_percent?``."""
        # an underscore is a LIKE wildcard too, but in a metric name it almost always means itself
        what = f"no metric matches {self.name!r}" if self.pattern and "%" in self.name else f"no metric {self.name!r}"
        if self.suggestions:
            return f"{what}; did you mean {self.suggestions[0]}?"
        return f"{what}; `monitorkit metrics` lists the collected ones, `SELECT DISTINCT name FROM series` the stored"


def named_metrics(sql: str) -> list[NamedMetric]:
    """Return the metric names ``sql`` spells out as literals, in order, once each (none if it does not parse)."""
    with duckdb.connect() as con:
        text = con.execute(bind("SELECT json_serialize_sql(?::VARCHAR)", [sql])).fetchone()
    tree = json.loads(text[0]) if text else {}
    if tree.get("error", True):
        return []
    found: dict[NamedMetric, None] = {}
    for statement in tree.get("statements", []):
        over_metrics = any(node.get("type") == "BASE_TABLE" and str(node.get("table_name", "")).lower()
                           in METRIC_RELATIONS for node in _nodes(statement))
        for node in _nodes(statement):
            for named in _literal_names(node, over_metrics):
                found.setdefault(named)
    return list(found)


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _string(node: Any) -> str | None:
    if isinstance(node, dict) and node.get("class") == "CONSTANT":
        value = node.get("value") or {}
        if (value.get("type") or {}).get("id") == "VARCHAR" and not value.get("is_null"):
            return str(value.get("value"))
    return None


def _is_name(node: Any) -> bool:
    return isinstance(node, dict) and node.get("class") == "COLUMN_REF" and \
        str((node.get("column_names") or [""])[-1]).lower() == "name"


def _literal_names(node: dict[str, Any], over_metrics: bool) -> Iterator[NamedMetric]:
    cls, kind = node.get("class"), node.get("type")
    if cls == "FUNCTION" and node.get("children"):
        fn = str(node.get("function_name", "")).lower()
        first = _string(node["children"][0])
        if fn in EXACT_MACROS | PATTERN_MACROS and first is not None:
            yield NamedMetric(first, fn in PATTERN_MACROS)
        elif fn in ("~~", "like_escape") and over_metrics and len(node["children"]) >= 2 and \
                _is_name(node["children"][0]) and (pattern := _string(node["children"][1])) is not None:
            yield NamedMetric(pattern, True)
    if not over_metrics:
        return
    if cls == "COMPARISON" and kind == "COMPARE_EQUAL":
        left, right = node.get("left"), node.get("right")
        for column, constant in ((left, right), (right, left)):
            if _is_name(column) and (value := _string(constant)) is not None:
                yield NamedMetric(value)
    elif cls == "OPERATOR" and kind == "COMPARE_IN" and _is_name((node.get("children") or [None])[0]):
        for child in node["children"][1:]:
            if (value := _string(child)) is not None:
                yield NamedMetric(value)


def catalog_metrics() -> set[str]:
    """Return every metric name the catalog describes, histograms with their ``_bucket``/``_sum``/``_count``."""
    from monitorkit.catalog import all_metrics

    names: set[str] = set()
    for info in all_metrics():
        names.add(info.name)
        if info.kind == "histogram":
            names.update(info.name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


def stored_metrics(con: Any | None) -> set[str]:
    """Return the metric names ``con``'s ``series`` table holds (none without a connection or that table)."""
    if con is None:
        return set()
    try:
        return {str(row[0]) for row in con.execute("SELECT DISTINCT name FROM series").fetchall()}
    except (duckdb.Error, MonitorkitError):
        return set()  # a hint only: without a readable series table the catalog alone decides


def known_metrics(con: Any | None) -> set[str]:
    """Return every metric name the catalog describes or ``con``'s ``series`` holds."""
    return catalog_metrics() | stored_metrics(con)


def _like(pattern: str) -> re.Pattern[str]:
    parts = (".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL)


def check_names(named: Iterable[NamedMetric], known: set[str]) -> list[UnknownMetric]:
    """Return the entries of ``named`` that match no name in ``known``, each with the closest known name if any."""
    out = []
    for item in named:
        if item.pattern:
            regex = _like(item.name)
            if any(regex.fullmatch(name) for name in known):
                continue
            close = difflib.get_close_matches(item.name.replace("%", ""), sorted(known), n=1, cutoff=0.6)
        else:
            if item.name in known:
                continue
            close = difflib.get_close_matches(item.name, sorted(known), n=1, cutoff=0.6)
        out.append(UnknownMetric(item.name, item.pattern, tuple(close)))
    return out


def unknown_metrics(con: Any, sql: str, known: set[str] | None = None) -> list[UnknownMetric]:
    """Return the metrics ``sql`` names that neither the catalog nor ``con``'s series table knows."""
    named = named_metrics(sql)
    if not named:
        return []
    if known is None:
        stored = stored_metrics(con)
        if not check_names(named, stored):
            return []  # every name is stored: the catalog (and the collectors it imports) is not needed
        known = stored | catalog_metrics()
    return check_names(named, known)
