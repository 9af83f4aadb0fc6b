"""Open a database for reading from any process, through its owner when one runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from monitorkit.config import load_settings
from monitorkit.errors import QueryError, StoreError
from monitorkit.owner import client
from monitorkit.owner.queries import failure, send_query
from monitorkit.owner.readers import QueryRefused
from monitorkit.owner.sidecar import OwnerInfo, read_owner
from monitorkit.store import open_database

QUERY_DEADLINE = 3600.0  # the owner's readers.timeout stops a query first; this only bounds a hung socket


class RemoteConnection:
    """A read-only connection to a running owner: every statement runs whole on the owner.

    Each statement is POSTed to the owner API's query route (``owner/queries.py``), where the
    readers' allowlist checks it, a time limit and the client's own presence bound it (Ctrl-C
    stops it on the owner too) and its result comes back as Arrow, bounded in size. ``execute``,
    ``sql``, ``fetchall``, ``df``, ``pl`` and ``to_arrow_table`` behave like DuckDB's own connection.
    """

    def __init__(self, owner: OwnerInfo) -> None:
        self.owner = owner
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")
        self._last: pa.Table | None = None

    def _run(self, query: str, params: Sequence[Any] | None) -> pa.Table:
        if params:
            query = inline_params(query, params)
        port, token = client.endpoint(self.owner)
        try:
            answer = send_query(port, token, query, QUERY_DEADLINE)
        except OSError as exc:
            raise StoreError(f"owner process {self.owner.pid} did not answer on API port {port}: {exc}; "
                             "`monitorkit status` tells whether it still runs") from None
        if answer.status != 200:
            kind, message = failure(answer)
            raise (QueryRefused if kind == "refused" else QueryError)(message)
        return pa.ipc.open_stream(answer.body).read_all()

    def execute(self, query: str, parameters: Sequence[Any] | None = None) -> RemoteConnection:
        """Run ``query`` on the owner; fetch with fetchall(), df(), pl() or fetch_arrow_table()."""
        table = self._run(query, parameters)
        self._con.register("_mk_result", table)
        self._con.execute("SELECT * FROM _mk_result")
        return self

    def sql(self, query: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Return a relation over ``query``'s result, as ``duckdb.sql`` does."""
        return self._con.from_arrow(self._run(query, params))

    query = sql

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Return every row of the last result."""
        return self._con.fetchall()

    def fetchone(self) -> tuple[Any, ...] | None:
        """Return the next row of the last result."""
        return self._con.fetchone()

    def df(self) -> Any:
        """Return the last result as a pandas DataFrame."""
        return self._con.df()

    def pl(self) -> Any:
        """Return the last result as a polars DataFrame."""
        return self._con.pl()

    def to_arrow_table(self) -> Any:
        """Return the last result as a pyarrow Table."""
        return self._con.to_arrow_table()

    fetch_arrow_table = to_arrow_table

    def close(self) -> None:
        """Close the local end; the owner keeps running."""
        self._con.close()

    def __enter__(self) -> RemoteConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def inline_params(query: str, params: Sequence[Any]) -> str:
    """Replace each ``?`` in ``query`` with a SQL literal of the matching parameter."""
    parts = query.split("?")
    if len(parts) - 1 != len(params):
        raise QueryError(f"query has {len(parts) - 1} '?' placeholders but {len(params)} parameters were given")
    out = [parts[0]]
    for value, rest in zip(params, parts[1:], strict=True):
        out.append(_literal(value))
        out.append(rest)
    return "".join(out)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return f"{kind} '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise QueryError(f"cannot pass a {type(value).__name__} parameter to a remote query; use str, number or datetime")


Connection = duckdb.DuckDBPyConnection | RemoteConnection


def connect(path: str | Path | None = None, *, lake: str | None = None) -> Connection:
    """Return a read-only connection to ``path`` on which the store's SQL works.

    With an owner running, a RemoteConnection whose statements run on the owner; otherwise
    the file opened directly, read-only. ``monitorkit.connect().sql("FROM latest").show()``
    ``lake="postgres:host=... dbname=..."`` ("" for ``[lake] catalog``): the same views over every host.
    """
    if lake is not None:
        from monitorkit.lake.connect import connect_lake  # DuckLake and its extensions only when asked for

        return connect_lake(lake)
    db = Path(path or load_settings().get("store.path"))
    owner = read_owner(db)
    if owner is not None:
        return RemoteConnection(owner)
    if not db.exists():
        raise StoreError(f"no database at {db}; start `monitorkit collect --db {db}` or pass another path")
    return open_database(db, read_only=True)
