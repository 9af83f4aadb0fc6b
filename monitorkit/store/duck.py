"""Every DuckDB-version-specific line: the pin, extension loading and the Quack calls.

DuckDB is pinned together with its extension wheels (they load offline and signed only at the same
version); upgrading DuckDB means changing this module only.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from monitorkit.store.literals import bind

DUCKDB_VERSION = "1.5.5"
_EXTENSION_MODULES = {
    "quack": "duckdb_extension_quack",
    "httpfs": "duckdb_extension_httpfs",
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}


def extension_path(name: str) -> Path:
    """Return the path of the extension file shipped in its PyPI wheel."""
    module = importlib.import_module(_EXTENSION_MODULES[name])
    base = Path(module.__file__ or "").parent
    return base / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"


def load_extensions(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """LOAD the named extensions from their wheels (offline, signed)."""
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")


def load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD postgres_scanner, then ducklake: ``ATTACH 'ducklake:postgres:...'`` needs both loaded first.

    The file of the duckdb-extension-postgres wheel does not load at 1.5.5 (wrong entrypoint);
    the duckdb-extension-postgres-scanner wheel's does. Unloaded, ATTACH looks in ~/.duckdb.
    """
    load_extensions(con, "postgres_scanner", "ducklake")


# What DuckDB 1.5.5's Quack client itself asks a server on ATTACH (its catalog), whitespace-normalised:
# readers are admitted these exact statements beside the allowlist (monitorkit.owner.readers).
QUACK_CLIENT_CATALOG_QUERIES = frozenset({
    "SELECT catalog_name, schema_name FROM information_schema.schemata "
    "WHERE catalog_name NOT IN ('system', 'temp') ORDER BY ALL",
    "SELECT schema_name, sql, 'table' FROM duckdb_tables() UNION ALL SELECT schema_name, view_name, 'view' FROM duckdb_views()",
})


def quack_uri(port: int, host: str = "127.0.0.1") -> str:
    """Return the Quack URI of a server on ``host:port``."""
    return f"quack:{host}:{port}"


def quack_serve(con: duckdb.DuckDBPyConnection, port: int, token: str, authorization: str | None = None) -> None:
    """Serve ``con``'s database over Quack on loopback (the client needs httpfs too).

    ``authorization`` names a macro ``(sid, query) -> BOOLEAN`` run before each client statement.
    """
    load_extensions(con, "httpfs", "quack")
    if authorization:
        con.execute(f"SET GLOBAL quack_authorization_function = '{authorization}'")
    con.execute(bind(f"CALL quack_serve('{quack_uri(port)}', token = ?, disable_ssl = true)", [token]))


def quack_query_sql(port: int, token: str, sql: str) -> str:
    """Return a SELECT that runs ``sql`` whole on the owner and streams its result back."""
    return (
        f"SELECT * FROM quack_query('{quack_uri(port)}', '{_quote(sql)}', "
        f"token = '{_quote(token)}', disable_ssl = true)"
    )


def quack_stop(con: duckdb.DuckDBPyConnection, port: int) -> None:
    """Stop the Quack server on ``port``."""
    con.execute(f"CALL quack_stop('{quack_uri(port)}')")


def quack_attach(
    con: duckdb.DuckDBPyConnection, port: int, token: str, alias: str = "live", read_only: bool = True
) -> None:
    """ATTACH a running owner's database through Quack as ``alias`` and USE it."""
    load_extensions(con, "httpfs", "quack")
    mode = ", READ_ONLY" if read_only else ""
    con.execute(f"ATTACH '{quack_uri(port)}' AS {alias} (TOKEN '{_quote(token)}', DISABLE_SSL true{mode})")
    con.execute(f"USE {alias}")


def is_duckdb_file(path: Path) -> bool:
    """Tell whether the file at ``path`` starts with a DuckDB header ("DUCK" at byte 8)."""
    with path.open("rb") as fh:
        head = fh.read(12)
    return head[8:12] == b"DUCK"


def is_lock_error(exc: BaseException) -> bool:
    """Tell whether a DuckDB error means another process holds the file."""
    return "Conflicting lock is held" in str(exc) or "Could not set lock" in str(exc)


def lock_holder_pid(exc: BaseException) -> int | None:
    """Return the PID DuckDB names in a lock error, if any."""
    text = str(exc)
    marker = "PID "
    if marker in text:
        digits = "".join(ch for ch in text.split(marker, 1)[1][:12] if ch.isdigit() or ch == " ").split()
        if digits:
            return int(digits[0])
    return None


def _quote(text: str) -> str:
    return text.replace("'", "''")
