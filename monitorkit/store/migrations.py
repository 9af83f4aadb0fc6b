"""Numbered, recorded schema migrations in named sets; applying them twice is a no-op.

Each domain owns one ``SchemaSet`` with its own range of numbers (store 1-9, application
metrics 10-19, alerts and health 20-39, dashboards 40-49). The store imports no domain: whoever
assembles a process lists the sets it needs, in order (``monitorkit.owner.schema.SCHEMA``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import duckdb

from monitorkit.store.literals import bind

Migration = Callable[[duckdb.DuckDBPyConnection], None]


class SchemaSet:
    """The migrations of one domain: ``S = SchemaSet("rules", range(20, 40))``, then ``@S.migration(20, "...")``."""

    def __init__(self, name: str, numbers: range) -> None:
        self.name = name
        self.numbers = numbers
        self.steps: list[tuple[int, str, Migration]] = []

    def migration(self, number: int, name: str) -> Callable[[Migration], Migration]:
        """Register ``fn`` as migration ``number``; numbers are unique and inside this set's range."""
        if number not in self.numbers:
            raise ValueError(f"migration {number} is outside {self.name}'s range {self.numbers.start}-{self.numbers.stop - 1}")
        if any(num == number for num, _, _ in self.steps):
            raise ValueError(f"migration {number} is registered twice in {self.name}")

        def wrap(fn: Migration) -> Migration:
            self.steps.append((number, name, fn))
            self.steps.sort(key=lambda item: item[0])
            return fn

        return wrap

    def __repr__(self) -> str:
        return f"SchemaSet({self.name!r}, {len(self.steps)} migrations)"


def applied(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Return the numbers of the migrations recorded in the file."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations ("
        " number INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    return [row[0] for row in con.execute("SELECT number FROM _migrations ORDER BY number").fetchall()]


def migrate(con: duckdb.DuckDBPyConnection, sets: Iterable[SchemaSet]) -> list[int]:
    """Apply every migration of ``sets`` not yet recorded, set by set, each in its own transaction."""
    done = set(applied(con))
    new: list[int] = []
    for schema in sets:
        for number, name, fn in schema.steps:
            if number in done:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                fn(con)
                con.execute(bind("INSERT INTO _migrations (number, name, applied_at) VALUES (?, ?, now())", [number, name]))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            done.add(number)
            new.append(number)
    return new
