"""The owner's Quack endpoint, opened when the first reader asks for it (``POST /v1/quack``).

Why not at start: registering the readers' allowlist as a Python UDF makes DuckDB import numpy
(about 13 MiB), and the Quack server with the httpfs extension it loads is about 15 MiB more
(RSS of an owner step by step, `.venv/bin/python benchmarks/owner_memory_bench.py`). Most owners
are never attached over Quack: ``monitorkit sql``, ``monitorkit.connect()`` and applications use
the owner API, the dashboard reads the owner's own store. A reader that wants DuckDB's own
protocol (the notebook console, ``ATTACH 'quack:…'``) asks the owner API to open it and is told
the port and token; the sidecar then publishes the port as well.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb

from monitorkit.errors import StoreError
from monitorkit.owner.api import OwnerApi, Request, Response
from monitorkit.owner.client import QUACK_PATH
from monitorkit.owner.readers import ReaderPolicy
from monitorkit.owner.sidecar import free_port
from monitorkit.store import Store, duck
from monitorkit.store.status import Part

AUTHORIZER = "monitorkit_reader_admit"


class QuackDoor:
    """The Quack endpoint of one owner: closed until ``open()``; then serving until ``close()``."""

    def __init__(self, store: Store, readers: ReaderPolicy, token: str, on_open: Callable[[int], None]) -> None:
        self.store = store
        self.readers = readers
        self.token = token
        self.port = 0
        self._on_open = on_open
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None  # why the last open failed, until one succeeds

    def register(self, api: OwnerApi) -> None:
        """Answer ``POST /v1/quack`` on ``api``: open the endpoint (once) and say where it listens."""
        api.add_route("POST", QUACK_PATH, self.handle)

    def handle(self, request: Request) -> Response:
        """Open the endpoint if needed; answer its port and token."""
        try:
            port = self.open()
        except StoreError as exc:
            return Response.json(503, {"error": str(exc)})
        return Response.json(200, {"port": port, "token": self.token})

    def open(self) -> int:
        """Start serving Quack on a free loopback port (once; later calls return the same port)."""
        with self._lock:
            if self.port:
                return self.port
            try:
                return self._open()
            except StoreError as exc:
                self.last_error = str(exc)  # health says so until an open succeeds
                raise

    def _open(self) -> int:
        """Register the allowlist and start the server (the caller holds the lock)."""
        con = self.store.cursor()
        try:
            # Quack asks this Python callback before every client statement: the allowlist, on the parse tree.
            con.create_function(AUTHORIZER, self.readers.admit, ["VARCHAR", "VARCHAR"], "BOOLEAN")
        except (duckdb.Error, ImportError) as exc:  # DuckDB's Python UDFs need numpy
            con.close()
            raise StoreError(f"could not register the readers' allowlist for the Quack endpoint "
                             f"(DuckDB's Python UDFs need numpy: pip install numpy): {exc}") from exc
        last: Exception | None = None
        for _ in range(5):  # a port picked as free can be taken before quack binds it
            port = free_port()
            try:
                duck.quack_serve(con, port, self.token, authorization=AUTHORIZER)
            except duckdb.Error as exc:
                last = exc
                continue
            self._con, self.port, self.last_error = con, port, None
            self._on_open(port)
            return port
        con.close()
        raise StoreError(f"could not start the Quack endpoint: {last}")

    def part(self) -> Part:
        """Return the endpoint's health: not opened yet is fine; opened and no longer serving is not."""
        if not self.port and self.last_error is not None:
            return Part("quack", "failing", f"a reader asked and it could not open: {self.last_error}")
        if not self.port:
            return Part("quack", "ok", f"opens on a reader's first request (POST {QUACK_PATH})")
        cur = self.store.cursor()
        try:
            serving = cur.execute("SELECT count(*) FROM quack_server_list()").fetchone()
        except duckdb.Error as exc:
            return Part("quack", "failing", f"cannot list Quack servers: {exc}")
        finally:
            cur.close()
        if serving and serving[0]:
            return Part("quack", "ok", f"serving readers on 127.0.0.1:{self.port}")
        return Part("quack", "failing", "the Quack endpoint stopped: readers attached over Quack are cut off; restart the owner")

    def close(self) -> None:
        """Stop serving (if it was opened)."""
        with self._lock:
            if self._con is not None and self.port:
                try:
                    duck.quack_stop(self._con, self.port)
                except duckdb.Error:
                    pass  # already stopped; the file is what matters
            self._con = None
