"""The receivers on the owner API: Prometheus remote-write 1.0 (``POST /api/v1/write``) and OTLP/HTTP metrics.

Both are behind the owner API's bearer token (the sidecar's ``api_token``) and answer only after
their batch is committed: remote_write 204 (as Prometheus does), OTLP 200; 400 for a body that
does not decode or breaks the append rules (the sender drops it), 503 when the store did not
commit (the sender retries; a resend of committed samples is dropped as a duplicate).
``[receivers] remote_write = false`` or ``otlp = false`` turns one off; ``otlp_promote = ["k8s.namespace.name"]``
copies those OTLP resource attributes onto every series.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from monitorkit.errors import ConfigError, InvalidSampleError, StoreClosedError
from monitorkit.interop.bulk import AppendRefused, ColumnWriter, CommitFailed, SeriesSpec
from monitorkit.interop.remote_write import Metadata, RemoteWriteError, decode_body, labels_of
from monitorkit.interop.schema import SCHEMA
from monitorkit.interop.scrape import host_of
from monitorkit.owner.api import Request, Response
from monitorkit.samples import HOST, validate_labels, validate_name

if TYPE_CHECKING:
    from monitorkit.owner.api import OwnerApi
    from monitorkit.owner.context import OwnerContext
    from monitorkit.store import Store

log = logging.getLogger(__name__)
REMOTE_WRITE_PATH = "/api/v1/write"
OTLP_PATH = "/v1/metrics"
MAX_BODY = 32 * 2**20
MAX_CACHED_SERIES = 1_000_000


def spec_of(name: str | None, labels: dict[str, str]) -> SeriesSpec | None:
    """Return the series of a remote or OTLP label set, or None if the store would refuse it.

    The host column: a ``host`` label, else the host of ``instance`` (loopback ones: this machine), else this machine.
    """
    try:
        checked = validate_labels(labels, metric=name or "")
        validate_name(name)
    except InvalidSampleError:
        return None
    instance = checked.get("instance")
    host = checked.get("host") or (host_of(instance) if instance else HOST)
    return SeriesSpec(host, name or "", checked)


class Counts:
    """What a receiver did since start, by outcome (for the owner's health and for tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, int] = {}

    def add(self, **counts: int) -> None:
        """Add to the named counters."""
        with self._lock:
            for key, n in counts.items():
                self.values[key] = self.values.get(key, 0) + n


class RemoteWrite:
    """Decode remote-write requests and append them; series are remembered by their label bytes."""

    def __init__(self, writer: ColumnWriter, on_metadata: Callable[[list[Metadata], str], None] | None = None) -> None:
        self.writer = writer
        self.on_metadata = on_metadata
        self.counts = Counts()
        self._ids: dict[bytes, int] = {}  # label bytes -> series id (0: refused)

    def handle(self, request: Request) -> Response:
        """Answer one POST /api/v1/write."""
        try:
            decoded = decode_body(request.body)
        except RemoteWriteError as exc:
            self.counts.add(bad_requests=1)
            return Response.text(400, str(exc))
        if decoded.metadata and self.on_metadata is not None:
            self.on_metadata(decoded.metadata, "remote_write")
        cache = self._ids
        ids = np.array([cache.get(key, -1) for key in decoded.keys], np.int64)
        specs: dict[int, SeriesSpec | None] = {}
        for i in np.flatnonzero(ids == -1).tolist():
            labels = labels_of(decoded.keys[i])
            specs[i] = spec_of(labels.pop("__name__", None), labels)
        try:
            result = self.writer.write(ids, specs, decoded.series, decoded.ts_ms, decoded.values)
        except AppendRefused as exc:
            self.counts.add(refused_requests=1)
            return Response.text(400, str(exc))
        except CommitFailed as exc:
            self.counts.add(failed_requests=1)
            return Response.text(503, str(exc))
        if len(cache) > MAX_CACHED_SERIES:
            cache.clear()
        for i in specs:
            cache[decoded.keys[i]] = int(result.ids[i])
        self.counts.add(requests=1, samples=result.written, duplicates=result.duplicates,
                        out_of_order=result.out_of_order, refused=result.refused, nonfinite=result.nonfinite)
        return Response(204, b"")


class MetadataLog:
    """Keep the metric metadata peers send in ``metric_metadata``, writing only what changed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._seen: dict[tuple[str, str], Metadata] = {}
        self._lock = threading.Lock()

    def __call__(self, items: list[Metadata], source: str) -> None:
        """Record ``items`` from ``source`` (remote_write, otlp) unless unchanged."""
        with self._lock:
            changed = [m for m in items if self._seen.get((m.name, source)) != m]
            for m in changed:
                self._seen[(m.name, source)] = m
        if not changed:
            return
        now = datetime.now(UTC)
        table = pa.table({"name": [m.name for m in changed], "source": [source] * len(changed),
                          "type": [m.type for m in changed], "help": [m.help for m in changed],
                          "unit": [m.unit for m in changed], "updated_at": pa.array([now] * len(changed),
                                                                                     pa.timestamp("us", tz="UTC"))})

        def upsert(con: duckdb.DuckDBPyConnection) -> None:
            con.register("_mk_metadata", table)
            try:
                con.execute("INSERT OR REPLACE INTO metric_metadata SELECT * FROM _mk_metadata")
            finally:
                con.unregister("_mk_metadata")

        try:
            self.store.submit(upsert, urgent=False)
        except StoreClosedError:
            pass


class ReceiverService:
    """Register the remote-write and OTLP routes on the owner API (``[receivers]`` turns each off)."""

    name = "receivers"

    def __init__(self) -> None:
        self._api: OwnerApi | None = None
        self._paths: list[str] = []
        self.remote_write: RemoteWrite | None = None
        self.otlp: Any = None

    def start(self, ctx: OwnerContext) -> None:
        """Create the metadata table and register the enabled routes."""
        promote = ctx.settings.get("receivers.otlp_promote", [])
        if not isinstance(promote, list) or not all(isinstance(p, str) for p in promote):
            raise ConfigError(f"receivers.otlp_promote must be a list of resource attribute names, not {promote!r}")
        self.start_on(ctx.owner.store, ctx.api, remote_write=bool(ctx.settings.get("receivers.remote_write", True)),
                      otlp=bool(ctx.settings.get("receivers.otlp", True)), promote=promote)

    def start_on(self, store: Store, api: OwnerApi, *, remote_write: bool = True, otlp: bool = True,
                 promote: list[str] | None = None) -> None:
        """Register on ``api`` writing to ``store`` (tests and benchmarks use this without an owner)."""
        store.apply_schema(SCHEMA)
        writer = ColumnWriter(store)
        metadata = MetadataLog(store)
        self._api = api
        if remote_write:
            self.remote_write = RemoteWrite(writer, metadata)
            api.add_route("POST", REMOTE_WRITE_PATH, self.remote_write.handle, max_body=MAX_BODY)
            self._paths.append(REMOTE_WRITE_PATH)
        if otlp:
            from monitorkit.interop.otlp import OtlpReceiver

            self.otlp = OtlpReceiver(writer, metadata, promote or ())
            api.add_route("POST", OTLP_PATH, self.otlp.handle, max_body=MAX_BODY)
            self._paths.append(OTLP_PATH)

    def stop(self) -> None:
        """Take the routes off the API (a request in progress finishes)."""
        if self._api is not None:
            for path in self._paths:
                self._api.remove_route("POST", path)
        self._paths.clear()
        self._api = None
