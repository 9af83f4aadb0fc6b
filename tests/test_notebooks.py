"""The committed notebooks, without running them: outputs only in checked cells, all documented.

Running them is `make notebooks` (nbval); this file checks what nbval cannot: a checked cell with no
saved output is silently not compared, and outputs in unchecked cells should never be committed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from monitorkit import demo

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01_getting_started.ipynb",
    "02_adhoc_sql.ipynb",
    "03_alert_rules.ipynb",
    "04_capacity_planning.ipynb",
    "05_instrumenting.ipynb",
    "06_live_dashboard.ipynb",
]


def _strip_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strip_outputs", NOTEBOOKS / "strip_outputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strip_outputs = _strip_module()


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def test_the_expected_notebooks_are_there() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_valid_and_stripped(name: str) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    assert strip_outputs.problems(nb) == [], "run: .venv/bin/python notebooks/strip_outputs.py"


@pytest.mark.parametrize("name", EXPECTED)
def test_checked_cells_have_clean_saved_outputs(name: str) -> None:
    checked = [c for c in _read(name).cells if strip_outputs.is_checked(c)]
    assert checked, f"{name} has no cell marked {strip_outputs.MARKER}"
    for cell in checked:
        first = cell.source.splitlines()[0]
        assert cell.outputs, f"{name}: checked cell {first!r}... has no saved output, so nbval would not compare it"
        for out in cell.outputs:
            assert out.output_type != "error", f"{name}: saved output is an error: {out.get('evalue')}"
            assert out.get("name") != "stderr", f"{name}: saved stderr (warnings make checks flaky): {out.text[:200]}"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_in_a_temporary_folder(name: str) -> None:
    """Notebooks must not write into data/ (they run in CI and on developers' checkouts)."""
    source = "\n".join(c.source for c in _read(name).cells if c.cell_type == "code")
    assert "tempfile.mkdtemp" in source
    assert not re.search(r"""["'](\.\./)?data/\w+\.duckdb""", source)


def test_strip_keeps_checked_outputs_only() -> None:
    nb = nbformat.v4.new_notebook()
    checked = nbformat.v4.new_code_cell(f"{strip_outputs.MARKER}\nprint(1)", execution_count=3)
    checked.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1"),
                       nbformat.v4.new_output("stream", name="stdout", text="\n")]
    plain = nbformat.v4.new_code_cell("x = 1", execution_count=4)
    plain.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=4)]
    plain.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    nb.cells = [checked, plain]
    assert len(strip_outputs.problems(nb)) == 3
    stripped = strip_outputs.strip(nb)
    assert strip_outputs.problems(stripped) == []
    assert [o.text for o in stripped.cells[0].outputs] == ["1\n"]  # streams joined as nbval compares them
    assert stripped.cells[0].execution_count == 3
    assert stripped.cells[1].outputs == [] and stripped.cells[1].execution_count is None


def test_strip_check_exits_1_when_something_to_strip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells = [cell]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert strip_outputs.main(["--check", str(path)]) == 1
    assert "outputs in a cell without" in capsys.readouterr().out
    assert strip_outputs.main([str(path)]) == 0
    assert strip_outputs.main(["--check", str(path)]) == 0


def test_docs_list_every_notebook_and_incident() -> None:
    text = (ROOT / "docs" / "notebooks.md").read_text()
    for name in EXPECTED:
        assert f"`{name}`" in text, f"docs/notebooks.md does not describe {name}"
    for incident in demo.INCIDENTS:
        row = (f"| `{incident.kind}` | {incident.host} | {incident.start:%a %Y-%m-%d %H:%M} | "
               f"{incident.end:%a %Y-%m-%d %H:%M} |")
        assert row in text, f"docs/notebooks.md has no row {row!r}"


def test_recording_is_committed_small_and_readable() -> None:
    import duckdb

    path = ROOT / "data" / "recording.parquet"
    assert path.stat().st_size < 5_000_000
    names, span = duckdb.sql(  # type: ignore[misc]
        f"SELECT count(DISTINCT name), epoch(max(time) - min(time)) FROM read_parquet('{path}')"
    ).fetchone()
    assert names >= 20 and span >= 240
    columns = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]
    assert columns == ["time", "host", "name", "labels", "value"]


def test_every_sanitize_rule_masks_a_saved_output() -> None:
    """A rule that matches no checked output hides nothing today but would hide a regression tomorrow."""
    import configparser

    config = configparser.ConfigParser()
    config.read(NOTEBOOKS / "sanitize.cfg")
    saved = "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for name in EXPECTED for cell in _read(name).cells if strip_outputs.is_checked(cell) for out in cell.outputs
    )
    for section in config.sections():
        assert re.search(config[section]["regex"], saved), f"sanitize.cfg [{section}] masks no saved output: drop it"


@pytest.mark.parametrize("name", EXPECTED)
def test_plots_load_their_javascript_from_the_notebook(name: str) -> None:
    """Bokeh and Panel inline (no CDN): plots render in an air-gapped JupyterLab and in exported HTML."""
    source = "\n".join(c.source for c in _read(name).cells if c.cell_type == "code")
    assert "pn.extension(" not in source, "use monitorkit.dashboard.notebook.extension(): Panel inline"
    if "output_notebook" in source:
        assert re.search(r"output_notebook\(INLINE\b", source), "output_notebook(INLINE, ...): BokehJS inline"
    if "monitorkit.dashboard.dashboard(" in source:
        assert "extension()" in source
