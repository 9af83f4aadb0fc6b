"""The receivers on the owner API: Prometheus remote-write 1.0 (``POST /api/v1/write``) and OTLP/HTTP metrics.

Both are behind the owner API's bearer token (the sidecar's ``api_token``) and answer only after
their batch is committed: remote_write 204 (as Prometheus does), OTLP 200; 400 for a body that
does not decode or breaks the append rules (the sender drops it), 503 when the store did not
commit or while the owner stops (the sender retries; a resend of committed samples is dropped as a
duplicate).
``[receivers] remote_write = false`` or ``otlp = false`` turns one off; ``otlp_promote = ["k8s.namespace.name"]``
copies those OTLP resource attributes onto every series.

The decoders (numpy, protobuf, opentelemetry-proto, about 100 MiB of imports) load on the first
request, so an owner nobody sends to does not carry them. Each receiver that has answered a request
writes its counters on every scheduler tick: ``monitorkit_receiver_requests_total{receiver, outcome}``
and ``monitorkit_receiver_samples_total{receiver, outcome}``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitorkit.errors import ConfigError, StoreClosedError
from monitorkit.interop.catalog import RECEIVER_REQUESTS, RECEIVER_SAMPLES
from monitorkit.interop.schema import SCHEMA
from monitorkit.owner.api import Request, Response
from monitorkit.samples import HOST, Sample

if TYPE_CHECKING:
    from monitorkit.interop.bulk import ColumnWriter
    from monitorkit.interop.metadata import MetadataLog
    from monitorkit.owner.api import OwnerApi
    from monitorkit.owner.context import OwnerContext
    from monitorkit.store import Store

REMOTE_WRITE_PATH = "/api/v1/write"
OTLP_PATH = "/v1/metrics"
MAX_BODY = 32 * 2**20
# The receivers' counters (their ``counts``) by outcome label: requests, then samples.
REQUEST_OUTCOMES = {"ok": "requests", "bad": "bad_requests", "refused": "refused_requests", "failed": "failed_requests"}
SAMPLE_OUTCOMES = {"written": "samples", "duplicate": "duplicates", "out_of_order": "out_of_order",
                   "refused": "refused", "nonfinite": "nonfinite"}
RECEIVER_NAMES = {"/api/v1/write": "remote_write", "/v1/metrics": "otlp"}


class ReceiverService:
    """Register the remote-write and OTLP routes on the owner API (``[receivers]`` turns each off)."""

    name = "receivers"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}
        self._shared: tuple[ColumnWriter, MetadataLog] | None = None
        self._ctx: OwnerContext | None = None
        self._stopped = False
        self.promote: list[str] = []

    @property
    def remote_write(self) -> Any:
        """Return the remote-write receiver once a request made it (None before)."""
        return self._built.get(REMOTE_WRITE_PATH)

    @property
    def otlp(self) -> Any:
        """Return the OTLP receiver once a request made it (None before)."""
        return self._built.get(OTLP_PATH)

    def start(self, ctx: OwnerContext) -> None:
        """Create the metadata table and register the enabled routes."""
        promote = ctx.settings.get("receivers.otlp_promote", [])
        if not isinstance(promote, list) or not all(isinstance(p, str) for p in promote):
            raise ConfigError(f"receivers.otlp_promote must be a list of resource attribute names, not {promote!r}")
        self.start_on(ctx.owner.store, ctx.api, remote_write=bool(ctx.settings.get("receivers.remote_write", True)),
                      otlp=bool(ctx.settings.get("receivers.otlp", True)), promote=promote)
        self._ctx = ctx
        ctx.scheduler.tick_hooks.append(self._tick)

    def start_on(self, store: Store, api: OwnerApi, *, remote_write: bool = True, otlp: bool = True,
                 promote: list[str] | None = None) -> None:
        """Register on ``api`` writing to ``store`` (tests and benchmarks use this without an owner)."""
        store.apply_schema(SCHEMA)
        self.store = store
        self.promote = list(promote or [])
        for path, wanted in ((REMOTE_WRITE_PATH, remote_write), (OTLP_PATH, otlp)):
            if wanted:
                api.add_route("POST", path, self._route(path), max_body=MAX_BODY)

    def _route(self, path: str) -> Any:
        def handler(request: Request) -> Response:
            if self._stopped:
                # Not 404 (Prometheus drops a batch on a 4xx): 503 makes the sender keep it for the next owner.
                return Response.text(503, "the receiver is stopping with the owner; retry (the next owner takes it)")
            receiver = self._built.get(path) or self._build(path)
            answer: Response = receiver.handle(request)
            return answer

        return handler

    def _build(self, path: str) -> Any:
        with self._lock:
            if path in self._built:
                return self._built[path]
            if self._shared is None:
                from monitorkit.interop.bulk import ColumnWriter
                from monitorkit.interop.metadata import MetadataLog

                self._shared = (ColumnWriter(self.store), MetadataLog(self.store))
            writer, metadata = self._shared
            if path == REMOTE_WRITE_PATH:
                from monitorkit.interop.remote_write import RemoteWrite

                self._built[path] = RemoteWrite(writer, metadata)
            else:
                from monitorkit.interop.otlp import OtlpReceiver

                self._built[path] = OtlpReceiver(writer, metadata, self.promote)
            return self._built[path]

    def own_samples(self, now: datetime) -> list[Sample]:
        """Return the counters of every receiver that has answered a request, as samples at ``now``."""
        out: list[Sample] = []
        for path, receiver in sorted(self._built.items()):
            counts = receiver.counts if isinstance(receiver.counts, dict) else receiver.counts.values
            counts = dict(counts)  # one C-level copy under the GIL: requests keep counting meanwhile
            name = RECEIVER_NAMES[path]
            for info, outcomes in ((RECEIVER_REQUESTS, REQUEST_OUTCOMES), (RECEIVER_SAMPLES, SAMPLE_OUTCOMES)):
                out += [Sample(now, info.name, {"receiver": name, "outcome": outcome}, float(counts.get(key, 0)), HOST)
                        for outcome, key in outcomes.items()]
        return out

    def _tick(self, now: datetime) -> None:
        samples = self.own_samples(now)
        if samples:
            try:
                self.store.write(samples, validate=False)
            except StoreClosedError:
                pass  # the owner is stopping

    def stop(self) -> None:
        """Stop counting and answer 503 from now on: the routes stay, so a sender retries instead of dropping."""
        if self._ctx is not None and self._tick in self._ctx.scheduler.tick_hooks:
            self._ctx.scheduler.tick_hooks.remove(self._tick)
        self._ctx = None
        self._stopped = True
