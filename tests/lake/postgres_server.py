"""A real PostgreSQL in a temporary folder: Debian's initdb and pg_ctl, a free port on 127.0.0.1, trust auth.

Used by the lake tests' fixtures and by benchmarks/fleet_bench.py. As root (CI), the server runs
as the ``postgres`` user (or ``nobody``): initdb refuses root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from monitorkit.owner.sidecar import free_port


def find_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Postgres:
    """A PostgreSQL server in ``folder`` on 127.0.0.1:``port`` (trust authentication, user postgres)."""

    def __init__(self, folder: Path, port: int, user: str | None) -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.port = port
        self.user = user  # the account the server runs as (None: this process's own)
        self.log = folder / "postgres.log"

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, check=check, timeout=timeout)

    def init(self) -> None:
        """Create the cluster (initdb)."""
        initdb = find_binary("initdb")
        assert initdb, "initdb not found"
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
                   "-c max_connections=300 -c synchronous_commit=off")
        self._run(find_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: a crash, no shutdown checkpoint)."""
        self._run(find_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` with psql as user postgres and return its output."""
        psql = find_binary("psql") or "psql"
        out = subprocess.run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", dbname,
                              "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"psql failed: {out.stderr}")
        return out.stdout

    def catalog(self, dbname: str) -> str:
        """Return the DuckLake catalog string of database ``dbname``."""
        return f"postgres:host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody account exists for initdb")


def start_postgres() -> Postgres:
    """Create and start a server in a new temporary folder; ``server.stop()`` and remove ``server.folder`` after."""
    folder = Path(tempfile.mkdtemp(prefix="monitorkit-pg-"))
    user = _server_user()
    if user:
        shutil.chown(folder, user)
    server = Postgres(folder, free_port(), user)
    server.init()
    server.start()
    return server
