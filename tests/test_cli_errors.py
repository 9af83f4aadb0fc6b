"""Messages a newcomer can trust: exact errors, unknown metrics named, the dashboard always findable.

Remote cases run against a real owner: in a thread of this process (run_owner) or, for a
second owner refused, in a child process.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from cli_helpers import invoke
from rules_helpers import write_rule
from store_helpers import isolated_settings, read_line, spawn_python

from monitorkit import Sample, Store
from monitorkit.errors import QueryError
from monitorkit.owner.api import json_route
from monitorkit.owner.connect import RemoteConnection, connect
from monitorkit.owner.runtime import OwnerContext, run_owner
from monitorkit.owner.schema import SCHEMA

T = datetime(2025, 5, 1, 8, 30, tzinfo=UTC)
DASHBOARD = "http://127.0.0.1:5999/"
TOKEN_ROUTE = "/v1/dashboard/token"


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MONITORKIT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(tmp_db: Path) -> Path:
    """A closed database with every domain's tables, holding cpu_percent and mem_used_bytes."""
    with Store(tmp_db, settings=isolated_settings(), schema=SCHEMA) as store:
        store.write([Sample(T, "cpu_percent", {"cpu": "0"}, 12.5, "h1"), Sample(T, "mem_used_bytes", {}, 1e9, "h1")])
    return tmp_db


class Running(NamedTuple):
    """An owner running in a thread of this process, with what the test registered on its API."""

    db: Path
    ctx: OwnerContext
    tokens: list[dict[str, Any]]


@pytest.fixture
def running(db: Path) -> Iterator[Running]:
    """An owner of ``db`` (no collectors, no services) whose API answers the dashboard's token route."""
    stop, ready = threading.Event(), threading.Event()
    box: list[OwnerContext] = []
    tokens: list[dict[str, Any]] = []

    def issue(payload: dict[str, Any]) -> dict[str, Any]:
        tokens.append(payload)
        return {"url": f"{DASHBOARD}?token=fresh{len(tokens)}"}

    def on_ready(ctx: OwnerContext) -> None:
        ctx.api.add_route("POST", TOKEN_ROUTE, json_route(issue))
        box.append(ctx)
        ready.set()

    settings = isolated_settings(**{"store.path": str(db), "collect.interval": 0.2})
    thread = threading.Thread(target=run_owner, args=(settings, stop),
                              kwargs={"collectors": [], "services": (), "on_ready": on_ready}, daemon=True)
    thread.start()
    assert ready.wait(30), "the owner did not start"
    try:
        yield Running(db, box[0], tokens)
    finally:
        stop.set()
        thread.join(30)


# -- exact errors ---------------------------------------------------------------------------------


def assert_parser_error(text: str) -> None:
    assert 'Parser Error: syntax error at or near "SELEC"' in text
    assert "LINE 1: SELEC 1\n        ^" in text  # DuckDB's position caret under the bad word
    assert "read-only" not in text and "quack_query" not in text and "refused" not in text


def test_bad_sql_is_a_syntax_error_with_its_position_on_a_file(db: Path) -> None:
    result = invoke(["sql", "SELEC 1"], db=db)
    assert result.exit_code == 1
    assert_parser_error(result.output)


def test_bad_sql_is_a_syntax_error_with_its_position_through_the_owner(running: Running) -> None:
    result = invoke(["sql", "SELEC 1"], db=running.db)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert_parser_error(result.output)
    with connect(running.db) as con:
        assert isinstance(con, RemoteConnection)
        with pytest.raises(QueryError) as raised:
            con.execute("SELEC 1")
        assert_parser_error(str(raised.value))


def test_only_what_is_really_refused_is_refused_and_by_its_kind(running: Running) -> None:
    refused = invoke(["sql", "DELETE FROM samples_raw"], db=running.db)
    assert refused.exit_code == 1 and "DELETE is refused" in refused.output
    missing = invoke(["sql", "SELECT x FROM samples"], db=running.db)
    assert missing.exit_code == 1 and 'column "x" not found' in missing.output
    assert "refused" not in missing.output and "quack_query" not in missing.output
    token = running.ctx.owner.info.token if running.ctx.owner.info else "?"
    assert token not in refused.output + missing.output


# -- unknown metric names -------------------------------------------------------------------------

TYPO = "SELECT time, value FROM samples WHERE name = 'cpu_percnt'"
RANGE = "SELECT * FROM metric_range('cpu_percnt', TIMESTAMPTZ '2025-05-01 08:00:00+00', TIMESTAMPTZ '2025-05-01 09:00:00+00')"


@pytest.mark.parametrize("query", [TYPO, RANGE])
def test_sql_warns_of_an_unknown_metric_on_stderr(db: Path, query: str) -> None:
    result = invoke(["sql", query, "--format", "json"], db=db)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []  # the result is unchanged: still no rows
    assert result.stderr.strip() == "warning: no metric 'cpu_percnt'; did you mean cpu_percent?"


