"""Strip outputs from notebook cells that nbval does not check, so only checked outputs are committed.

``python notebooks/strip_outputs.py`` strips every notebook in this folder in place;
``--execute`` first re-runs each one (in this folder, with this Python) to refresh the checked outputs;
``--check`` changes nothing and exits 1 listing the cells that still hold outputs (or run metadata).
A cell is checked when its source contains ``# NBVAL_CHECK_OUTPUT``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

MARKER = "# NBVAL_CHECK_OUTPUT"
HERE = Path(__file__).resolve().parent
RUN_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")


def is_checked(cell: nbformat.NotebookNode) -> bool:
    """Tell whether nbval compares this cell's outputs."""
    return cell.cell_type == "code" and MARKER in cell.source


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return ``nb`` with outputs (and execution counts) kept only in checked cells, and no run metadata."""
    for cell in nb.cells:
        for key in RUN_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        if is_checked(cell):  # nbval refuses outputs of a cell without an execution count
            cell.outputs = coalesce(cell.outputs)
            cell.execution_count = (cell.execution_count or 1) if cell.outputs else None
            continue
        cell.execution_count = None
        cell.outputs = []
    nb.metadata.pop("widgets", None)
    return nb


def coalesce(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """Return ``outputs`` with consecutive parts of the same stream joined, as nbval compares them."""
    out: list[nbformat.NotebookNode] = []
    for item in outputs:
        if item.output_type == "stream" and out and out[-1].output_type == "stream" and out[-1].name == item.name:
            out[-1].text += item.text
        else:
            out.append(item)
    return out


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """Return what ``strip`` would change: outputs or execution counts of unchecked cells, run metadata."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            if cell.outputs and cell.execution_count is None:
                found.append(f"cell {index}: checked outputs without an execution count (nbval refuses them)")
            continue
        if cell.outputs:
            found.append(f"cell {index}: outputs in a cell without {MARKER}")
        if cell.execution_count is not None:
            found.append(f"cell {index}: execution count {cell.execution_count} in a cell without outputs to check")
        if any(key in cell.metadata for key in RUN_METADATA):
            found.append(f"cell {index}: run metadata")
    if "widgets" in nb.metadata:
        found.append("notebook: widget state in metadata")
    return found


def execute(nb: nbformat.NotebookNode, folder: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` in a fresh kernel started in ``folder`` and return it with its outputs."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    return nb


def notebooks(paths: list[str]) -> list[Path]:
    """Return the notebooks named, or every notebook beside this script."""
    return [Path(p) for p in paths] if paths else sorted(HERE.glob("*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    """Strip (or with --check, report) the notebooks; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="report, change nothing, exit 1 if anything to strip")
    parser.add_argument("--execute", action="store_true", help="re-run each notebook first (refreshes checked outputs)")
    args = parser.parse_args(argv)
    bad = 0
    for path in notebooks(args.paths):
        nb = nbformat.read(path, as_version=4)
        if args.execute and not args.check:
            print(f"running {path} ...", flush=True)
            nbformat.write(strip(execute(nb, path.resolve().parent)), path)
            continue
        if args.check:
            for problem in problems(nb):
                print(f"{path}: {problem}")
                bad += 1
        elif problems(nb):
            nbformat.write(strip(nb), path)
            print(f"stripped {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
