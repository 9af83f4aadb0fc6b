"""The receivers on the owner API: Prometheus remote-write 1.0 (``POST /api/v1/write``) and OTLP/HTTP metrics.

Both are behind the owner API's bearer token (the sidecar's ``api_token``) and answer only after
their batch is committed: remote_write 204 (as Prometheus does), OTLP 200; 400 for a body that
does not decode or breaks the append rules (the sender drops it), 503 when the store did not
commit (the sender retries; a resend of committed samples is dropped as a duplicate).
``[receivers] remote_write = false`` or ``otlp = false`` turns one off; ``otlp_promote = ["k8s.namespace.name"]``
copies those OTLP resource attributes onto every series.

The decoders (numpy, protobuf, opentelemetry-proto, about 100 MiB of imports) load on the first
request, so an owner nobody sends to does not carry them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from monitorkit.errors import ConfigError
from monitorkit.interop.schema import SCHEMA
from monitorkit.owner.api import Request, Response

if TYPE_CHECKING:
    from monitorkit.interop.bulk import ColumnWriter
    from monitorkit.interop.metadata import MetadataLog
    from monitorkit.owner.api import OwnerApi
    from monitorkit.owner.context import OwnerContext
    from monitorkit.store import Store

REMOTE_WRITE_PATH = "/api/v1/write"
OTLP_PATH = "/v1/metrics"
MAX_BODY = 32 * 2**20


class ReceiverService:
    """Register the remote-write and OTLP routes on the owner API (``[receivers]`` turns each off)."""

    name = "receivers"

    def __init__(self) -> None:
        self._api: OwnerApi | None = None
        self._paths: list[str] = []
        self._lock = threading.Lock()
        self._built: dict[str, Any] = {}
        self._shared: tuple[ColumnWriter, MetadataLog] | None = None
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

    def start_on(self, store: Store, api: OwnerApi, *, remote_write: bool = True, otlp: bool = True,
                 promote: list[str] | None = None) -> None:
        """Register on ``api`` writing to ``store`` (tests and benchmarks use this without an owner)."""
        store.apply_schema(SCHEMA)
        self.store = store
        self.promote = list(promote or [])
        self._api = api
        for path, wanted in ((REMOTE_WRITE_PATH, remote_write), (OTLP_PATH, otlp)):
            if wanted:
                api.add_route("POST", path, self._route(path), max_body=MAX_BODY)
                self._paths.append(path)

    def _route(self, path: str) -> Any:
        def handler(request: Request) -> Response:
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

    def stop(self) -> None:
        """Take the routes off the API (a request in progress finishes)."""
        if self._api is not None:
            for path in self._paths:
                self._api.remove_route("POST", path)
        self._paths.clear()
        self._api = None
