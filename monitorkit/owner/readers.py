"""What a reader may run on the owner: an allowlist checked on DuckDB's own parse tree.

Readers (Quack clients holding the sidecar token, ``monitorkit.connect()``, ``monitorkit sql``)
may run any single SELECT-like statement (joins, CTEs, subqueries, window functions, PIVOT,
DESCRIBE, the table macros such as ``metric_range``) over monitorkit's own relations, and
nothing else: no file, network, extension, setting, secret or server function, no system
catalog, no credential table. Every relation and function in the tree must be admitted;
a function a future DuckDB adds is refused until it is listed in ``reader_functions.txt``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

import duckdb

from monitorkit.errors import QueryError
from monitorkit.store import duck
from monitorkit.store.literals import bind

# Never readable, whatever the query: the dashboard's login secret.
DENIED_RELATIONS = frozenset({"dashboard_credentials"})
WINDOW_FUNCTIONS = frozenset({
    "row_number", "rank", "dense_rank", "rank_dense", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value", "first", "last", "fill",
})
SHOW_NAMES = frozenset({"tables", "all_tables"})
RELATIONS_TTL = 5.0  # seconds a list of the owner's relations is trusted before a miss re-reads it


class QueryRefused(QueryError):
    """A reader's statement reaches something readers may not (its message names what)."""


def _load_functions() -> tuple[frozenset[str], frozenset[str]]:
    text = resources.files("monitorkit.owner").joinpath("reader_functions.txt").read_text()
    names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    tables = frozenset(n.removeprefix("table:") for n in names if n.startswith("table:"))
    return frozenset(n for n in names if not n.startswith("table:")), tables


SCALARS, TABLE_FUNCTIONS = _load_functions()


class ReaderPolicy:
    """Check statements against the relations of one database: ``policy.check("FROM latest")``.

    ``relations`` returns the names readers may see (tables, views, table macros and scalar
    macros of the database's main schema); it is re-read at most every RELATIONS_TTL seconds,
    and at once when a statement names one not yet known (a rule view installed since).
    """

    def __init__(self, relations: Callable[[], tuple[set[str], set[str], set[str]]], catalog: str = "") -> None:
        self._relations = relations
        self.catalog = catalog
        self._lock = threading.Lock()
        self._parser = duckdb.connect()  # parses only: an empty in-memory database
        self._known: tuple[set[str], set[str], set[str]] = (set(), set(), set())
        self._read_at = -1e18

    def _names(self, refresh: bool = False) -> tuple[set[str], set[str], set[str]]:
        if refresh or time.monotonic() - self._read_at > RELATIONS_TTL:
            self._known = self._relations()
            self._read_at = time.monotonic()
        return self._known

    def tree(self, sql: str) -> list[dict[str, Any]]:
        """Return the parsed statements of ``sql``, or raise QueryError with DuckDB's own parser message."""
        with self._lock:
            raw = self._parser.execute(bind("SELECT json_serialize_sql(?::VARCHAR)", [sql])).fetchone()
        parsed: dict[str, Any] = json.loads(raw[0]) if raw else {"error": True, "error_message": "empty"}
        if not parsed.get("error"):
            return list(parsed["statements"])
        message = str(parsed.get("error_message", ""))
        if parsed.get("error_type") == "parser":
            raise QueryError(message)
        first = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if first in ("PIVOT", "UNPIVOT", "PIVOT_WIDER", "PIVOT_LONGER"):
            # DuckDB cannot serialise the simplified PIVOT statement: check a SELECT made of all its parts.
            return self.tree(pivot_as_select(sql))
        raise QueryRefused(
            f"readers may run SELECT-like statements only (SELECT, FROM, WITH, VALUES, DESCRIBE, PIVOT); "
            f"{first or 'this statement'} is refused: the owner keeps the file read-only for readers"
        )

    def check(self, sql: str) -> None:
        """Raise QueryError for a bad statement, QueryRefused for one that reaches what readers may not."""
        statements = self.tree(sql)
        if len(statements) != 1:
            raise QueryRefused(f"send one statement at a time ({len(statements)} given)")
        _Walk(self).node(statements[0]["node"], frozenset())

    def admit(self, sid: str, query: str) -> bool:
        """The Quack authorization callback: True when ``query`` passes ``check`` (or is the Quack client's own catalog read)."""
        if " ".join(query.split()) in duck.QUACK_CLIENT_CATALOG_QUERIES:
            return True
        try:
            self.check(query)
        except QueryRefused:
            return False
        except QueryError:
            return True  # a syntax error: DuckDB reports it to the client with its position
        return True


_PIVOT_WORDS = ("ON", "USING", "GROUP", "ORDER", "LIMIT", "INTO")


def pivot_as_select(sql: str) -> str:
    """Return ``SELECT <on>, <using> FROM <dataset> [GROUP BY ...]``: every part of a PIVOT, checkable.

    Nothing of the statement is dropped, so each relation and function in it is in the SELECT;
    a statement this split gets wrong does not parse, and is refused.
    """
    text = sql.strip().rstrip(";")
    parts: dict[str, str] = {}
    depth, start, key, i, quote = 0, 0, "DATASET", 0, ""
    words = text.split(None, 1)
    if len(words) < 2:
        raise QueryRefused("an empty PIVOT statement")
    i = start = len(text) - len(words[1])
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            word = next((w for w in _PIVOT_WORDS if text[i:i + len(w)].upper() == w
                         and (i + len(w) == len(text) or not (text[i + len(w)].isalnum() or text[i + len(w)] == "_"))), None)
            if word is not None:
                parts[key] = parts.get(key, "") + " " + text[start:i]
                key, start = word, i + len(word)
                i = start
                continue
        i += 1
    parts[key] = parts.get(key, "") + " " + text[start:]
    if set(parts) - {"DATASET", "ON", "USING", "GROUP", "ORDER", "LIMIT"} or "DATASET" not in parts:
        raise QueryRefused("readers may PIVOT with ON, USING, GROUP BY, ORDER BY and LIMIT only")
    columns = ", ".join(parts[k] for k in ("ON", "USING") if k in parts) or "*"
    tail = " ".join(f"{k}{parts[k]}" for k in ("GROUP", "ORDER", "LIMIT") if k in parts)
    return f"SELECT {columns} FROM {parts['DATASET']} {tail}"