def test_sql_warns_through_the_owner_too(running: Running) -> None:
    result = invoke(["sql", TYPO, "--format", "csv"], db=running.db)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == '"time","value"'
    assert "did you mean cpu_percent?" in result.stderr


@pytest.mark.parametrize("query", [
    "SELECT * FROM samples WHERE name = 'cpu_percent'",
    "SELECT * FROM samples WHERE name = 'mem_used_bytes'",  # stored, though not in the catalog
    "SELECT * FROM series WHERE name LIKE 'cpu%'",
    "SELECT * FROM rules WHERE name = 'cpu_percnt'",  # a rule's name, not a metric
])
def test_known_metrics_and_other_names_raise_no_warning(db: Path, query: str) -> None:
    result = invoke(["sql", query], db=db)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr


def test_rules_check_warns_for_each_unknown_metric_a_rule_names(db: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    write_rule(rules, "typo", "SELECT host, last AS value FROM gauge_window('cpu_percnt', "
                              "eval_time() - INTERVAL 1 MINUTE, eval_time())")
    write_rule(rules, "fine", "SELECT host, last AS value FROM gauge_window('cpu_percent', "
                              "eval_time() - INTERVAL 1 MINUTE, eval_time())")
    result = invoke(["rules", "check", str(rules)], db=db)
    assert result.exit_code == 0, result.output  # a warning does not fail the check
    assert result.stderr.strip() == "warning: rule typo: no metric 'cpu_percnt'; did you mean cpu_percent?"
    rows = {r["name"]: r for r in json.loads(invoke(["rules", "check", str(rules), "--json"], db=db).stdout)}
    assert rows["typo"]["state"] == "ok" and rows["typo"]["unknown_metrics"] == ["cpu_percnt"]
    assert rows["fine"]["unknown_metrics"] == []


# -- the dashboard is always findable ---------------------------------------------------------------


def test_token_prints_a_fresh_login_url_from_the_running_owner(running: Running) -> None:
    running.ctx.owner.publish(dashboard_url=DASHBOARD)
    first = invoke(["token"], db=running.db)
    assert first.exit_code == 0, first.output
    assert first.stdout == f"{DASHBOARD}?token=fresh1\n"
    again = invoke(["serve", "--new-token"], db=running.db, env={"PYTHONMALLOC": "malloc"})
    assert again.exit_code == 0, again.output
    assert again.stdout == f"{DASHBOARD}?token=fresh2\n" and len(running.tokens) == 2


def test_token_says_why_it_cannot(running: Running, tmp_path: Path) -> None:
    no_dashboard = invoke(["token"], db=running.db)
    assert no_dashboard.exit_code == 1 and "serves no dashboard" in no_dashboard.output
    assert "monitorkit serve" in no_dashboard.output
    nobody = invoke(["token"], db=tmp_path / "other.duckdb")
    assert nobody.exit_code == 1 and "no owner runs for" in nobody.output


def test_a_refused_second_owner_says_where_the_dashboard_is(db: Path) -> None:
    child = spawn_python("""
        import sys
        from monitorkit import Owner
        with Owner(sys.argv[1]) as owner:
            owner.publish(dashboard_url=sys.argv[2])
            print("ready", flush=True)
            sys.stdin.read()
    """, str(db), DASHBOARD, cwd=db.parent)
    try:
        read_line(child, "ready")
        result = invoke(["collect", "--duration", "1"], db=db)
        assert result.exit_code == 1
        assert f"is owned by process {child.pid}" in result.output
        assert f"Its dashboard: {DASHBOARD} (`monitorkit token --db {db}` prints a fresh login URL" in result.output
        status = invoke(["status"], db=db)
        assert f"dashboard: {DASHBOARD}" in status.stdout
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(30)


@pytest.mark.parametrize(("query", "named"), [
    ("SELECT * FROM samples s WHERE s.name IN ('a_x', 'b_y') AND 'c_z' = name", [("a_x", False), ("b_y", False),
                                                                               ("c_z", False)]),
    ("WITH w AS (SELECT * FROM latest WHERE name LIKE 'disk_%') SELECT * FROM w", [("disk_%", True)]),
    ("SELECT * FROM counter_window('net_%_total', now() - INTERVAL 1 MINUTE, now())", [("net_%_total", True)]),
    ("SELECT * FROM rules WHERE name = 'hot'", []),  # not a metric relation
    ("SELECT * FROM samples WHERE name = ?", []),  # no literal
    ("SELEC 1", []),  # does not parse: the error says so, not a warning
])
def test_named_metrics_are_the_literal_filters(query: str, named: list[tuple[str, bool]]) -> None:
    from monitorkit.rules.names import named_metrics

    assert [(n.name, n.pattern) for n in named_metrics(query)] == named
