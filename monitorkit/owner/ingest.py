"""The owner's ingest routes: instrumented applications POST samples and tool runs, the owner writes them.

``IngestService`` runs inside the owner (``runtime.DEFAULT_SERVICES``) and registers
``POST /v1/samples`` and ``POST /v1/executions`` on the owner API (``owner/api.py``: one
loopback server, one token, published in the sidecar as ``api_port`` / ``api_token``). A batch
is JSON lines or an Arrow IPC stream; every row is validated and an invalid batch is refused
whole with 400 and the reason. 200 means committed, 202 queued but not yet committed.
Writes go through the store's writer thread (Quack clients are read-only by design).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from monitorkit.errors import InvalidSampleError, StoreClosedError, StoreWriteError
from monitorkit.instrument.catalog import INGEST_EXECUTIONS, INGEST_REQUESTS, INGEST_SAMPLES
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.instrument.tools import Execution
from monitorkit.instrument.transport import EXECUTIONS_PATH, SAMPLES_PATH, Delivery
from monitorkit.instrument.wire import decode_executions, decode_samples, executions_table
from monitorkit.owner.api import MAX_BODY_BYTES, OwnerApi, Request, Response
from monitorkit.samples import HOST, Sample
from monitorkit.store import Store
from monitorkit.store.status import Part
from monitorkit.store.writer import describe

if TYPE_CHECKING:
    from monitorkit.owner.context import OwnerContext

log = logging.getLogger(__name__)
REFUSING_WINDOW = 60.0  # seconds ingest shows degraded after refusing a batch it could not store



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

    def __init__(self, store: Store, commit_timeout: float = 10.0) -> None:
        self.store = store
        self.commit_timeout = commit_timeout
        self.refused_at = -1e18  # monotonic time of the last batch refused because it could not be stored
        self.refused_reason = ""

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
        except StoreWriteError as exc:  # not stored: the sender keeps the batch and sends it again
            self.refused_at, self.refused_reason = time.monotonic(), str(exc)
            return Delivery(503, f"{exc}; keep the batch and retry")
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
            log.error("writing %d tool runs failed (%s): %s", len(rows), describe(exc), exc)
            self.refused_at, self.refused_reason = time.monotonic(), f"tool runs were not stored: {describe(exc)}"
            return Delivery(503, f"tool runs were not stored ({describe(exc)}: {exc}); keep them and retry")
        return Delivery(200, f"committed {len(rows)} tool runs")


class IngestService:
    """Take batches from applications (over the owner API or in this process) and write them."""

    name = "ingest"

    def __init__(self, *, commit_timeout: float = 10.0, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.commit_timeout = commit_timeout
        self.max_body_bytes = max_body_bytes
        self.samples = 0
        self.executions = 0
        self._stats_lock = threading.Lock()
        self._api: OwnerApi | None = None

    def start(self, ctx: OwnerContext) -> None:
        """Register the ingest routes on the owner API, keep tool runs to their retention, count on every tick."""
        self.store = ctx.owner.store
        self.store.apply_schema(EXECUTIONS_SCHEMA)
        self.store.retain("executions", table="executions", column="started")
        self.sink = StoreSink(self.store, self.commit_timeout)
        self._api = ctx.api
        ctx.api.add_route("POST", SAMPLES_PATH, self._post_samples, max_body=self.max_body_bytes)
        ctx.api.add_route("POST", EXECUTIONS_PATH, self._post_executions, max_body=self.max_body_bytes)
        ctx.scheduler.tick_hooks.append(self._tick)

    def stop(self) -> None:
        """Take the routes off the API; batches already accepted stay queued in the store's writer."""
        if self._api is not None:
            self._api.remove_route("POST", SAMPLES_PATH)
            self._api.remove_route("POST", EXECUTIONS_PATH)
            self._api = None

    def _answer(self, answer: Delivery) -> Response:
        return Response.text(answer.status, answer.message)

    def _post_samples(self, request: Request) -> Response:
        try:
            return self._answer(self.accept_samples(decode_samples(request.content_type, request.body), validated=True))
        except InvalidSampleError as exc:
            return self._answer(Delivery(400, str(exc)))

    def _post_executions(self, request: Request) -> Response:
        try:
            return self._answer(self.accept_executions(decode_executions(request.content_type, request.body)))
        except InvalidSampleError as exc:
            return self._answer(Delivery(400, str(exc)))

    def parts(self) -> list[Part]:
        """Return the ingest door's health: degraded while it refuses batches it cannot store."""
        if time.monotonic() - self.sink.refused_at < REFUSING_WINDOW:
            return [Part("ingest", "degraded", f"refusing batches with 503: {self.sink.refused_reason}"[:300])]
        return [Part("ingest", "ok", f"{self.samples} samples and {self.executions} tool runs taken")]

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
        answered = self._api.answered((SAMPLES_PATH, EXECUTIONS_PATH)) if self._api is not None else {}
        with self._stats_lock:
            out = [Sample(now, INGEST_REQUESTS.name, {"status": str(status)}, float(n), HOST)
                   for status, n in sorted(answered.items())]
            out.append(Sample(now, INGEST_SAMPLES.name, {}, float(self.samples), HOST))
            out.append(Sample(now, INGEST_EXECUTIONS.name, {}, float(self.executions), HOST))
        self.store.write(out, validate=False)
