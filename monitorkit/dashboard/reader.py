"""Where the dashboard reads from: the owner's Store in-process, or any monitorkit.connect() connection.

Every query goes through ``Reader.arrow`` and is counted, so tests can check how often the
store is asked (one poll per tick for every session together).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from monitorkit.errors import QueryError
from monitorkit.store import Store
from monitorkit.store.literals import bind


class Reader(Protocol):
    """Run read-only SQL and count it."""

    queries: int

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Return the result of ``sql`` as an Arrow table."""
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
            return cur.execute(sql, list(params)).to_arrow_table()
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
        with self._lock:
            self.queries += 1
            try:
                return self.con.execute(sql, list(params) or None).to_arrow_table()
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from exc

    def close(self) -> None:
        """Close the connection."""
        self.con.close()


def table_names(reader: Reader) -> set[str]:
    """Return the tables and views of the main schema (one query)."""
    # SHOW TABLES, not information_schema: the owner's reader allowlist admits no system catalog.
    rows = reader.arrow("SHOW TABLES").column(0).to_pylist()
    return {str(r) for r in rows}
