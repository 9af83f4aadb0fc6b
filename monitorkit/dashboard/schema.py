"""Migrations of monitorkit.dashboard (numbers 40-49): saved layouts and the login credential."""

from __future__ import annotations

import duckdb

from monitorkit.store.migrations import SchemaSet

SCHEMA = SchemaSet("dashboard", range(40, 50))

# No DEFAULT that calls a function (Quack clients could not ATTACH the file, seen on 1.5.5):
# every time is set by the code that inserts.


@SCHEMA.migration(40, "dashboard layouts")
def _layouts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE layouts (
            name       VARCHAR PRIMARY KEY,
            spec       JSON NOT NULL,
            is_default BOOLEAN NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )"""
    )


# Only a salted scrypt hash of the login token is kept; readers may see it, never the token.
@SCHEMA.migration(41, "dashboard login credential")
def _credentials(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE dashboard_credentials (
            id         INTEGER PRIMARY KEY,
            algorithm  VARCHAR NOT NULL,
            salt       BLOB NOT NULL,
            hash       BLOB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL
        )"""
    )
