"""The one client of the owner API: a small HTTP/1.1 request over a loopback socket, and JSON calls.

Deliberately without ``http.client`` or ``urllib`` (about 5 MB and 30 ms of imports) and
without DuckDB: an instrumented application uses it on every batch and must stay light.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from monitorkit.errors import OwnerApiError
from monitorkit.owner.sidecar import OwnerInfo

MAX_ANSWER_BYTES = 16 * 2**20
QUACK_PATH = "/v1/quack"  # opens the owner's Quack endpoint (owner/quack.py)


class Answer(NamedTuple):
    """The owner's answer: HTTP status and body text."""

    status: int
    message: str

    @property
    def ok(self) -> bool:
        """Tell whether the request was accepted (200 committed, 202 queued)."""
        return self.status in (200, 202)


class RawAnswer(NamedTuple):
    """The owner's answer with its body as bytes (an Arrow stream, say)."""

    status: int
    body: bytes


def request(port: int, method: str, path: str, token: str, content_type: str, body: bytes, timeout: float) -> Answer:
    """Send one request to 127.0.0.1:``port`` within ``timeout`` seconds in all; OSError if unreachable or late."""
    raw = request_bytes(port, method, path, token, content_type, body, timeout, MAX_ANSWER_BYTES)
    return Answer(raw.status, raw.body.decode("utf-8", "replace").strip())


def request_bytes(port: int, method: str, path: str, token: str, content_type: str, body: bytes, timeout: float,
                  max_bytes: int = 2**31) -> RawAnswer:
    """Send one request like ``request`` and return the body as bytes, refusing answers over ``max_bytes``."""
    deadline = time.monotonic() + timeout
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    chunks: list[bytes] = []
    size = 0
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the owner on port {port} did not answer within {timeout:g} s")
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
            size += len(data)
            if size > max_bytes:
                raise ConnectionError(f"answer from port {port} is over {max_bytes} bytes")
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP answer from port {port}: {status_line[:80]!r}")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return RawAnswer(int(parts[1]), payload)


def endpoint(owner: OwnerInfo) -> tuple[int, str]:
    """Return the API port and token an owner published, or raise OwnerApiError."""
    port, token = owner.extra.get("api_port"), owner.extra.get("api_token")
    if not isinstance(port, int) or not isinstance(token, str) or not token:
        raise OwnerApiError(f"owner process {owner.pid} publishes no API endpoint (an older monitorkit?); restart it")
    return port, token


def call(owner: OwnerInfo, path: str, payload: Mapping[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """POST ``payload`` as JSON to the owner's route ``path`` and return its JSON answer; OwnerApiError if refused."""
    port, token = endpoint(owner)
    body = json.dumps(payload, default=str).encode()
    try:
        answer = request(port, "POST", path, token, "application/json", body, timeout)
    except OSError as exc:
        raise OwnerApiError(f"owner process {owner.pid} did not answer on API port {port}: {exc}") from None
    try:
        data = json.loads(answer.message) if answer.message else {}
    except ValueError:
        data = {"error": answer.message}
    if not isinstance(data, dict):
        data = {"error": str(data)}
    if answer.status != 200:
        raise OwnerApiError(str(data.get("error", f"HTTP {answer.status}")))
    return data


def quack_endpoint(owner: OwnerInfo, timeout: float = 30.0) -> tuple[int, str]:
    """Return the Quack port and token of ``owner``, asking it to open the endpoint first if it has not yet."""
    if owner.port:
        return owner.port, owner.token
    answer = call(owner, QUACK_PATH, {}, timeout)
    port, token = answer.get("port"), answer.get("token")
    if not isinstance(port, int) or not isinstance(token, str):
        raise OwnerApiError(f"owner process {owner.pid} did not say where its Quack endpoint listens: {answer}")
    return port, token
