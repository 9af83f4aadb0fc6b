"""Interop's tables: the scrape targets' last state (what Prometheus shows on its targets page)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING

import duckdb

from monitorkit.errors import StoreClosedError
from monitorkit.store.migrations import SchemaSet

if TYPE_CHECKING:
    import pyarrow as pa

    from monitorkit.store import Store

SCHEMA = SchemaSet("interop", range(60, 70))


@SCHEMA.migration(60, "scrape targets and their last error")
def _targets(con: duckdb.DuckDBPyConnection) -> None:
    # One row per (job, instance), replaced when its health or error changes and once a minute;
    # the history is the `up` series.
    con.execute(
        """
        CREATE TABLE scrape_targets (
            job             VARCHAR NOT NULL,
            instance        VARCHAR NOT NULL,
            url             VARCHAR NOT NULL,
            host            VARCHAR NOT NULL,
            labels          MAP(VARCHAR, VARCHAR) NOT NULL,
            health          VARCHAR NOT NULL,
            last_error      VARCHAR,
            last_scrape     TIMESTAMPTZ,
            last_duration_s DOUBLE,
            samples         BIGINT,
            PRIMARY KEY (job, instance)
        )"""
    )


@SCHEMA.migration(61, "metric metadata sent by remote-write and OTLP peers")
def _metadata(con: duckdb.DuckDBPyConnection) -> None:
    # What Prometheus's /api/v1/metadata shows: a family's type, help and unit, by who sent it.
    con.execute(
        """
        CREATE TABLE metric_metadata (
            name       VARCHAR NOT NULL,
            source     VARCHAR NOT NULL,
            type       VARCHAR NOT NULL,
            help       VARCHAR NOT NULL,
            unit       VARCHAR NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (name, source)
        )"""
    )


def replace_rows(store: Store, table: str, rows: pa.Table) -> Future[None] | None:
    """Write ``rows`` over ``table``'s rows of the same key (INSERT OR REPLACE) on the next commit due anyway.

    Returns the write's future, or None when the store is already closed (the owner is stopping:
    the last state of a target or a metric's metadata is not worth a late error).
    """
    view = f"_mk_{table}"

    def upsert(con: duckdb.DuckDBPyConnection) -> None:
        con.register(view, rows)
        try:
            con.execute(f"INSERT OR REPLACE INTO {table} SELECT * FROM {view}")
        finally:
            con.unregister(view)

    try:
        return store.submit(upsert, urgent=False)
    except StoreClosedError:
        return None
