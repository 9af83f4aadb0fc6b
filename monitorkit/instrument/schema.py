"""Migrations of monitorkit.instrument (numbers 10-19): the executions table of tool runs."""

from __future__ import annotations

import duckdb

from monitorkit.store.migrations import SchemaSet

SCHEMA = SchemaSet("executions", range(10, 20))

# One row per tool run, sent by applications through the ingest channel. No DEFAULT that
# calls a function (Quack clients could not ATTACH the file): every value is set by the owner.
EXECUTIONS_DDL = """
    CREATE TABLE executions (
        run_id        VARCHAR PRIMARY KEY,
        tool          VARCHAR NOT NULL,
        started       TIMESTAMPTZ NOT NULL,
        duration_s    DOUBLE NOT NULL,
        outcome       VARCHAR NOT NULL,
        error_type    VARCHAR,
        error_message VARCHAR,
        labels        MAP(VARCHAR, VARCHAR) NOT NULL,
        host          VARCHAR NOT NULL,
        pid           INTEGER NOT NULL
    )"""


@SCHEMA.migration(10, "executions: one row per tool run")
def _executions(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(EXECUTIONS_DDL)
