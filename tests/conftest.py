"""Shared fixtures: a database path in a temporary folder, isolated settings, a store, child pythons."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_helpers import isolated_settings, run_python

from monitorkit.config import Settings
from monitorkit.owner.schema import SCHEMA
from monitorkit.store import Store


@pytest.fixture
def tmp_db(tmp_path: Path) -> Path:
    """Return a database path (not yet created) in a fresh temporary folder."""
    return tmp_path / "monitorkit.duckdb"


@pytest.fixture
def settings() -> Settings:
    """Return default settings unaffected by ./monitorkit.toml and MONITORKIT_* variables."""
    return isolated_settings()


@pytest.fixture
def store(tmp_db: Path, settings: Settings) -> Iterator[Store]:
    """Return an open Store on ``tmp_db`` with every domain's tables, as an owner opens it (closed after the test)."""
    with Store(tmp_db, settings=settings, schema=SCHEMA) as s:
        yield s


@pytest.fixture
def venv_python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Return the helper that runs code in a child venv python: ``venv_python(code, *args)``."""
    return run_python
