"""Metric metadata peers send (remote_write's ``metadata_config``, OTLP descriptions) kept in ``metric_metadata``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import NamedTuple

import pyarrow as pa

from monitorkit.interop.schema import replace_rows
from monitorkit.store import Store


class Metadata(NamedTuple):
    """A metric family's metadata as a peer sent it."""

    name: str
    type: str
    help: str
    unit: str


class MetadataLog:
    """Keep the metric metadata peers send in ``metric_metadata``, writing only what changed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seen: dict[tuple[str, str], Metadata] = {}
        self._lock = threading.Lock()

    def __call__(self, items: list[Metadata], source: str) -> None:
        """Record ``items`` from ``source`` (remote_write, otlp) unless unchanged; the write rides on the next commit."""
        with self._lock:
            changed = [m for m in items if self._seen.get((m.name, source)) != m]
            for m in changed:
                self._seen[(m.name, source)] = m
        if not changed:
            return
        now = datetime.now(UTC)
        table = pa.table({"name": [m.name for m in changed], "source": [source] * len(changed),
                          "type": [m.type for m in changed], "help": [m.help for m in changed],
                          "unit": [m.unit for m in changed],
                          "updated_at": pa.array([now] * len(changed), pa.timestamp("us", tz="UTC"))})
        replace_rows(self.store, "metric_metadata", table)
