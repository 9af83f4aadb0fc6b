#!/usr/bin/env python3
"""Write environment.yml from pyproject.toml, so the conda file cannot drift: ``python tools/environment.py > environment.yml``.

Every package comes from the package index through pip inside the conda environment: DuckDB's
extension wheels exist only there, and one source keeps the pins exactly those of pyproject.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """Return the environment.yml text for ``pyproject``: the runtime dependencies and the dev extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    python = project["requires-python"].removeprefix(">=")
    lines = [
        "# Generated from pyproject.toml by tools/environment.py (make environment.yml); do not edit.",
        "# conda users: `conda env create -f environment.yml && conda activate monitorkit`",
        "name: monitorkit",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={python}",
        "  - pip",
        "  - pip:",
    ]
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        lines.append(f"      - {requirement}")
    lines.append("      - -e .")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
