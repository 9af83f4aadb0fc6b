"""Numbered, recorded schema migrations; applying them twice is a no-op."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import duckdb

# Migration numbers by domain: 1-9 store, 10-19 application metrics, 20-39 alerts and
# health, 40-49 dashboards. Each module registers its own with @migration.
SCHEMA_MODULES = (
    "monitorkit.schema",
    "monitorkit.instrument.schema",
    "monitorkit.rules.schema",
    "monitorkit.dashboard.schema",
)

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
    for module in SCHEMA_MODULES:
        importlib.import_module(module)  # each registers its migrations

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
