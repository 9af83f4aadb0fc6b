"""The ad-hoc SQL console: read-only, no file or network access, and a time limit.

Each query runs in a sandbox: a separate in-memory DuckDB that reaches the data through a
READ_ONLY Quack attachment to the owner (or a READ_ONLY attachment of the file when no
owner runs), with ``enable_external_access = false`` and ``lock_configuration = true`` set
once attached. Before it runs, the statement is parsed (``json_serialize_sql``) and refused
unless it is one SELECT over monitorkit's own tables and views and a few harmless table
functions: the attachment's options (its token included) are visible to the sandbox, so
catalog functions and the quack_* functions are refused too. A timer interrupts it past
``timeout`` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from monitorkit.dashboard.errors import ConsoleRefusedError, ConsoleTimeoutError
from monitorkit.errors import QueryError
from monitorkit.store import duck

ALIAS = "live"
HIDDEN_TABLES = frozenset({"dashboard_credentials"})  # the console never shows the login hash
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
FILE_FUNCTIONS = ("read_", "parquet_", "glob", "sniff_csv", "iceberg_", "delta_scan", "sqlite_", "postgres_", "mysql_")
REFUSED_PREFIXES = ("quack", "duckdb_", "pragma_", "getenv", "current_setting", "which_secret")
SANDBOX_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_community_extensions": "false",
}
READ_ONLY_HINT = "the SQL console is read-only: one SELECT (or FROM, WITH, DESCRIBE, SUMMARIZE) statement at a time"
ONE_SCAN_HINT = (
    "the console reads one monitorkit table or view per query (a limit of DuckDB 1.5.5's remote scans); "
    "use the views that already join series: samples, latest, counter_rates, rollup_1m, rollup_1h"
)


class ConsoleResult(NamedTuple):
    """A console query's rows (at most ``max_rows``), whether more were cut, and how long it took."""

    table: pa.Table
    truncated: bool
    seconds: float


def check_statement(con: duckdb.DuckDBPyConnection, sql: str, tables: Iterable[str]) -> None:
    """Raise ConsoleRefusedError unless ``sql`` is one SELECT over ``tables`` (parsed on ``con``, not run)."""
    if not sql.strip():
        raise ConsoleRefusedError("write a query first, e.g. SELECT * FROM latest LIMIT 10")
    (text,) = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone() or ("{}",)
    tree = json.loads(text)
    if tree.get("error"):
        message = str(tree.get("error_message", ""))
        if "Only SELECT" in message:
            raise ConsoleRefusedError(f"{READ_ONLY_HINT}; writes, DDL, COPY, ATTACH, SET, PRAGMA and INSTALL are refused")
        raise QueryError(f"the query does not parse: {message}")
    if len(tree.get("statements", [])) != 1:
        raise ConsoleRefusedError(READ_ONLY_HINT)
    _check_node(tree["statements"], frozenset(), frozenset(t.lower() for t in tables))


def _check_node(node: Any, ctes: frozenset[str], allowed: frozenset[str]) -> None:
    # ``ctes`` holds the CTE names in scope here, as DuckDB binds them: a WITH's names are seen by
    # its own query and what it nests, each CTE body only sees the CTEs before it (and a recursive
    # CTE's recursive side itself); everywhere else the same name is the real table.
    if isinstance(node, list):
        for item in node:
            _check_node(item, ctes, allowed)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict):
        for item in cte_map.get("map", []):
            _check_node(item.get("value"), ctes, allowed)
            ctes = ctes | {str(item.get("key", "")).lower()}
    kind = node.get("type")
    if kind == "BASE_TABLE":
        _check_table(node, allowed, ctes)
    elif kind == "TABLE_FUNCTION":
        _check_function(str(node.get("function", {}).get("function_name", "")).lower(), table=True)
    elif kind == "SHOW_REF" and node.get("query") is None:
        raise ConsoleRefusedError("SHOW is not available in the console; the tables are listed beside it")
    elif node.get("class") == "FUNCTION":
        _check_function(str(node.get("function_name", "")).lower(), table=False)
    for key, value in node.items():
        if key == "cte_map":
            continue
        if kind == "RECURSIVE_CTE_NODE" and key == "right":
            _check_node(value, ctes | {str(node.get("cte_name", "")).lower()}, allowed)
        else:
            _check_node(value, ctes, allowed)


