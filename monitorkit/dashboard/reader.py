"""Where the dashboard reads from: the owner's Store in-process, or any monitorkit.connect() connection.

Every query goes through ``Reader.arrow`` or ``Reader.rows`` and is counted, so tests can check
how often the store is asked (one poll per tick for every session together). The feed's per-tick
poll uses ``rows`` (plain tuples): an idle `monitorkit serve` then never loads pyarrow, which is
about 70 MiB of RSS once a table has been converted (``import pyarrow`` 25, its first table 48).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from monitorkit.errors import QueryError
from monitorkit.store import Store
from monitorkit.store.literals import bind

if TYPE_CHECKING:
    import pyarrow as pa


class Reader(Protocol):
    """Run read-only SQL and count it."""

    queries: int

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Return the result of ``sql`` as an Arrow table."""
        ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Return the result of ``sql`` as tuples (no pyarrow)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class StoreReader:
    """Read the owner's Store on a fresh cursor per query (any thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queries = 0
        self._count = threading.Lock()

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Return the result of ``sql`` as an Arrow table."""
        return self._run(sql, params, lambda result: result.to_arrow_table())

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Return the result of ``sql`` as tuples (no pyarrow)."""
        return self._run(sql, params, lambda result: result.fetchall())

    def _run(self, sql: str, params: Sequence[Any], fetch: Callable[[Any], Any]) -> Any:
        with self._count:
            self.queries += 1
        try:
            # Inlined values: bound ones make DuckDB import pandas (store/literals.py), which an idle
            # `monitorkit serve` then carries (~60 MiB); a value bind() cannot render is bound as before.
            sql, params = bind(sql, params), ()
        except TypeError:
            pass
        cur = self.store.cursor()
        try:
            return fetch(cur.execute(sql, list(params)))
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        finally:
            cur.close()

    def close(self) -> None:
        """Nothing to release: the Store belongs to its owner."""


class ConnectionReader:
    """Read through a connection from ``monitorkit.connect()`` (remote or read-only), one query at a time."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.queries = 0
        self._lock = threading.Lock()

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Return the result of ``sql`` as an Arrow table."""
        return self._run(sql, params, lambda result: result.to_arrow_table())

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Return the result of ``sql`` as tuples."""
        return self._run(sql, params, lambda result: list(result.fetchall()))

    def _run(self, sql: str, params: Sequence[Any], fetch: Callable[[Any], Any]) -> Any:
        with self._lock:
            self.queries += 1
            try:
                return fetch(self.con.execute(sql, list(params) or None))
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from exc

    def close(self) -> None:
        """Close the connection."""
        self.con.close()


def table_names(reader: Reader) -> set[str]:
    """Return the tables and views of the main schema (one query)."""
    # SHOW TABLES, not information_schema: the owner's reader allowlist admits no system catalog.
    return {str(r[0]) for r in reader.rows("SHOW TABLES")}
