"""Open a database for reading from any process, through its owner when one runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from monitorkit.config import load_settings
from monitorkit.errors import QueryError, StoreError
from monitorkit.owner.sidecar import OwnerInfo, read_owner
from monitorkit.store import duck, open_database


class RemoteConnection:
    """A read-only connection to a running owner: every statement runs whole on the owner.

    DuckDB 1.5.5's Quack client cannot scan two remote tables in one query, so each
    statement is shipped with ``quack_query`` and only its result travels back. The
    owner admits SELECT-like statements only (its authorization macro refuses DML, DDL
    and COPY). ``execute``, ``sql``, ``fetchall``, ``df``, ``pl`` and ``to_arrow_table``
    behave like DuckDB's own connection.
    """

    def __init__(self, owner: OwnerInfo) -> None:
        self.owner = owner
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone = 'UTC'")
        duck.load_extensions(self._con, "httpfs", "quack")

    def _remote(self, query: str, params: Sequence[Any] | None) -> str:
        if params:
            query = inline_params(query, params)
        return duck.quack_query_sql(self.owner.port, self.owner.token, query.strip().rstrip(";"))

    def execute(self, query: str, parameters: Sequence[Any] | None = None) -> RemoteConnection:
        """Run ``query`` on the owner; fetch with fetchall(), df(), pl() or fetch_arrow_table()."""
        try:
            self._con.execute(self._remote(query, parameters))
        except duckdb.Error as exc:
            raise _remote_error(exc, self.owner) from exc
        return self

    def sql(self, query: str, params: Sequence[Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Return a relation over ``query``'s result, as ``duckdb.sql`` does."""
        try:
            return self._con.sql(self._remote(query, params))
        except duckdb.Error as exc:
            raise _remote_error(exc, self.owner) from exc

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


def _remote_error(exc: duckdb.Error, owner: OwnerInfo) -> Exception:
    text = str(exc)
    if "Authorization failed" in text:
        return QueryError("the owner only admits read-only statements (SELECT, FROM, WITH, DESCRIBE)")
    if "Could not connect" in text or "Failed to send" in text:
        return StoreError(f"owner process {owner.pid} did not answer on port {owner.port}: {text}")
    return QueryError(text)


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


def connect(path: str | Path | None = None) -> Connection:
    """Return a read-only connection to ``path`` on which the store's SQL works.

    With an owner running, a RemoteConnection whose statements run on the owner; otherwise
    the file opened directly, read-only. ``monitorkit.connect().sql("FROM latest").show()``
    """
    db = Path(path or load_settings().get("store.path"))
    owner = read_owner(db)
    if owner is not None:
        return RemoteConnection(owner)
    if not db.exists():
        raise StoreError(f"no database at {db}; start `monitorkit collect --db {db}` or pass another path")
    return open_database(db, read_only=True)


def owner_of(path: str | Path) -> int | None:
    """Return the PID of the process that owns ``path``, or None."""
    info = read_owner(Path(path))
    return info.pid if info else None