def _check_table(node: dict[str, Any], allowed: frozenset[str], ctes: frozenset[str]) -> None:
    name = str(node.get("table_name", ""))
    catalog, schema = str(node.get("catalog_name", "")), str(node.get("schema_name", ""))
    if any(ch in name for ch in "/\\:") or "." in name:
        raise ConsoleRefusedError(f"reading files is disabled in the SQL console ({name!r})")
    if not catalog and not schema and name.lower() in ctes:
        return  # a CTE of an enclosing query
    if catalog.lower() not in ("", ALIAS) or schema.lower() not in ("", "main"):
        raise ConsoleRefusedError(f"the console reads monitorkit's own tables only, not {catalog or schema}.{name}")
    if name.lower() not in allowed or name.lower() in HIDDEN_TABLES:
        known = ", ".join(sorted(allowed - HIDDEN_TABLES)[:12])
        raise ConsoleRefusedError(f"{name!r} is not a monitorkit table or view; the console reads: {known}, ...")


def _check_function(name: str, *, table: bool) -> None:
    if name.startswith(FILE_FUNCTIONS):
        raise ConsoleRefusedError(f"reading files is disabled in the SQL console ({name}())")
    if name.startswith(REFUSED_PREFIXES):
        raise ConsoleRefusedError(f"{name}() is not available in the SQL console")
    if table and name not in ALLOWED_TABLE_FUNCTIONS:
        raise ConsoleRefusedError(
            f"table function {name}() is not available in the SQL console; allowed: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}"
        )


class SqlConsole:
    """Run ad-hoc queries safely: ``SqlConsole.for_owner(port, token, tables).run("FROM latest")``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tables: Iterable[str], *, timeout: float = 5.0,
                 max_rows: int = 5000) -> None:
        self._con = con
        self.tables = sorted(set(tables))
        self.timeout = timeout
        self.max_rows = max_rows
        self.queries = 0

    @classmethod
    def for_owner(cls, port: int, token: str, tables: Iterable[str], **kw: Any) -> SqlConsole:
        """Return a console reading a running owner through a read-only Quack attachment."""
        con = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
        try:
            duck.quack_attach(con, port, token, alias=ALIAS, read_only=True)
            _lock_down(con)
        except BaseException:
            con.close()
            raise
        return cls(con, tables, **kw)

    @classmethod
    def for_file(cls, path: str | Path, tables: Iterable[str], **kw: Any) -> SqlConsole:
        """Return a console reading a database file no owner holds, attached READ_ONLY."""
        con = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
        try:
            con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {ALIAS} (READ_ONLY)")
            con.execute(f"USE {ALIAS}")
            _lock_down(con)
        except BaseException:
            con.close()
            raise
        return cls(con, tables, **kw)

    def check(self, sql: str) -> None:
        """Raise ConsoleRefusedError if ``sql`` would not be run."""
        cur = self._con.cursor()
        try:
            check_statement(cur, sql, self.tables)
        finally:
            cur.close()

    def run(self, sql: str) -> ConsoleResult:
        """Check and run ``sql``; return up to ``max_rows`` rows or raise a QueryError saying why not."""
        self.check(sql)
        self.queries += 1
        cur = self._con.cursor()
        timer = threading.Timer(self.timeout, cur.interrupt)
        started = time.perf_counter()
        try:
            cur.execute(f"USE {ALIAS}")
            timer.start()
            reader = cur.execute(sql).to_arrow_reader(1024)
            batches, rows, truncated = [], 0, False
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > self.max_rows:
                    truncated = True
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, self.max_rows)
        except duckdb.InterruptException as exc:
            raise ConsoleTimeoutError(
                f"the query ran longer than {self.timeout:g} s and was stopped; "
                "narrow it with WHERE time > now() - INTERVAL 1 HOUR or LIMIT"
            ) from exc
        except duckdb.PermissionException as exc:
            raise ConsoleRefusedError(f"file and network access are disabled in the SQL console: {exc}") from exc
        except duckdb.Error as exc:
            if "Multiple streaming scans" in str(exc):
                raise QueryError(ONE_SCAN_HINT) from exc
            if "read-only" in str(exc):
                raise ConsoleRefusedError(READ_ONLY_HINT) from exc
            raise QueryError(str(exc).split("\n\n")[0]) from exc
        finally:
            timer.cancel()
            cur.close()
        return ConsoleResult(table, truncated, time.perf_counter() - started)

    def close(self) -> None:
        """Close the sandbox connection."""
        self._con.close()


def _lock_down(con: duckdb.DuckDBPyConnection) -> None:
    # Set once the data is attached: from here on no file, no network, no setting can change.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
