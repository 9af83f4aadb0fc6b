"""Numbered, recorded schema migrations; applying them twice is a no-op."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[tuple[int, str, Migration]] = []


def migration(number: int, name: str) -> Callable[[Migration], Migration]:
    """Register ``fn`` as migration ``number``; numbers must be unique and increasing."""

    def wrap(fn: Migration) -> Migration:
        if any(num == number for num, _, _ in MIGRATIONS):
            raise ValueError(f"migration {number} is registered twice")
        MIGRATIONS.append((number, name, fn))
        MIGRATIONS.sort(key=lambda item: item[0])
        return fn

    return wrap


def applied(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Return the numbers of the migrations recorded in the file."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations ("
        " number INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    return [row[0] for row in con.execute("SELECT number FROM _migrations ORDER BY number").fetchall()]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction; return those applied."""
    import monitorkit.schema  # noqa: F401  registers the migrations

    done = set(applied(con))
    new: list[int] = []
    for number, name, fn in MIGRATIONS:
        if number in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            fn(con)
            con.execute("INSERT INTO _migrations (number, name, applied_at) VALUES (?, ?, now())", [number, name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        new.append(number)
    return new
