"""How a sender reaches the owner: the owner API over loopback (found in the sidecar), or the owner in-process.

Everything here stays free of DuckDB (``owner.sidecar``, ``owner.client`` and ``owner.local``
import none): an instrumented application must stay light.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from monitorkit.errors import OwnerApiError
from monitorkit.instrument.executions import Execution
from monitorkit.instrument.wire import encode_executions, encode_samples
from monitorkit.owner import client, local
from monitorkit.owner.sidecar import read_owner
from monitorkit.samples import Sample

SAMPLES_PATH = "/v1/samples"
EXECUTIONS_PATH = "/v1/executions"

# The owner's answer to one batch (HTTP-like status and message; ``ok`` for 200 committed, 202 queued).
Delivery = client.Answer


class IngestEndpoint(NamedTuple):
    """Where a running owner takes batches: its pid, API port and token (from the sidecar)."""

    pid: int
    port: int
    token: str


def read_endpoint(db: str | Path) -> IngestEndpoint | None:
    """Return the API endpoint a live owner of ``db`` published (``api_port``, ``api_token``), or None."""
    owner = read_owner(db)
    if owner is None:
        return None
    try:
        port, token = client.endpoint(owner)
    except OwnerApiError:  # an owner without the API (starting, or an older monitorkit): not reachable yet
        return None
    return IngestEndpoint(owner.pid, port, token)


def http_post(port: int, path: str, token: str, content_type: str, body: bytes, timeout: float) -> Delivery:
    """POST ``body`` to the owner API on 127.0.0.1:``port``; OSError if unreachable or late (``client.request``)."""
    return client.request(port, "POST", path, token, content_type, body, timeout)


class Target(Protocol):
    """Somewhere batches can be delivered."""

    def send_samples(self, samples: list[Sample], extra: dict[str, str]) -> Delivery:
        """Deliver samples (labels merged over ``extra``)."""
        ...

    def send_executions(self, rows: list[Execution]) -> Delivery:
        """Deliver tool runs."""
        ...


@runtime_checkable
class Sink(Protocol):
    """What takes batches inside the owner process (``owner.ingest.IngestService``, ``StoreSink``)."""

    def accept_samples(self, samples: list[Sample]) -> Delivery:
        """Write a batch of samples."""
        ...

    def accept_executions(self, rows: list[Execution]) -> Delivery:
        """Write a batch of tool runs."""
        ...


class HttpTarget:
    """An owner in another process, reached over the owner API on loopback."""

    def __init__(self, endpoint: IngestEndpoint, content_type: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.content_type = content_type
        self.timeout = timeout

    def _post(self, path: str, body: bytes) -> Delivery:
        return client.request(self.endpoint.port, "POST", path, self.endpoint.token, self.content_type, body,
                              self.timeout)

    def send_samples(self, samples: list[Sample], extra: dict[str, str]) -> Delivery:
        """POST samples to /v1/samples."""
        return self._post(SAMPLES_PATH, encode_samples(samples, self.content_type, extra))

    def send_executions(self, rows: list[Execution]) -> Delivery:
        """POST tool runs to /v1/executions."""
        return self._post(EXECUTIONS_PATH, encode_executions(rows, self.content_type))


class LocalTarget:
    """The owner running in this very process: batches go straight to its store."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def send_samples(self, samples: list[Sample], extra: dict[str, str]) -> Delivery:
        """Write samples to the local store."""
        if extra:
            samples = [s._replace(labels={**extra, **s.labels}) for s in samples]
        return self.sink.accept_samples(samples)

    def send_executions(self, rows: list[Execution]) -> Delivery:
        """Write tool runs to the local store."""
        return self.sink.accept_executions(rows)


def local_sink(db: str | Path) -> Sink | None:
    """Return the in-process ingest service of ``db`` if this process owns it, else None."""
    here = local.lookup(db)
    service = here.services.get("ingest") if here is not None else None
    return service if isinstance(service, Sink) else None
