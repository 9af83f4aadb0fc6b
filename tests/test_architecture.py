"""The package layout keeps its promises: no import cycle, no module past 400 lines, the store imports no domain."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monitorkit"
_spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
assert _spec is not None and _spec.loader is not None
import_cycles = importlib.util.module_from_spec(_spec)
sys.modules["import_cycles"] = import_cycles
_spec.loader.exec_module(import_cycles)

# The top of the package holds shared leaves only; every job has its folder.
TOP_LEVEL = {"__init__.py", "errors.py", "config.py", "samples.py"}
DOMAINS = ("monitorkit.rules", "monitorkit.dashboard", "monitorkit.instrument", "monitorkit.collectors",
           "monitorkit.owner", "monitorkit.interop", "monitorkit.lake", "monitorkit.demo", "monitorkit.cli")


def test_no_two_files_import_each_other_directly_or_in_a_ring() -> None:
    assert import_cycles.cycles(import_cycles.import_graph(PACKAGE)) == []


def test_the_cycle_finder_finds_a_ring(tmp_path: Path) -> None:
    pkg = tmp_path / "ring"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from ring import b\n")
    (pkg / "b.py").write_text("def f():\n    from ring.c import x\n")
    (pkg / "c.py").write_text("NAME = 'ring.a:thing'\n")
    assert import_cycles.cycles(import_cycles.import_graph(pkg)) == [["ring.a", "ring.b", "ring.c"]]


def test_no_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_store_imports_no_domain() -> None:
    graph = import_cycles.import_graph(PACKAGE)
    leaks = {m: sorted(t for t in deps if t.startswith(DOMAINS)) for m, deps in graph.items() if m.startswith("monitorkit.store")}
    assert {m: d for m, d in leaks.items() if d} == {}


def test_the_top_of_the_package_holds_shared_leaves_only() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose <= TOP_LEVEL, f"loose modules at the top of monitorkit/: {sorted(loose - TOP_LEVEL)}"
