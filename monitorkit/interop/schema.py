"""Interop's tables: the scrape targets' last state (what Prometheus shows on its targets page)."""

from __future__ import annotations

import duckdb

from monitorkit.store.migrations import SchemaSet

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
