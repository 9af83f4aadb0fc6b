"""The `monitorkit` command over the store: --help everywhere, sql formats, status, config, collect."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_helpers import invoke
from store_helpers import isolated_settings, monitorkit_cli

from monitorkit import Owner, Sample, Store
from monitorkit.cli import COMMANDS

T = datetime(2025, 5, 1, 8, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run each test in an empty folder with no MONITORKIT_* variables."""
    for key in list(os.environ):
        if key.startswith("MONITORKIT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def filled_db(tmp_db: Path) -> Path:
    """A closed database holding three known samples."""
    with Store(tmp_db, settings=isolated_settings()) as store:
        store.write(
            [
                Sample(T, "cpu_percent", {"cpu": "0"}, 12.5, "h1"),
                Sample(T, "cpu_percent", {"cpu": "1"}, 50.0, "h1"),
                Sample(T, "mem_used_bytes", {}, 1e9, "h1"),
            ]
        )
    return tmp_db


QUERY = "SELECT name, labels['cpu'] AS cpu, value FROM samples ORDER BY value"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    assert importlib.util.find_spec(COMMANDS[name][0]) is not None, f"{COMMANDS[name][0]} does not exist"
    result = invoke([name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: monitorkit {name} ")
    assert "--help" in result.output


def test_group_help_lists_every_command() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.output


def test_sql_csv(filled_db: Path) -> None:
    result = invoke(["sql", QUERY, "--db", str(filled_db), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["name"], r["cpu"], float(r["value"])) for r in rows] == [
        ("cpu_percent", "0", 12.5),
        ("cpu_percent", "1", 50.0),
        ("mem_used_bytes", "", 1e9),
    ]


def test_sql_json(filled_db: Path) -> None:
    query = "SELECT name, labels, value, time FROM samples ORDER BY value"
    result = invoke(["sql", query, "--db", str(filled_db), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["value"] for r in rows] == [12.5, 50.0, 1e9]
    assert rows[0]["labels"] == {"cpu": "0"} and rows[2]["labels"] == {}
    assert datetime.fromisoformat(rows[0]["time"]) == T


def test_sql_table(filled_db: Path) -> None:
    result = invoke(["sql", QUERY, "--db", str(filled_db), "--format", "table"])
    assert result.exit_code == 0, result.output
    assert "mem_used_bytes" in result.stdout and "12.5" in result.stdout and "1000000000.0" in result.stdout
    assert "3 rows" in result.stdout


def test_sql_plain_is_the_default_off_a_terminal(filled_db: Path) -> None:
    result = invoke(["sql", QUERY, "--db", str(filled_db)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "name            cpu   value",
        "cpu_percent     0     12.5",
        "cpu_percent     1     50.0",
        "mem_used_bytes  NULL  1000000000.0",
    ]
    assert result.stderr.strip() == "3 rows"  # the count is not data: it goes to stderr off a terminal


def test_sql_parquet_to_file_and_stdout(filled_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    result = invoke(["sql", QUERY, "--db", str(filled_db), "--format", "parquet", "--output", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.column_names == ["name", "cpu", "value"]
    assert table.column("value").to_pylist() == [12.5, 50.0, 1e9]
    piped = invoke(["sql", QUERY, "--db", str(filled_db), "--format", "parquet"])
    assert piped.exit_code == 0
    assert pq.read_table(io.BytesIO(piped.stdout_bytes)).equals(table)


def test_sql_refuses_writes_with_a_clean_error(filled_db: Path) -> None:
    result = invoke(["sql", "DELETE FROM samples_raw", "--db", str(filled_db)])
    assert result.exit_code == 1
    assert "Error: query failed" in result.output and "read-only" in result.output
    with Store(filled_db, settings=isolated_settings()) as store:
        assert store.query("SELECT count(*) FROM samples_raw") == [(3,)]


def test_sql_on_a_missing_database_says_how_to_start(tmp_path: Path) -> None:
    result = invoke(["sql", "SELECT 1", "--db", str(tmp_path / "nope.duckdb")])
    assert result.exit_code == 1
    assert "no database at" in result.output and "monitorkit collect" in result.output


@pytest.fixture
def owner(filled_db: Path) -> Iterator[Owner]:
    with Owner(filled_db, settings=isolated_settings()) as running:
        yield running


def test_sql_through_a_running_owner(owner: Owner) -> None:
    owner.store.write([Sample(T, "up", {}, 1.0, "h1")])
    owner.store.flush()
    result = invoke(["sql", "SELECT count(*) AS n FROM samples", "--db", str(owner.db), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 4}]
    refused = invoke(["sql", "INSERT INTO samples_raw VALUES (now(), 1, 1)", "--db", str(owner.db)])
    assert refused.exit_code == 1 and "INSERT is refused" in refused.output and "read-only" in refused.output


def test_status_without_owner(filled_db: Path) -> None:
    result = invoke(["status", "--db", str(filled_db)])
    assert result.exit_code == 0, result.output
    assert f"database: {filled_db}" in result.stdout
    assert "owner: none running" in result.stdout
    assert "series: 3" in result.stdout
    raw = next(line for line in result.stdout.splitlines() if line.startswith("raw "))
    assert raw.split() == ["raw", "3", "2025-05-01", "08:30:00", "2025-05-01", "08:30:00", "14d"]


def test_status_with_owner(owner: Owner) -> None:
    result = invoke(["status", "--db", str(owner.db)])
    assert result.exit_code == 0, result.output
    assert owner.info is not None
    # No reader asked for the Quack endpoint yet: it is not open; once one does, status shows its port.
    assert f"owner: pid {owner.info.pid}, quack opens on a reader's first request" in result.stdout
    info = owner.open_quack()
    opened = invoke(["status", "--db", str(owner.db)])
    assert f"owner: pid {info.pid}, quack port {info.port}" in opened.stdout and info.port > 0
    assert "dashboard: not served (this owner was started by `monitorkit collect`)" in result.stdout
    assert "series: 3" in result.stdout


def test_status_shows_the_running_dashboard(owner: Owner) -> None:
    owner.publish(dashboard_url="http://127.0.0.1:5123/")
    result = invoke(["status", "--db", str(owner.db)])
    assert result.exit_code == 0, result.output
    assert "dashboard: http://127.0.0.1:5123/ (`monitorkit token` prints a login URL)" in result.stdout
    data = json.loads(invoke(["status", "--db", str(owner.db), "--json"]).stdout)
    assert data["owner"]["dashboard_url"] == "http://127.0.0.1:5123/" and data["series"] == 3
    assert [t["tier"] for t in data["tiers"]] == ["raw", "1m", "1h"] and data["tiers"][0]["rows"] == 3


TOML = """
[retention]
raw = "7d"

[collectors.processes]
top_n = 3
"""


def test_config_shows_values_with_their_sources(tmp_path: Path) -> None:
    (tmp_path / "monitorkit.toml").write_text(TOML)
    env = {"MONITORKIT_STORE__QUEUE_MAX_SAMPLES": "5000", "MONITORKIT_SERVE__ADDRESS": "0.0.0.0"}
    result = invoke(["config", "--json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {r["key"]: (r["value"], r["source"]) for r in json.loads(result.stdout)}
    toml_path = str(tmp_path / "monitorkit.toml")
    assert rows["retention.raw"] == ("7d", toml_path)
    assert rows["collectors.processes"] == ({"top_n": 3}, toml_path)
    assert rows["store.queue_max_samples"] == (5000, "env MONITORKIT_STORE__QUEUE_MAX_SAMPLES")
    assert rows["serve.address"] == ("0.0.0.0", "env MONITORKIT_SERVE__ADDRESS")
    assert rows["retention.1m"] == ("90d", "default")

    table = invoke(["config"], env=env)
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert any("retention.raw" in line and '"7d"' in line and toml_path in line for line in lines)
    env_source = "env MONITORKIT_STORE__QUEUE_MAX_SAMPLES"
    assert any("store.queue_max_samples" in line and "5000" in line and env_source in line for line in lines)


def test_config_file_option_and_bad_values(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[retention]\n"1h" = "400d"\n')
    result = invoke(["config", "--json", "--config", str(other)])
    rows = {r["key"]: (r["value"], r["source"]) for r in json.loads(result.stdout)}
    assert rows["retention.1h"] == ("400d", str(other))
    bad = invoke(["config"], env={"MONITORKIT_RETENTION__RAW": "fortnight"})
    assert bad.exit_code == 1
    assert "invalid duration 'fortnight'" in bad.output and "Traceback" not in bad.output


def test_metrics_lists_registered_metrics() -> None:
    result = invoke(["metrics", "--json"])
    assert result.exit_code == 0, result.output
    names = {m["name"] for m in json.loads(result.stdout)}
    assert "cpu_percent" in names or any(n.startswith("cpu") for n in names)


@pytest.mark.slow
def test_collect_owns_the_file_then_stops_cleanly(tmp_db: Path) -> None:
    result = monitorkit_cli(["collect", "--db", str(tmp_db), "--interval", "0.5", "--duration", "2"], cwd=tmp_db.parent)
    assert result.returncode == 0, result.stderr
    assert "stopped; last batch written" in result.stderr
    with Store(tmp_db, settings=isolated_settings()) as store:
        assert store.query("SELECT count(*) > 0 FROM samples WHERE name = 'cpu_percent'") == [(True,)]
    assert not Path(f"{tmp_db}.owner.json").exists()
