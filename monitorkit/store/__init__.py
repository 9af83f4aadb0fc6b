"""The store: one DuckDB file with series, samples, rollup tiers and the writer thread that owns it.

``Store`` (store.py) holds the file; ``database.open_database`` opens one; ``writer``, ``rollup``,
``compaction`` and ``tiers`` are the jobs it runs; ``schema`` and ``migrations`` hold its DDL.
"""

from monitorkit.store.database import open_database
from monitorkit.store.store import Store

__all__ = ["Store", "open_database"]
