"""The SQL console: read-only, no file or network access, a time limit, and clear messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from monitorkit.dashboard.console import HIDDEN_TABLES, ONE_SCAN_HINT, SqlConsole
from monitorkit.dashboard.errors import ConsoleRefusedError, ConsoleTimeoutError
from monitorkit.dashboard.reader import StoreReader, table_names
from monitorkit.errors import QueryError
from monitorkit.owner import client
from monitorkit.owner.owner import Owner
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store


def _fill(store: Store) -> None:
    now = utcnow()
    store.write([Sample(now, "cpu_percent", {"cpu": str(i)}, float(i)) for i in range(4)])
    store.flush()


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Owner]:
    with Owner(tmp_path_factory.mktemp("console") / "m.duckdb") as o:
        _fill(o.store)
        yield o


@pytest.fixture(scope="module")
def console(owner: Owner) -> Iterator[SqlConsole]:
    assert owner.info is not None
    tables = table_names(StoreReader(owner.store)) - HIDDEN_TABLES
    c = SqlConsole.for_owner(*client.quack_endpoint(owner.info), tables, timeout=0.5)  # opens the endpoint
    yield c
    c.close()


@pytest.mark.parametrize("sql", [
    "SELECT name, count(*) FROM samples GROUP BY name",
    "FROM latest ORDER BY value",
    "WITH x AS (FROM latest) SELECT count(*) FROM x",
    "SELECT * FROM live.main.series",
    "DESCRIBE samples",
    "SELECT * FROM range(3)",
])
def test_reads_run(console: SqlConsole, sql: str) -> None:
    assert console.run(sql).table.num_rows > 0


def test_results_are_capped(console: SqlConsole) -> None:
    console.max_rows = 10
    try:
        result = console.run("SELECT * FROM range(100)")
    finally:
        console.max_rows = 5000
    assert result.table.num_rows == 10 and result.truncated


@pytest.mark.parametrize("sql", [
    "INSERT INTO samples_raw VALUES (now(), 1, 1.0)",
    "DELETE FROM series",
    "CREATE TABLE x AS SELECT 1",
    "COPY samples_raw TO '/tmp/out.csv'",
    "ATTACH '/tmp/other.duckdb'",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "INSTALL httpfs",
    "SELECT 1; DROP TABLE series",
])
def test_writes_and_settings_are_refused(console: SqlConsole, sql: str) -> None:
    with pytest.raises(ConsoleRefusedError, match="read-only"):
        console.run(sql)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "FROM '/etc/passwd'",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_parquet('http://example.com/x.parquet')",
    "SELECT * FROM (SELECT * FROM read_json_auto('/etc/os-release'))",
])
def test_file_reads_are_refused(console: SqlConsole, sql: str) -> None:
    with pytest.raises(ConsoleRefusedError, match="reading files is disabled"):
        console.run(sql)


@pytest.mark.parametrize("sql", [
    "FROM duckdb_databases()",  # would show the attachment's token
    "FROM duckdb_databases",
    "SELECT * FROM quack_query('quack:127.0.0.1:1', 'SELECT 1')",
    "SELECT current_setting('threads')",
    "FROM dashboard_credentials",
    "SELECT * FROM memory.main.x",
])
def test_catalog_token_and_foreign_objects_are_refused(console: SqlConsole, sql: str) -> None:
    with pytest.raises(ConsoleRefusedError):
        console.run(sql)


def test_long_queries_are_interrupted(console: SqlConsole) -> None:
    with pytest.raises(ConsoleTimeoutError, match=r"longer than 0\.5 s and was stopped"):
        console.run("SELECT count(*) FROM range(10000000000) a")
    assert console.run("SELECT 1 AS ok").table.num_rows == 1, "the console works after an interrupt"


def test_other_errors_are_clear(console: SqlConsole) -> None:
    with pytest.raises(QueryError, match="does not parse"):
        console.run("SELEC 1")
    with pytest.raises(QueryError) as info:
        console.run("SELECT * FROM samples_raw JOIN series USING (series_id)")
    assert str(info.value) == ONE_SCAN_HINT
    with pytest.raises(ConsoleRefusedError, match="write a query"):
        console.run("  ")


def test_the_sandbox_itself_is_locked(console: SqlConsole) -> None:
    # Below the statement check: the connection has no file access and a locked configuration.
    cur = console._con.cursor()
    with pytest.raises(duckdb.PermissionException):
        cur.execute("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(duckdb.Error, match="locked"):
        cur.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error, match="read-only"):
        cur.execute("USE live; INSERT INTO samples_raw VALUES (now(), 1, 1.0)")
    cur.close()


def test_a_file_without_owner_is_attached_read_only(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with Store(db) as store:
        _fill(store)
        tables = table_names(StoreReader(store))
    console = SqlConsole.for_file(db, tables, timeout=1.0)
    try:
        assert console.run("SELECT count(*) AS n FROM samples_raw").table.column("n").to_pylist() == [4]
        with pytest.raises(ConsoleRefusedError):
            console.run("INSERT INTO samples_raw VALUES (now(), 1, 1.0)")
        with pytest.raises(ConsoleRefusedError):
            console.run("FROM read_csv('/etc/passwd')")
    finally:
        console.close()


@pytest.fixture(scope="module", params=["in_owner", "api"])
def full_console(request: pytest.FixtureRequest, owner: Owner) -> Iterator[SqlConsole]:
    """The served dashboard's console (in the owner) and a notebook's (whole statements on the owner)."""
    assert owner.info is not None
    tables = table_names(StoreReader(owner.store))
    c = (SqlConsole.in_owner(owner.store, tables, timeout=0.5) if request.param == "in_owner" else
         SqlConsole.for_owner(*client.quack_endpoint(owner.info), tables, api=client.endpoint(owner.info), timeout=0.5))
    yield c
    c.close()


@pytest.mark.parametrize(("sql", "rows"), [
    ("SELECT * FROM samples_raw JOIN series USING (series_id)", 4),
    ("SELECT s.name, count(*) AS n FROM samples_raw r JOIN series s ON r.series_id = s.series_id GROUP BY ALL", 1),
    ("FROM metric_range('cpu_percent', now() - INTERVAL 1 HOUR, now() + INTERVAL 1 MINUTE, step := 60)", 4),
    ("SELECT count(*) FROM counter_window('%_total', now() - INTERVAL 1 HOUR, now())", 1),
    ("PIVOT (SELECT labels['cpu'] AS cpu, value FROM latest) ON cpu USING first(value)", 1),
    ("WITH c AS (FROM latest) SELECT count(*) FROM c JOIN series USING (series_id)", 1),
])
def test_the_console_runs_what_connect_runs(full_console: SqlConsole, sql: str, rows: int) -> None:
    assert full_console.run(sql).table.num_rows == rows


@pytest.mark.parametrize("sql", [
    "DELETE FROM series", "FROM read_csv('/etc/passwd')", "FROM dashboard_credentials",
    "WITH dashboard_credentials AS (FROM dashboard_credentials) FROM dashboard_credentials",
    "SELECT current_setting('threads')", "FROM duckdb_databases()", "SELECT * FROM glob('/etc/*')",
])
def test_the_full_console_keeps_every_refusal(full_console: SqlConsole, sql: str) -> None:
    with pytest.raises(ConsoleRefusedError):
        full_console.run(sql)


def test_the_full_console_stops_long_queries(full_console: SqlConsole) -> None:
    with pytest.raises(ConsoleTimeoutError):
        full_console.run("SELECT count(*) FROM range(10000000000) a")
    assert full_console.run("SELECT 1 AS ok").table.num_rows == 1
