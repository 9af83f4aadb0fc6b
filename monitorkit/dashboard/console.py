"""The ad-hoc SQL console: what ``monitorkit.connect()`` may run, read-only, with a time limit.

Every statement is checked here before anything runs: it must be one SELECT-like statement
(SELECT, FROM, WITH, VALUES, DESCRIBE, SUMMARIZE, PIVOT) whose every base table is a monitorkit
table or view (``dashboard_credentials`` never) or a CTE in scope at that point, as DuckDB binds
it, and whose every function is one the owner's reader allowlist admits (``owner/readers.py``) or
one of monitorkit's macros (``metric_range``, ``counter_window``...). Then it runs:

* in the owner process (the served dashboard): on its own cursor of the owner's store;
* through a running owner (a notebook): whole on the owner, as ``monitorkit.connect()`` sends it
  (the owner's reader policy checks it again);
* on a file no owner holds: in a sandbox, a separate in-memory DuckDB with the file attached
  READ_ONLY, ``enable_external_access = false`` and ``lock_configuration = true``.

A query past ``timeout`` seconds is interrupted (on the owner too); at most ``max_rows`` come back.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import duckdb

from monitorkit.dashboard.errors import ConsoleRefusedError, ConsoleTimeoutError
from monitorkit.errors import QueryError
from monitorkit.owner.readers import SCALARS, TABLE_FUNCTIONS, WINDOW_FUNCTIONS, QueryRefused, pivot_as_select
from monitorkit.store import duck

if TYPE_CHECKING:  # loaded by the first result: an idle `monitorkit serve` carries no pyarrow (~70 MiB)
    import pyarrow as pa

ALIAS = "live"
HIDDEN_TABLES = frozenset({"dashboard_credentials"})  # the console never shows the login hash
FILE_FUNCTIONS = ("read_", "parquet_", "glob", "sniff_csv", "iceberg_", "delta_scan", "sqlite_", "postgres_", "mysql_")
SANDBOX_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_community_extensions": "false",
}
READ_ONLY_HINT = "the SQL console is read-only: one SELECT (or FROM, WITH, DESCRIBE, SUMMARIZE, PIVOT) statement at a time"
ONE_SCAN_HINT = (
    "this console reads the owner through a Quack attachment, which scans one monitorkit table or view per query "
    "(a limit of DuckDB 1.5.5's remote scans); the served dashboard's console and notebooks run joins on the owner"
)
Runner = Callable[[str, float, int], "ConsoleResult"]


class ConsoleResult(NamedTuple):
    """A console query's rows (at most ``max_rows``), whether more were cut, and how long it took."""

    table: pa.Table
    truncated: bool
    seconds: float


def monitorkit_macros() -> tuple[frozenset[str], frozenset[str]]:
    """Return the names of monitorkit's table macros and scalar macros, read from the schema that creates them."""
    from monitorkit.rules import schema as rules_schema
    from monitorkit.store import schema as store_schema

    texts = [*store_schema.MACROS, *rules_schema.MACROS, *getattr(rules_schema, "STALE_MACROS", [])]
    found = [re.search(r"MACRO\s+(?:\{schema\})?(\w+)\s*\(.*?\)\s+AS\s+(TABLE)?", text, re.S) for text in texts]
    names = [(m.group(1).lower(), bool(m.group(2))) for m in found if m]
    return frozenset(n for n, table in names if table), frozenset(n for n, table in names if not table)


TABLE_MACROS, SCALAR_MACROS = monitorkit_macros()


