"""A real PostgreSQL for the lake tests: Debian's initdb and pg_ctl into a temporary folder, on 127.0.0.1.

One server per test session (``postgres``); each test gets its own database and data folder
(``lake_cfg``). Tests run as root in CI and initdb refuses root, so the server runs as the
``postgres`` user (or ``nobody``) in a folder chowned to it (postgres_server.py).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_server import Postgres, find_binary, start_postgres

from monitorkit.lake.config import LakeConfig


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Start one real PostgreSQL for the session (stopped at the end)."""
    if find_binary("initdb") is None:
        message = "PostgreSQL's initdb is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """Return a fresh shared data folder (what every host and the hub mount)."""
    folder = Path(tempfile.mkdtemp(prefix="monitorkit-lake-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_COUNTER = iter(range(1_000_000))


@pytest.fixture
def lake_cfg(postgres: Postgres, shared_folder: Path) -> LakeConfig:
    """Return the config of a new, empty lake: its own catalog database and data folder."""
    dbname = f"lake_{os.getpid()}_{next(_COUNTER)}_{int(time.time() * 1000) % 100000}"
    postgres.psql(f"CREATE DATABASE {dbname}")
    return LakeConfig(catalog=postgres.catalog(dbname), data_path=f"{shared_folder}/", host="host-a")
