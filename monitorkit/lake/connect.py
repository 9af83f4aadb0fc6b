"""Read the whole fleet: ``connect_lake()`` gives the local store's views over every host's samples.

``monitorkit.connect(lake="postgres:host=db dbname=fleet").sql("FROM latest").show()`` works from
any machine that reaches the catalog and the data path; the lake is attached read-only.
"""

from __future__ import annotations

import os

import duckdb

from monitorkit.config import Settings, load_settings
from monitorkit.errors import ConfigError
from monitorkit.lake.catalog import open_lake
from monitorkit.lake.config import lake_config
from monitorkit.lake.errors import LakeError
from monitorkit.lake.schema import VERSION, current_version


def connect_lake(lake: str | None = None, *, settings: Settings | None = None, threads: int = 0) -> duckdb.DuckDBPyConnection:
    """Return a read-only connection on which ``samples``, ``latest``, ``metric_range`` ... span every host.

    ``lake`` is the catalog (``postgres:host=... dbname=...``); None or "" takes ``[lake] catalog``
    from the settings. ``threads`` 0 lets DuckDB use every core (a reader scans many files).
    """
    cfg = lake_config(settings or load_settings(), catalog=lake or None)
    if cfg is None:
        raise ConfigError("no lake to read: pass lake='postgres:host=... dbname=...' or set [lake] catalog")
    con = open_lake(cfg, read_only=True, threads=threads or (os.cpu_count() or 1))
    version = current_version(con)
    if version == 0:
        con.close()
        raise LakeError(f"the lake at {cfg.display!r} is empty: no host has shipped to it yet "
                          "(start an owner with a [lake] section, or `monitorkit hub`)")
    if version > VERSION:
        con.close()
        raise LakeError(f"the lake's schema is version {version}, newer than this monitorkit's {VERSION}: upgrade it")
    return con
