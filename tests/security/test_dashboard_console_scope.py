"""Finding 4: a CTE name admits only that CTE, in its own query; credentials and system catalogs stay out of reach.

Before: the console collected every CTE name of the statement and admitted any table of that
name anywhere, so ``SELECT * FROM (WITH dashboard_credentials AS (SELECT 1) SELECT 1) x,
dashboard_credentials`` returned the credential's salt and hash; ``sqlite_master``,
``pg_settings`` and ``duckdb_views`` were reachable the same way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitorkit.dashboard.auth import ensure_token
from monitorkit.dashboard.console import HIDDEN_TABLES, SqlConsole
from monitorkit.dashboard.errors import ConsoleRefusedError
from monitorkit.dashboard.reader import StoreReader, table_names
from monitorkit.owner import client
from monitorkit.owner.owner import Owner
from monitorkit.samples import Sample, utcnow

CRED = "dashboard_credentials"
ATTACKS = [
    f"SELECT * FROM (WITH {CRED} AS (SELECT 1) SELECT 1) x, {CRED}",  # the reported one
    f"WITH q AS (WITH {CRED} AS (SELECT 1) FROM {CRED}) FROM q, {CRED}",
    f"WITH a AS (FROM {CRED}), {CRED} AS (SELECT 1) FROM a",  # a CTE body does not see later CTEs
    f"WITH {CRED} AS (FROM {CRED}) FROM {CRED}",  # nor itself, unless recursive
    f"WITH RECURSIVE {CRED} AS (FROM {CRED}) FROM {CRED}",
    f"WITH RECURSIVE {CRED} AS (SELECT hash FROM {CRED} UNION ALL SELECT hash FROM {CRED} WHERE false) FROM {CRED}",
    f"(WITH {CRED} AS (SELECT 1) FROM {CRED}) UNION ALL FROM {CRED}",
    f"WITH {CRED} AS (SELECT 1) FROM main.{CRED}",
    f"WITH {CRED} AS (SELECT 1) FROM live.main.{CRED}",
    f"SELECT (SELECT hash FROM {CRED}) FROM (WITH {CRED} AS (SELECT 1) FROM {CRED})",
    f"FROM {CRED}",
    f"SUMMARIZE {CRED}",
    f"DESCRIBE {CRED}",
    f"PIVOT {CRED} ON algorithm USING first(hash)",
    f"SELECT * FROM latest WHERE name IN (SELECT algorithm FROM {CRED})",
    *(f"SELECT * FROM (WITH {name} AS (SELECT 1) SELECT 1) x, {name}"
      for name in ("sqlite_master", "pg_settings", "duckdb_views", "duckdb_settings", "duckdb_secrets")),
    "FROM sqlite_master", "FROM pg_settings", "FROM duckdb_views", "FROM information_schema.tables",
    "FROM pg_catalog.pg_settings", "FROM system.main.duckdb_settings",
]


@pytest.fixture(scope="module")
def owner_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlConsole, bytes]]:
    with Owner(tmp_path_factory.mktemp("scope") / "m.duckdb") as owner:
        owner.store.write([Sample(utcnow(), "cpu_percent", {}, 1.0)])
        owner.store.flush()
        credential, _ = ensure_token(owner.store)
        assert owner.info is not None
        tables = table_names(StoreReader(owner.store)) - HIDDEN_TABLES  # what the served dashboard offers
        console = SqlConsole.for_owner(*client.quack_endpoint(owner.info), tables)
        try:
            yield console, credential.hash
        finally:
            console.close()


@pytest.mark.parametrize("sql", ATTACKS)
def test_cte_names_and_catalogs_do_not_open_hidden_relations(owner_console: tuple[SqlConsole, bytes], sql: str) -> None:
    console, secret = owner_console
    with pytest.raises(ConsoleRefusedError) as info:
        console.check(sql)  # the console's own check, whatever the owner's reader policy adds
    assert secret.hex() not in str(info.value)
    with pytest.raises(ConsoleRefusedError):
        console.run(sql)


@pytest.mark.parametrize(("sql", "rows"), [
    ("WITH x AS (FROM latest) SELECT count(*) FROM x", 1),
    ("WITH x AS (FROM latest), y AS (FROM x) SELECT (SELECT count(*) FROM y)", 1),
    ("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) FROM r", 3),
    ("SELECT * FROM (WITH s AS (FROM series) FROM s) q", 1),
    (f"WITH {CRED} AS (SELECT 1 AS one) FROM {CRED}", 1),  # the CTE itself, not the table
])
def test_ctes_in_their_own_scope_still_run(owner_console: tuple[SqlConsole, bytes], sql: str, rows: int) -> None:
    console, secret = owner_console
    table = console.run(sql).table
    assert table.num_rows == rows and secret not in repr(table.to_pylist()).encode()
