"""The owner's ingest endpoint: instrumented applications POST samples and tool runs, the owner writes them.

``IngestService`` runs inside the owner (``runtime.DEFAULT_SERVICES``): an HTTP server on
127.0.0.1 and a free port, guarded by a random bearer token, both published in the sidecar
(``ingest_port``, ``ingest_token``). ``POST /v1/samples`` and ``POST /v1/executions`` take a
batch as JSON lines or an Arrow IPC stream; every row is validated and an invalid batch is
refused whole with 400 and the reason. 200 means committed, 202 queued but not yet committed.
Writes go through the store's writer thread (Quack clients are read-only by design).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from monitorkit.config import parse_duration
from monitorkit.errors import InvalidSampleError, StoreClosedError
from monitorkit.instrument.catalog import INGEST_EXECUTIONS, INGEST_REQUESTS, INGEST_SAMPLES
from monitorkit.instrument.tools import Execution
from monitorkit.instrument.transport import EXECUTIONS_PATH, SAMPLES_PATH, Delivery
from monitorkit.instrument.wire import decode_executions, decode_samples, executions_table
from monitorkit.samples import HOST, Sample
from monitorkit.store import Store

if TYPE_CHECKING:
    from monitorkit.owner.runtime import OwnerContext

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 2**20
RETENTION_CHECK_SECONDS = 3600.0
DEFAULT_EXECUTIONS_RETENTION = "90d"


_LOCAL: dict[str, IngestService] = {}


def _key(db: str | Path) -> str:
    return str(Path(db).resolve())


def local_service(db: str | Path) -> IngestService | None:
    """Return the IngestService running in this process for ``db``, if any (applications write to it directly)."""
    return _LOCAL.get(_key(db))


def write_executions(store: Store, rows: list[Execution]) -> Future[object]:
    """Insert tool runs through the store's writer thread; a run_id already stored is skipped (a resend)."""
    table = executions_table(rows)

    def insert(con: duckdb.DuckDBPyConnection) -> None:
        con.register("_mk_executions", table)
        try:
            con.execute(
                "INSERT OR IGNORE INTO executions SELECT run_id, tool, started, duration_s, outcome, error_type, "
                "error_message, labels, host, pid FROM _mk_executions"
            )
        finally:
            con.unregister("_mk_executions")

    return store.submit(insert)


class StoreSink:
    """Write validated batches to a Store and say whether they were committed within ``commit_timeout``."""

    def __init__(self, store: Store, commit_timeout: float = 2.0) -> None:
        self.store = store
        self.commit_timeout = commit_timeout

    def accept_samples(self, samples: list[Sample], *, validated: bool = False) -> Delivery:
        """Queue samples and wait (bounded) for their commit: 200 committed, 202 queued, 400 invalid, 503 closed."""
        try:
            self.store.write(samples, validate=not validated)
        except InvalidSampleError as exc:
            return Delivery(400, str(exc))
        except StoreClosedError as exc:
            return Delivery(503, str(exc))
        try:
            self.store.flush(self.commit_timeout)
        except FutureTimeout:
            return Delivery(202, f"queued {len(samples)} samples")
        return Delivery(200, f"committed {len(samples)} samples")

    def accept_executions(self, rows: list[Execution]) -> Delivery:
        """Insert tool runs and wait (bounded) for the commit: 200, 202, 500 on a database error, 503."""
        try:
            future = write_executions(self.store, rows)
        except StoreClosedError as exc:
            return Delivery(503, str(exc))
        try:
            future.result(self.commit_timeout)
        except FutureTimeout:
            return Delivery(202, f"queued {len(rows)} tool runs")
        except duckdb.Error as exc:
            log.error("writing %d tool runs failed: %s", len(rows), exc)
            return Delivery(500, f"writing tool runs failed: {exc}")
        return Delivery(200, f"committed {len(rows)} tool runs")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    service: IngestService


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "monitorkit-ingest/1"
    timeout = 30  # seconds a client may stall mid-request before its thread gives up

    def do_POST(self) -> None:
        svc = self.server.service
        given = self.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, f"Bearer {svc.token}".encode()):
            self._reply(401, "missing or wrong token: read ingest_token from the owner's sidecar file")
            return
        if self.path not in (SAMPLES_PATH, EXECUTIONS_PATH):
            self._reply(404, f"unknown path {self.path}; POST to {SAMPLES_PATH} or {EXECUTIONS_PATH}")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(411, "Content-Length is required")
            return
        if length > svc.max_body_bytes:
            self.close_connection = True
            self._reply(413, f"batch of {length} bytes is over the limit of {svc.max_body_bytes}; send smaller ones")
            return
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        try:
            if self.path == SAMPLES_PATH:
                answer = svc.accept_samples(decode_samples(content_type, body), validated=True)
            else:
                answer = svc.accept_executions(decode_executions(content_type, body))
        except InvalidSampleError as exc:
            answer = Delivery(400, str(exc))
        self._reply(answer.status, answer.message)

    def _reply(self, status: int, message: str) -> None:
        self.server.service.count_request(status)
        data = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ingest %s - %s", self.address_string(), format % args)


