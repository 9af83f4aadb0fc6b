"""Output that survives terminals and pipes: literal data, nothing cut, labels as objects, CSV of nested values."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import invoke
from store_helpers import isolated_settings

from monitorkit import Sample, Store
from monitorkit.catalog import all_metrics
from monitorkit.cli import output

T = datetime(2025, 5, 1, 8, 30, tzinfo=UTC)
LONG = "cpu_seconds_total_of_a_rather_long_application_metric"


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MONITORKIT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(tmp_db: Path) -> Path:
    with Store(tmp_db, settings=isolated_settings()) as store:
        store.write([Sample(T, "cpu_percent", {"cpu": "0", "mode": "user"}, 12.5, "h1"),
                     Sample(T, LONG, {}, 3.0, "h1")])
    return tmp_db


LITERAL = "SELECT 'root:x:0:0' AS passwd, '[red]hello[/red]' AS markup, ':cross_mark: :smile:' AS emoji"


@pytest.mark.parametrize("fmt", ["table", "plain"])
def test_data_is_printed_literally(db: Path, fmt: str) -> None:
    result = invoke(["sql", LITERAL, "--format", fmt], db=db)
    assert result.exit_code == 0, result.output
    for text in ("root:x:0:0", "[red]hello[/red]", ":cross_mark: :smile:"):
        assert text in result.stdout
    assert "❌" not in result.stdout and "\x1b[" not in result.stdout


def test_plain_is_complete_and_one_line_per_row(db: Path) -> None:
    listed = invoke(["metrics"], width=80)  # stdout is not a terminal: plain, whatever the width
    infos = all_metrics()
    lines = listed.stdout.splitlines()
    assert len(lines) == len(infos) + 1
    for info, line in zip(infos, lines[1:], strict=True):
        assert line.startswith(info.name + " ") and line.endswith(info.help)
    assert max(map(len, lines)) > 80  # nothing was wrapped or cut to fit
    cell = invoke(["sql", "SELECT 'two' || chr(10) || 'lines' AS text"], db=db)
    assert cell.stdout.splitlines() == ["text", "two\\nlines"]


def test_table_fits_80_columns_without_cutting_names(db: Path) -> None:
    listed = invoke(["metrics", "--format", "table"], width=80)
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    words = set(listed.stdout.split())
    for info in all_metrics():
        assert info.name in words  # each name whole on one line
    assert "…" not in listed.stdout

    query = "SELECT name, labels, value, 'a long free text column that has to wrap somewhere' AS note FROM samples"
    wide = invoke(["sql", query, "--format", "table"], db=db, width=80)
    assert max(map(len, wide.stdout.splitlines())) <= 80
    assert LONG in wide.stdout.split() and "{cpu=0, mode=user}" in " ".join(wide.stdout.split())
    assert "2 rows" in wide.stdout


def test_table_too_wide_for_the_terminal_shows_records() -> None:
    rows = [{"name": LONG, "other": "x" * 30, "third": "y" * 30}]
    text = output.render_table(rows, ["name", "other", "third"], width=60)
    assert text.splitlines() == ["-- 1 " + "-" * 55, f"name   {LONG}", "other  " + "x" * 30, "third  " + "y" * 30]


def test_table_wraps_long_text_before_short_columns() -> None:
    rows = [{"when": "2024-05-01 10:02:00", "rule": "slow", "outcome": "pending only (never fired)"}]
    text = output.render_table(rows, ["when", "rule", "outcome"], width=42)
    assert text.splitlines() == [
        "when                 rule  outcome",
        "-------------------  ----  -------------",
        "2024-05-01 10:02:00  slow  pending only",
        "                           (never fired)",
    ]


def test_default_format_follows_the_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert output.default_format(Tty()) == "table"
    assert output.default_format(io.StringIO()) == "plain"


def test_json_labels_are_objects(db: Path) -> None:
    rows = json.loads(invoke(["sql", "SELECT name, labels FROM samples ORDER BY name", "--json"], db=db).stdout)
    assert rows == [{"name": "cpu_percent", "labels": {"cpu": "0", "mode": "user"}}, {"name": LONG, "labels": {}}]
    nested = json.loads(invoke(["sql", "SELECT [MAP {'a': 1}] AS l, {'m': MAP {'k': 'v'}} AS s", "--json"],
                               db=db).stdout)
    assert nested == [{"l": [{"a": 1}], "s": {"m": {"k": "v"}}}]
    listed = json.loads(invoke(["metrics", "--format", "json"]).stdout)
    assert next(m for m in listed if m["name"] == "cpu_percent")["labels"] == ["cpu"]


def test_csv_flattens_map_and_list_columns(db: Path, tmp_path: Path) -> None:
    query = "SELECT name, labels, [1, 2] AS l, {'a': 1} AS s, NULL::MAP(VARCHAR, VARCHAR) AS n FROM samples ORDER BY name"
    result = invoke(["sql", query, "--format", "csv"], db=db)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert json.loads(rows[0]["labels"]) == {"cpu": "0", "mode": "user"}
    assert (rows[0]["l"], rows[0]["s"], rows[0]["n"]) == ("[1,2]", '{"a":1}', "")
    assert json.loads(rows[1]["labels"]) == {}
    out = tmp_path / "out.csv"
    assert invoke(["sql", query, "--format", "csv", "-o", str(out)], db=db).exit_code == 0
    assert out.read_text() == result.stdout
    alerts_csv = invoke(["metrics", "--format", "csv"]).stdout
    row = next(r for r in csv.DictReader(io.StringIO(alerts_csv)) if r["name"] == "disk_used_bytes")
    assert json.loads(row["labels"]) == ["mount", "device", "fstype"]
