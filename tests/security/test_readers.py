"""Readers holding the sidecar token: any SELECT over monitorkit's relations, nothing that reaches files, network or server.

Each attack of the security review runs as the attacker would: DuckDB's own Quack client with
the token read from the owner's sidecar, against a real owner on loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_helpers import isolated_settings

from monitorkit import Owner, Sample
from monitorkit.errors import QueryError
from monitorkit.owner import client
from monitorkit.owner.readers import SCALARS, TABLE_FUNCTIONS, QueryRefused, ReaderPolicy, pivot_as_select
from monitorkit.owner.sidecar import read_owner
from monitorkit.store import duck


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Owner]:
    db = tmp_path_factory.mktemp("readers") / "m.duckdb"
    with Owner(db, settings=isolated_settings()) as owner:
        now = datetime.now(UTC)
        owner.store.write([Sample(now, "cpu_percent", {"cpu": str(i)}, float(i), "h1") for i in range(4)])
        owner.store.flush()
        owner.store.submit(lambda con: con.execute(
            "INSERT INTO dashboard_credentials VALUES (1, 'scrypt', 'salt'::BLOB, 'hash'::BLOB, now())")).result()
        yield owner


@pytest.fixture(scope="module")
def attacker(owner: Owner) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    duck.load_extensions(con, "httpfs", "quack")
    yield con
    con.close()


def run(attacker: duckdb.DuckDBPyConnection, owner: Owner, sql: str) -> list[tuple[object, ...]]:
    info = read_owner(owner.db)  # what an attacker on this machine with the sidecar can read
    assert info is not None
    port, token = client.quack_endpoint(info)  # the sidecar's API token opens the endpoint if no reader did yet
    return attacker.execute(duck.quack_query_sql(port, token, sql)).fetchall()


ADMITTED = [
    "SELECT count(*) FROM samples",
    "SELECT s.name, l.value FROM series s JOIN latest l USING (series_id) ORDER BY 2",
    "WITH x AS (SELECT name FROM series) SELECT count(*) FROM x JOIN latest USING (name)",
    "SELECT count(*) FROM metric_range('cpu_percent', now() - INTERVAL 1 HOUR, now() + INTERVAL 1 HOUR)",
    "SELECT name, row_number() OVER (ORDER BY value), sum(value) OVER () FROM latest",
    "FROM latest SELECT host, labels['cpu'] AS cpu, round(value, 1) WHERE value > 1",
    "PIVOT latest ON host USING max(value) GROUP BY name",
    "DESCRIBE samples",
    "SELECT * FROM range(3)",
    "SELECT list_transform([1, 2], x -> x + 1), regexp_matches('ab', 'a.'), strftime(now(), '%Y')",
]


@pytest.mark.parametrize("sql", ADMITTED)
def test_a_reader_runs_any_select_over_monitorkits_relations(attacker: duckdb.DuckDBPyConnection, owner: Owner,
                                                              sql: str) -> None:
    rows = run(attacker, owner, sql)
    assert isinstance(rows, list)
    owner.readers.check(sql)  # and the same verdict without a round trip


ATTACKS = [
    "SELECT read_text('/etc/shadow')",
    "SELECT * FROM read_text('/etc/shadow')",
    "SELECT content FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/root/*')",
    "SELECT * FROM read_text('http://127.0.0.1:9/x')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "FROM '/etc/passwd'",
    "SELECT * FROM quack_serve('quack:127.0.0.2:45998', token = 'xxxx', allow_other_hostname = true)",
    "CALL quack_stop('quack:127.0.0.1:1')",
    "SELECT * FROM quack_stop('quack:127.0.0.1:1')",
    "SELECT * FROM (WITH dashboard_credentials AS (SELECT 1) SELECT 1) x, dashboard_credentials",
    "SELECT * FROM dashboard_credentials",
    "SELECT * FROM main.dashboard_credentials",
    "SELECT * FROM duckdb_views()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pg_settings",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM system.main.duckdb_settings()",
    "SELECT current_setting('memory_limit')",
    "SELECT getvariable('x')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM duckdb_secrets()",
    "PIVOT read_text('/etc/passwd') ON content USING count(*)",
    "PIVOT latest ON name USING max(read_text('/etc/passwd'))",
    "SELECT 1; SELECT 2",
    "INSERT INTO series VALUES (99, 'h', 'n', MAP {}, 'k', now())",
    "DELETE FROM samples_raw",
    "UPDATE series SET name = 'x'",
    "CREATE TABLE x (a INT)",
    "COPY series TO '/tmp/x.csv'",
    "ATTACH '/tmp/other.duckdb' AS other",
    "LOAD httpfs",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "CHECKPOINT",
    "EXPORT DATABASE '/tmp/x'",
]


@pytest.mark.parametrize("sql", ATTACKS)
def test_every_attack_of_the_review_is_refused(attacker: duckdb.DuckDBPyConnection, owner: Owner, sql: str) -> None:
    with pytest.raises(duckdb.Error, match="Authorization failed"):
        run(attacker, owner, sql)
    with pytest.raises(QueryRefused):
        owner.readers.check(sql)


def test_the_endpoint_keeps_serving_after_quack_stop_and_quack_serve_attempts(attacker: duckdb.DuckDBPyConnection,
                                                                              owner: Owner) -> None:
    info = owner.open_quack()
    for sql in (f"CALL quack_stop('quack:127.0.0.1:{info.port}')",
                f"SELECT * FROM quack_stop('quack:127.0.0.1:{info.port}')"):
        with pytest.raises(duckdb.Error):
            run(attacker, owner, sql)
    assert run(attacker, owner, "SELECT 42") == [(42,)]
    with socket.socket() as probe:  # no second listener was started on the attacker's address
        assert probe.connect_ex(("127.0.0.2", 45998)) != 0


def test_a_syntax_error_is_reported_with_its_position_not_as_a_refusal(attacker: duckdb.DuckDBPyConnection,
                                                                      owner: Owner) -> None:
    with pytest.raises(duckdb.Error, match='syntax error at or near "SELEC"'):
        run(attacker, owner, "SELEC 1")
    with pytest.raises(QueryError, match="syntax error") as caught:
        owner.readers.check("SELEC 1")
    assert not isinstance(caught.value, QueryRefused)


def test_a_function_duckdb_adds_later_is_refused_by_default() -> None:
    policy = ReaderPolicy(lambda: ({"latest"}, set(), set()), "m")
    for name in ("read_text", "glob", "quack_serve", "current_setting", "getvariable", "nextval", "json_serialize_sql"):
        assert name not in SCALARS and name not in TABLE_FUNCTIONS
    with pytest.raises(QueryRefused, match="some_function_of_duckdb_3"):
        policy.check("SELECT some_function_of_duckdb_3(value) FROM latest")
    with pytest.raises(QueryRefused, match="read_everything"):
        policy.check("SELECT * FROM read_everything('/')")


def test_a_rule_view_installed_after_start_is_readable_at_once(attacker: duckdb.DuckDBPyConnection, owner: Owner) -> None:
    owner.store.submit(lambda con: con.execute("CREATE OR REPLACE VIEW alert_new_rule AS SELECT 1 AS value")).result()
    assert run(attacker, owner, "SELECT value FROM alert_new_rule") == [(1,)]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_'() ,*", min_size=1, max_size=40))
def test_property_the_pivot_rewrite_never_hides_a_function(body: str) -> None:
    # Whatever the statement, the SELECT it is checked as contains every character run of it.
    sql = f"PIVOT latest ON {body} USING max(read_text('x'))"
    policy = ReaderPolicy(lambda: ({"latest"}, set(), set()), "m")
    try:
        rewritten = pivot_as_select(sql)
    except QueryRefused:
        return
    assert "read_text('x')" in rewritten
    with pytest.raises(QueryError):
        policy.check(sql)


def test_db_catalog_name_is_the_only_catalog_admitted(tmp_path: Path) -> None:
    policy = ReaderPolicy(lambda: ({"latest"}, set(), set()), "m")
    policy.check("SELECT * FROM m.main.latest")
    with pytest.raises(QueryRefused, match=r"other\.main\.latest"):
        policy.check("SELECT * FROM other.main.latest")
