"""Layouts: the JSON spec, saving in the database, and `monitorkit layouts list|export|import`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import invoke

from monitorkit.dashboard import layouts as lay
from monitorkit.dashboard.errors import LayoutError, LayoutNotFoundError
from monitorkit.owner.owner import Owner
from monitorkit.owner.schema import SCHEMA
from monitorkit.store import Store

MINE = lay.Layout("mine", (lay.PanelSpec("cpu", 4, 300), lay.PanelSpec("sql", 12, 500, {"query": "FROM latest"})), "1h", False)


def test_spec_round_trips_through_json() -> None:
    spec = json.loads(json.dumps(lay.to_spec(MINE)))
    assert lay.parse_spec(spec, "mine") == MINE
    assert lay.from_file_json(lay.to_file_json(MINE)) == MINE
    assert lay.from_file_json(lay.to_file_json(MINE), name="other").name == "other"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"panels": [{"kind": "pie"}]}, "unknown kind 'pie'"),
        ({"panels": [{"kind": "cpu", "width": 13}]}, "width must be an integer from 1 to 12"),
        ({"panels": [{"kind": "cpu", "height": 20}]}, "height must be an integer from 160"),
        ({"panels": [{"kind": "cpu", "colour": "red"}]}, "unknown keys ['colour']"),
        ({"panels": []}, "non-empty 'panels'"),
        ({"version": 2, "panels": [{"kind": "cpu"}]}, "version 2 is not supported"),
        ({"range": "2h", "panels": [{"kind": "cpu"}]}, "range '2h'"),
        ({"live": "yes", "panels": [{"kind": "cpu"}]}, "'live' must be true or false"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: object, message: str) -> None:
    with pytest.raises(LayoutError) as info:
        lay.parse_spec(spec, "x")
    assert message in str(info.value)


@pytest.mark.parametrize("name", ["", "   ", "a" * 81, "tab\there"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(LayoutError, match="layout name"):
        lay.check_name(name)


def test_file_errors() -> None:
    with pytest.raises(LayoutError, match="not valid JSON"):
        lay.from_file_json("{nope")
    with pytest.raises(LayoutError, match="no 'name'"):
        lay.from_file_json(json.dumps(lay.to_spec(MINE)))
    with pytest.raises(LayoutError, match="cannot read layout file"):
        lay.read_layout_file("/nonexistent/layout.json")


def test_save_load_default_delete(store: Store) -> None:
    cur = store.cursor()
    assert lay.list_layouts(cur) == []
    assert lay.default_layout(cur) == lay.DEFAULT_LAYOUT
    store.submit(lambda con: lay.save_layout(con, MINE)).result()
    store.submit(lambda con: lay.save_layout(con, MINE._replace(name="two"), default=True)).result()
    assert lay.load_layout(cur, "mine") == MINE
    assert [(i.name, i.is_default, i.panels) for i in lay.list_layouts(cur)] == [("two", True, 2), ("mine", False, 2)]
    assert lay.default_layout(cur).name == "two"
    store.submit(lambda con: lay.set_default(con, "mine")).result()
    assert [i.name for i in lay.list_layouts(cur) if i.is_default] == ["mine"]
    changed = MINE._replace(panels=MINE.panels[:1])
    store.submit(lambda con: lay.save_layout(con, changed)).result()
    assert lay.load_layout(cur, "mine") == changed
    assert lay.default_layout(cur).name == "mine", "saving again keeps it the default"
    store.submit(lambda con: lay.delete_layout(con, "mine")).result()
    with pytest.raises(LayoutNotFoundError, match="no layout named 'mine'"):
        lay.load_layout(cur, "mine")
    with pytest.raises(LayoutNotFoundError):
        store.submit(lambda con: lay.set_default(con, "mine")).result()
    cur.close()


def test_dashboard_tables_have_no_function_defaults(store: Store) -> None:
    rows = store.query(
        "SELECT table_name, column_name, column_default FROM duckdb_columns() "
        "WHERE table_name IN ('layouts', 'dashboard_credentials')"
    )
    assert {r[0] for r in rows} == {"layouts", "dashboard_credentials"}
    assert [r for r in rows if r[2] is not None] == []


def test_cli_export_import_list_without_owner(tmp_db: Path, tmp_path: Path) -> None:
    Store(tmp_db, schema=SCHEMA).close()
    builtin = tmp_path / "overview.json"
    result = invoke(["layouts", "export", "overview", str(builtin), "--db", str(tmp_db)])
    assert result.exit_code == 0, result.output
    assert lay.read_layout_file(builtin) == lay.DEFAULT_LAYOUT
    mine = tmp_path / "mine.json"
    mine.write_text(lay.to_file_json(MINE))
    result = invoke(["layouts", "import", str(mine), "--db", str(tmp_db), "--default"])
    assert result.exit_code == 0, result.output
    assert "into the file" in result.output
    result = invoke(["layouts", "list", "--db", str(tmp_db), "--json"])
    assert [(d["name"], d["default"], d["panels"]) for d in json.loads(result.output)] == [("mine", True, 2)]
    again = tmp_path / "again.json"
    result = invoke(["layouts", "export", "mine", str(again), "--db", str(tmp_db)])
    assert result.exit_code == 0
    assert json.loads(again.read_text()) == json.loads(mine.read_text())
    result = invoke(["layouts", "export", "missing", str(again), "--db", str(tmp_db)])
    assert result.exit_code == 1
    assert "no layout named 'missing'" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "panels": [{"kind": "pie"}]}')
    result = invoke(["layouts", "import", str(bad), "--db", str(tmp_db)])
    assert result.exit_code == 1
    assert "unknown kind 'pie'" in result.output


def test_import_needs_the_dashboard_when_an_owner_runs(tmp_db: Path) -> None:
    with Owner(tmp_db):
        with pytest.raises(LayoutError, match="does not serve the dashboard"):
            lay.install_layout(tmp_db, MINE)