class _Walk:
    """One pass over a parse tree, carrying the CTE names in scope."""

    def __init__(self, policy: ReaderPolicy) -> None:
        self.policy = policy

    def node(self, value: Any, ctes: frozenset[str]) -> None:
        if isinstance(value, list):
            for item in value:
                self.node(item, ctes)
            return
        if not isinstance(value, dict):
            return
        cte_map = value.get("cte_map")
        if isinstance(cte_map, dict) and cte_map.get("map"):
            names = frozenset(str(entry["key"]).lower() for entry in cte_map["map"])
            ctes = ctes | names  # visible in this node's subtree only (and in the CTEs themselves: recursive)
        kind = value.get("type")
        if kind == "BASE_TABLE":
            self.relation(value, ctes)
        elif kind == "TABLE_FUNCTION":
            self.table_function(value.get("function") or {})
            self.node((value.get("function") or {}).get("children"), ctes)
            return
        elif kind == "SHOW_REF" and value.get("query") is None:
            self.show(value)
        elif value.get("class") in ("FUNCTION", "AGGREGATE", "WINDOW") and "function_name" in value:
            self.function(value)
        for key, child in value.items():
            if key != "function" or kind != "TABLE_FUNCTION":
                self.node(child, ctes)

    def relation(self, ref: dict[str, Any], ctes: frozenset[str]) -> None:
        name = str(ref.get("table_name", ""))
        catalog, schema = str(ref.get("catalog_name", "")), str(ref.get("schema_name", ""))
        qualified = ".".join(p for p in (catalog, schema, name) if p)
        if not catalog and not schema and name.lower() in ctes:
            return
        if catalog not in ("", self.policy.catalog) or schema not in ("", "main"):
            raise QueryRefused(f"readers may read monitorkit's own relations only; {qualified} is refused")
        self._admit_name(name, qualified, kind="relation")

    def _admit_name(self, name: str, shown: str, *, kind: str) -> None:
        low = name.lower()
        if low in DENIED_RELATIONS:
            raise QueryRefused(f"{shown} is internal to the owner and never readable")
        tables = self.policy._names()[0]
        if low not in tables and low not in self.policy._names(refresh=True)[0]:
            raise QueryRefused(
                f"no relation {shown!r} readers may read; run `SHOW TABLES` for monitorkit's tables and views "
                "(files, URLs and system catalogs are refused)"
            )

    def table_function(self, fn: dict[str, Any]) -> None:
        name = str(fn.get("function_name", "")).lower()
        if fn.get("catalog") or fn.get("schema") not in (None, "", "main"):
            raise QueryRefused(f"table function {name} is refused for readers")
        if name in TABLE_FUNCTIONS:
            return
        macros = self.policy._names()[1]
        if name not in macros and name not in self.policy._names(refresh=True)[1]:
            raise QueryRefused(
                f"table function {name}() is refused for readers: they may call monitorkit's table macros "
                f"(such as metric_range) and {', '.join(sorted(TABLE_FUNCTIONS))}"
            )

    def function(self, fn: dict[str, Any]) -> None:
        name = str(fn.get("function_name", "")).lower()
        if fn.get("catalog") or fn.get("schema") not in (None, "", "main"):
            raise QueryRefused(f"function {name} is refused for readers (qualified names are not admitted)")
        if name in SCALARS or (fn.get("class") == "WINDOW" and name in WINDOW_FUNCTIONS):
            return
        if name in self.policy._names()[2] or name in self.policy._names(refresh=True)[2]:
            return
        raise QueryRefused(f"function {name}() is not admitted for readers (it may reach files, settings or the server)")

    def show(self, ref: dict[str, Any]) -> None:
        name = str(ref.get("table_name", "")).strip('"')
        if name.lower() not in SHOW_NAMES:
            self._admit_name(name, name, kind="relation")


def database_relations(cursor: Callable[[], duckdb.DuckDBPyConnection], catalog: str,
                       hidden: Iterable[str] = DENIED_RELATIONS) -> Callable[[], tuple[set[str], set[str], set[str]]]:
    """Return a reader of ``catalog``'s main-schema tables/views, table macros and scalar macros."""
    hide = {h.lower() for h in hidden}

    def read() -> tuple[set[str], set[str], set[str]]:
        cur = cursor()
        try:
            rel = cur.execute(bind(
                "SELECT lower(table_name) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
                "UNION SELECT lower(view_name) FROM duckdb_views() WHERE database_name = ? AND schema_name = 'main' "
                "AND NOT internal", [catalog, catalog])).fetchall()
            fns = cur.execute(bind(
                "SELECT DISTINCT lower(function_name), function_type FROM duckdb_functions() "
                "WHERE database_name = ? AND schema_name = 'main' AND function_type IN ('table_macro', 'macro')",
                [catalog])).fetchall()
        finally:
            cur.close()
        tables = {r[0] for r in rel} - hide
        return (tables, {n for n, t in fns if t == "table_macro"}, {n for n, t in fns if t == "macro"} - {"monitorkit_read_only"})

    return read
