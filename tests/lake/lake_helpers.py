"""Shared pieces of the lake tests: a host store with canned samples, per-host counts and checksums."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb

from monitorkit.samples import Sample
from monitorkit.store import Store

# Count and an order-free checksum of (series, time, value) per host: equal means the same rows.
CHECKSUM = """
    SELECT host, count(*) AS n,
           sum(hash(name, labels::VARCHAR, epoch_us(time), value) % 1000000007) AS checksum
    FROM samples {where} GROUP BY host ORDER BY host"""


def per_host(con: Any, where: str = "", params: Sequence[object] = ()) -> dict[str, tuple[int, int]]:
    """Return ``{host: (rows, checksum)}`` of the ``samples`` view on ``con``."""
    sql = CHECKSUM.format(where=where)
    rows = con.query(sql, list(params)) if isinstance(con, Store) else con.execute(sql, list(params)).fetchall()
    return {str(h): (int(n), int(c)) for h, n, c in rows}


def ticks(start: datetime, seconds: int, series: int = 4, name: str = "cpu_percent", value: float = 10.0) -> list[Sample]:
    """Return ``seconds`` one-second ticks of ``series`` series of ``name`` from ``start``."""
    return [Sample(start + timedelta(seconds=s), name, {"cpu": str(c)}, value + (s % 7) + c)
            for s in range(seconds) for c in range(series)]


def lake_rows(con: duckdb.DuckDBPyConnection, host: str) -> int:
    """Return how many samples of ``host`` the lake holds."""
    row = con.execute("SELECT count(*) FROM samples WHERE host = ?", [host]).fetchone()
    return int(row[0]) if row else 0
