"""Open a DuckDB file, turning DuckDB's failures into typed errors that say what to do."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from monitorkit.errors import OwnerExistsError, StoreCorruptError, StoreError, StorePermissionError
from monitorkit.store import duck


def open_database(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file at ``path`` (creating folders), mapping failures to typed errors."""
    path = Path(path)
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorePermissionError(f"cannot create folder {path.parent} for the database: {exc.strerror}") from exc
        if path.parent.exists() and not os.access(path.parent, os.W_OK):
            raise StorePermissionError(f"folder {path.parent} is not writable; choose another --db path or fix its permissions")
    if path.exists() and path.is_dir():
        raise StoreError(f"{path} is a folder; --db must name a database file")
    corrupt = (
        f"{path} is not a DuckDB database (or is damaged); it was left untouched. "
        "Move it aside or pass another --db path."
    )
    # Check the header first: DuckDB would try to download an extension for e.g. a SQLite file.
    try:
        if path.is_file() and not duck.is_duckdb_file(path):
            raise StoreCorruptError(corrupt)
    except OSError as exc:
        raise StorePermissionError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        text = str(exc)
        if duck.is_lock_error(exc):
            raise OwnerExistsError(str(path), duck.lock_holder_pid(exc)) from exc
        signs = ("not a valid DuckDB database file", "Corrupt", "corrupt", "Could not read enough bytes")
        if any(sign in text for sign in signs):
            raise StoreCorruptError(corrupt) from exc
        if "Permission denied" in text or "Read-only file system" in text:
            raise StorePermissionError(f"cannot open {path} for writing: {text}") from exc
        raise StoreError(f"cannot open {path}: {text}") from exc
    con.execute("SET TimeZone = 'UTC'")
    return con
