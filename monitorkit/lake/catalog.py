"""Attach the fleet lake: DuckLake with its PostgreSQL catalog and shared data path, on a fresh DuckDB.

``con = open_lake(cfg)`` returns an in-memory DuckDB with the lake attached as ``lake`` and in use.
DuckDB errors become typed ones: an unreachable catalog, a commit conflict, anything else.
"""

from __future__ import annotations

import duckdb

from monitorkit.lake.config import LakeConfig, redact
from monitorkit.lake.errors import LakeConflictError, LakeError, LakeUnreachableError
from monitorkit.store import duck

ALIAS = "lake"
# What DuckDB says when the catalog's PostgreSQL does not answer (refused, reset, timed out, shut down).
_UNREACHABLE = (
    "Unable to connect to Postgres", "could not connect", "Connection refused", "server closed the connection",
    "terminating connection", "no connection to the server", "connection to server", "timeout expired",
    "the database system is", "Failed to query most recent snapshot", "SSL SYSCALL error", "could not send data",
)


def is_conflict(exc: BaseException) -> bool:
    """Tell whether ``exc`` is DuckLake refusing a commit because others committed first (once, or too often)."""
    text = str(exc)
    # DuckLake retries a commit that lost the race for the next snapshot itself, with backoff, up to
    # ducklake_max_retry_count times: past that the catalog is busy, not broken.
    return "Transaction conflict" in text or "maximum retry count" in text


def is_unreachable(exc: BaseException) -> bool:
    """Tell whether ``exc`` says the catalog's PostgreSQL could not be reached."""
    text = str(exc)
    return any(sign in text for sign in _UNREACHABLE)


def lake_error(exc: duckdb.Error, cfg: LakeConfig, doing: str) -> LakeError:
    """Map a DuckDB error raised while ``doing`` something with the lake to a typed error."""
    text = redact(str(exc)).strip().split("\n\nLINE")[0]
    if is_conflict(exc):
        return LakeConflictError(f"{doing}: other writers committed first (the catalog is busy); run it again ({text})")
    if is_unreachable(exc):
        return LakeUnreachableError(
            f"{doing}: the lake's catalog at {cfg.display!r} did not answer ({text}); check that PostgreSQL "
            "runs and this machine may connect to it")
    return LakeError(f"{doing}: {text}")


def attach(con: duckdb.DuckDBPyConnection, cfg: LakeConfig, *, read_only: bool = False, alias: str = ALIAS) -> None:
    """ATTACH the lake on ``con`` as ``alias`` (loading its extensions from their wheels first)."""
    duck.load_lake_extensions(con)
    options = []
    if cfg.data_path:
        options.append(f"DATA_PATH '{_quote(cfg.data_path)}'")
    if cfg.metadata_schema:
        options.append(f"METADATA_SCHEMA '{_quote(cfg.metadata_schema)}'")
    if read_only:
        options.append("READ_ONLY")
    suffix = f" ({', '.join(options)})" if options else ""
    try:
        con.execute(f"ATTACH '{_quote(cfg.uri)}' AS {alias}{suffix}")
    except duckdb.Error as exc:
        text = str(exc)
        if "DATA_PATH" in text and not cfg.data_path:
            raise LakeError(
                f"the lake at {cfg.display!r} does not exist yet: set [lake] data_path to the shared folder "
                "(or s3:// prefix) its files go to, so the first host can create it") from None
        raise lake_error(exc, cfg, "attaching the lake") from None


def open_lake(cfg: LakeConfig, *, read_only: bool = False, threads: int = 1) -> duckdb.DuckDBPyConnection:
    """Return an in-memory DuckDB with the lake attached as ``lake`` and selected with USE.

    ``threads`` bounds the DuckDB worker threads of this connection (the shipper needs one).
    """
    # No extension is ever downloaded: the lake's extensions come from their pinned wheels.
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                 "threads": max(1, threads)})
    try:
        con.execute("SET TimeZone = 'UTC'")
        attach(con, cfg, read_only=read_only)
        con.execute(f"USE {ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")