def _tree(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    (text,) = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone() or ("{}",)
    return dict(json.loads(text))


def check_statement(con: duckdb.DuckDBPyConnection, sql: str, tables: Iterable[str]) -> None:
    """Raise ConsoleRefusedError unless ``sql`` is one SELECT-like statement over ``tables`` (parsed on ``con``, not run)."""
    if not sql.strip():
        raise ConsoleRefusedError("write a query first, e.g. SELECT * FROM latest LIMIT 10")
    tree = _tree(con, sql)
    if tree.get("error"):
        message = str(tree.get("error_message", ""))
        first = sql.lstrip().split(None, 1)[0].upper()
        if first in ("PIVOT", "UNPIVOT", "PIVOT_WIDER", "PIVOT_LONGER"):
            try:
                tree = _tree(con, pivot_as_select(sql))  # checked as a SELECT made of all the PIVOT's parts
            except QueryRefused as exc:
                raise ConsoleRefusedError(str(exc)) from exc
            if tree.get("error"):
                raise QueryError(f"the query does not parse: {tree.get('error_message', '')}")
        elif "Only SELECT" in message:
            raise ConsoleRefusedError(f"{READ_ONLY_HINT}; writes, DDL, COPY, ATTACH, SET, PRAGMA and INSTALL are refused")
        else:
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
        fn = node.get("function") or {}
        _check_function(fn, table=True)
        _check_node(fn.get("children"), ctes, allowed)  # the arguments (the call itself is checked as a table)
        for key, value in node.items():
            if key != "function":
                _check_node(value, ctes, allowed)
        return
    elif kind == "SHOW_REF" and node.get("query") is None:
        raise ConsoleRefusedError("SHOW is not available in the console; the tables are listed beside it")
    elif node.get("class") in ("FUNCTION", "AGGREGATE", "WINDOW") and "function_name" in node:
        _check_function(node, table=False)
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


def _check_function(fn: dict[str, Any], *, table: bool) -> None:
    name = str(fn.get("function_name", "")).lower()
    if name.startswith(FILE_FUNCTIONS):
        raise ConsoleRefusedError(f"reading files is disabled in the SQL console ({name}())")
    if fn.get("catalog") or fn.get("schema") not in (None, "", "main"):
        raise ConsoleRefusedError(f"{name}() is not available in the SQL console (qualified names are not admitted)")
    if table:
        if name not in TABLE_FUNCTIONS and name not in TABLE_MACROS:
            shown = ", ".join(sorted(TABLE_MACROS | TABLE_FUNCTIONS))
            raise ConsoleRefusedError(f"table function {name}() is not available in the SQL console; allowed: {shown}")
        return
    # The owner's reader allowlist: a function DuckDB adds is refused until admitted there.
    if name in SCALARS or name in SCALAR_MACROS or (fn.get("class") == "WINDOW" and name in WINDOW_FUNCTIONS):
        return
    raise ConsoleRefusedError(f"{name}() is not available in the SQL console (not on the readers' allowlist)")


class SqlConsole:
    """Check and run ad-hoc queries: ``SqlConsole.in_owner(owner, tables).run("FROM latest")``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tables: Iterable[str], *, timeout: float = 5.0,
                 max_rows: int = 5000, runner: Runner | None = None, joins: bool = True) -> None:
        self._con = con  # parses every statement; runs them too when there is no runner (the sandbox)
        self.tables = sorted(set(tables) - HIDDEN_TABLES)
        self.timeout = timeout
        self.max_rows = max_rows
        self.queries = 0
        self.joins = joins
        self._runner = runner

    @classmethod
    def in_owner(cls, store: Any, tables: Iterable[str], **kw: Any) -> SqlConsole:
        """Return a console of the owner process itself: statements run on a fresh cursor of its ``store``."""
        parser = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
        _lock_down(parser)
        console = cls(parser, tables, **kw)
        console._runner = lambda sql, timeout, rows: _run_on(store.cursor(), sql, timeout, rows, use=None)
        return console

    @classmethod
    def for_owner(cls, port: int, token: str, tables: Iterable[str], *, api: tuple[int, str] | None = None,
                  **kw: Any) -> SqlConsole:
        """Return a console of a running owner: with ``api`` (its API port and token) statements run whole on the owner,
        as ``monitorkit.connect()`` sends them; without, in a sandbox reading it through a READ_ONLY Quack attachment."""
        con = duckdb.connect(":memory:", config=SANDBOX_CONFIG)
        try:
            duck.quack_attach(con, port, token, alias=ALIAS, read_only=True)
            _lock_down(con)
        except BaseException:
            con.close()
            raise
        console = cls(con, tables, joins=api is not None, **kw)
        if api is not None:
            console._runner = lambda sql, timeout, rows: _run_remote(api, sql, timeout, rows)
        return console

    @classmethod
    def for_file(cls, path: str | Path, tables: Iterable[str], **kw: Any) -> SqlConsole:
        """Return a console reading a database file no owner holds, attached READ_ONLY in the sandbox."""
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
        if self._runner is not None:
            return self._runner(sql, self.timeout, self.max_rows)
        try:
            return _run_on(self._con.cursor(), sql, self.timeout, self.max_rows, use=ALIAS)
        except QueryError as exc:
            if "Multiple streaming scans" in str(exc):
                raise QueryError(ONE_SCAN_HINT) from exc
            raise

    def close(self) -> None:
        """Close the sandbox connection."""
        self._con.close()


def _run_on(cur: duckdb.DuckDBPyConnection, sql: str, timeout: float, max_rows: int, use: str | None) -> ConsoleResult:
    import pyarrow as pa

    timer = threading.Timer(timeout, cur.interrupt)
    started = time.perf_counter()
    try:
        if use:
            cur.execute(f"USE {use}")
        timer.start()
        reader = cur.execute(sql).to_arrow_reader(1024)
        batches, rows, truncated = [], 0, False
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows > max_rows:
                truncated = True
                break
        table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, max_rows)
    except duckdb.InterruptException as exc:
        raise ConsoleTimeoutError(
            f"the query ran longer than {timeout:g} s and was stopped; "
            "narrow it with WHERE time > now() - INTERVAL 1 HOUR or LIMIT"
        ) from exc
    except duckdb.PermissionException as exc:
        raise ConsoleRefusedError(f"file and network access are disabled in the SQL console: {exc}") from exc
    except duckdb.Error as exc:
        if "read-only" in str(exc).lower() and "Multiple streaming" not in str(exc):
            raise ConsoleRefusedError(READ_ONLY_HINT) from exc
        raise QueryError(str(exc).split("\n\n")[0]) from exc
    finally:
        timer.cancel()
        cur.close()
    return ConsoleResult(table, truncated, time.perf_counter() - started)


def _run_remote(api: tuple[int, str], sql: str, timeout: float, max_rows: int) -> ConsoleResult:
    """Run ``sql`` whole on the owner through its query route; a socket closed at the deadline stops it there too."""
    from monitorkit.owner.queries import failure, send_query

    port, token = api
    started = time.perf_counter()
    try:
        answer = send_query(port, token, sql, timeout)
    except TimeoutError as exc:
        raise ConsoleTimeoutError(f"the query ran longer than {timeout:g} s and was stopped; narrow it with WHERE "
                                  "time > now() - INTERVAL 1 HOUR or LIMIT") from exc
    except OSError as exc:
        raise QueryError(f"the owner did not answer on API port {port}: {exc}") from exc
    if answer.status != 200:
        kind, message = failure(answer)
        if kind == "refused":
            raise ConsoleRefusedError(message)
        if kind == "timeout":
            raise ConsoleTimeoutError(message)
        raise QueryError(message.split("\n\n")[0])
    import pyarrow as pa

    table = pa.ipc.open_stream(answer.body).read_all()
    return ConsoleResult(table.slice(0, max_rows), table.num_rows > max_rows, time.perf_counter() - started)


def _lock_down(con: duckdb.DuckDBPyConnection) -> None:
    # Set once the data is attached: from here on no file, no network, no setting can change.
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
