"""How a sender reaches the owner: the sidecar, a minimal HTTP POST to its ingest endpoint, or the owner in-process.

The sidecar reader and the HTTP client are deliberately small: ``monitorkit.owner`` imports
DuckDB and ``http.client`` costs about 5 MB, and an instrumented application must stay light.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import NamedTuple, Protocol

from monitorkit.instrument.tools import Execution
from monitorkit.instrument.wire import encode_executions, encode_samples
from monitorkit.samples import Sample

SAMPLES_PATH = "/v1/samples"
EXECUTIONS_PATH = "/v1/executions"


class Delivery(NamedTuple):
    """The owner's answer to one batch: HTTP-like status and its message."""

    status: int
    message: str

    @property
    def ok(self) -> bool:
        """Tell whether the batch was accepted (200 committed, 202 queued)."""
        return self.status in (200, 202)


class IngestEndpoint(NamedTuple):
    """Where a running owner takes batches: its pid, ingest port and token (from the sidecar)."""

    pid: int
    port: int
    token: str


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def read_endpoint(db: str | Path) -> IngestEndpoint | None:
    """Return the ingest endpoint a live owner of ``db`` published, or None.

    Reads the same ``<db>.owner.json`` as ``monitorkit.owner.sidecar.read_owner`` without importing DuckDB.
    """
    try:
        data = json.loads(Path(f"{db}.owner.json").read_text())
        extra = data.get("extra") or {}
        endpoint = IngestEndpoint(int(data["pid"]), int(extra["api_port"]), str(extra["api_token"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return endpoint if _alive(endpoint.pid) else None


def http_post(port: int, path: str, token: str, content_type: str, body: bytes, timeout: float) -> Delivery:
    """POST ``body`` to 127.0.0.1:``port`` and return the status and body text; OSError if unreachable."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP answer from port {port}: {status_line[:80]!r}")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return Delivery(int(parts[1]), payload.decode("utf-8", "replace").strip())


class Target(Protocol):
    """Somewhere batches can be delivered."""

    def send_samples(self, samples: list[Sample], extra: dict[str, str]) -> Delivery:
        """Deliver samples (labels merged over ``extra``)."""
        ...

    def send_executions(self, rows: list[Execution]) -> Delivery:
        """Deliver tool runs."""
        ...


class HttpTarget:
    """An owner in another process, reached over its loopback ingest endpoint."""

    def __init__(self, endpoint: IngestEndpoint, content_type: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.content_type = content_type
        self.timeout = timeout

    def _post(self, path: str, body: bytes) -> Delivery:
        return http_post(self.endpoint.port, path, self.endpoint.token, self.content_type, body, self.timeout)

    def send_samples(self, samples: list[Sample], extra: dict[str, str]) -> Delivery:
        """POST samples to /v1/samples."""
        return self._post(SAMPLES_PATH, encode_samples(samples, self.content_type, extra))

    def send_executions(self, rows: list[Execution]) -> Delivery:
        """POST tool runs to /v1/executions."""
        return self._post(EXECUTIONS_PATH, encode_executions(rows, self.content_type))


class LocalTarget:
    """The owner running in this very process: batches go straight to its store."""

    def __init__(self, sink: object) -> None:
        self.sink = sink  # a monitorkit.owner.ingest.IngestService (has accept_samples / accept_executions)

    def send_samples(self, samples: list[Sample], extra: dict[str, str]) -> Delivery:
        """Write samples to the local store."""
        if extra:
            samples = [s._replace(labels={**extra, **s.labels}) for s in samples]
        return self.sink.accept_samples(samples)  # type: ignore[attr-defined, no-any-return]

    def send_executions(self, rows: list[Execution]) -> Delivery:
        """Write tool runs to the local store."""
        return self.sink.accept_executions(rows)  # type: ignore[attr-defined, no-any-return]


def local_sink(db: str | Path) -> object | None:
    """Return the in-process ingest service of ``db`` if this process owns it, else None."""
    from monitorkit.owner.local import lookup  # no DuckDB: only a dict of the owners running here

    here = lookup(db)
    return here.services.get("ingest") if here is not None else None
