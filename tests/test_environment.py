"""environment.yml is generated from pyproject.toml and lists exactly its packages."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_is_what_pyproject_generates() -> None:
    spec = importlib.util.spec_from_file_location("environment", ROOT / "tools" / "environment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "environment.yml").read_text() == module.render(), "run `make environment.yml`"


def test_every_pyproject_package_is_in_environment_yml() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = {line.strip().removeprefix("- ") for line in (ROOT / "environment.yml").read_text().splitlines()}
    missing = [r for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]] if r not in listed]
    assert missing == []