class IngestService:
    """Serve the ingest endpoint inside the owner and write what applications send."""

    name = "ingest"

    def __init__(self, *, commit_timeout: float = 2.0, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.commit_timeout = commit_timeout
        self.max_body_bytes = max_body_bytes
        self.token = secrets.token_urlsafe(24)
        self.port = 0
        self.requests: dict[str, int] = {}
        self.samples = 0
        self.executions = 0
        self._stats_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._db_key = ""
        self._next_retention = 0.0

    def start(self, ctx: OwnerContext) -> None:
        """Serve on 127.0.0.1:<free port>, publish port and token in the sidecar, hook into the ticks."""
        self.store = ctx.owner.store
        self.sink = StoreSink(self.store, self.commit_timeout)
        self.retention = parse_duration(ctx.settings.get("retention.executions", DEFAULT_EXECUTIONS_RETENTION))
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.service = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name="monitorkit-ingest", daemon=True
        )
        self._thread.start()
        ctx.owner.publish(ingest_port=self.port, ingest_token=self.token)
        self._db_key = _key(ctx.owner.db)
        _LOCAL[self._db_key] = self
        ctx.scheduler.tick_hooks.append(self._tick)

    def stop(self) -> None:
        """Stop serving; batches already accepted stay queued in the store's writer."""
        if _LOCAL.get(self._db_key) is self:
            del _LOCAL[self._db_key]
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def count_request(self, status: int) -> None:
        """Count one answered request by status."""
        with self._stats_lock:
            self.requests[str(status)] = self.requests.get(str(status), 0) + 1

    def accept_samples(self, samples: list[Sample], *, validated: bool = False) -> Delivery:
        """Write a batch of samples (from HTTP or an application in this process)."""
        answer = self.sink.accept_samples(samples, validated=validated)
        if answer.ok:
            with self._stats_lock:
                self.samples += len(samples)
        return answer

    def accept_executions(self, rows: list[Execution]) -> Delivery:
        """Write a batch of tool runs (from HTTP or an application in this process)."""
        answer = self.sink.accept_executions(rows)
        if answer.ok:
            with self._stats_lock:
                self.executions += len(rows)
        return answer

    def _tick(self, now: datetime) -> None:
        with self._stats_lock:
            out = [Sample(now, INGEST_REQUESTS.name, {"status": status}, float(n), HOST)
                   for status, n in self.requests.items()]
            out.append(Sample(now, INGEST_SAMPLES.name, {}, float(self.samples), HOST))
            out.append(Sample(now, INGEST_EXECUTIONS.name, {}, float(self.executions), HOST))
        self.store.write(out, validate=False)
        epoch = now.timestamp()
        if epoch >= self._next_retention:
            self._next_retention = epoch + RETENTION_CHECK_SECONDS
            cutoff = now - self.retention
            self.store.submit(lambda con: con.execute("DELETE FROM executions WHERE started < ?", [cutoff]))
