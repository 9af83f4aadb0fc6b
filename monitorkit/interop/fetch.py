"""One HTTP GET of a metrics page under a total deadline (connect, send, every read), gzip and size bounded.

A socket timeout alone bounds each read, not the scrape: an exporter trickling a byte a second
would hold a scrape forever. Here every read gets only what is left of the deadline, and one
reaper thread shuts down any socket still in use when its deadline passes (headers included).
"""

from __future__ import annotations

import base64
import heapq
import http.client
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

from monitorkit.errors import MonitorkitError

CHUNK = 256 * 1024


class FetchError(MonitorkitError):
    """A page could not be fetched: refused, timed out, too large, or not answered 200; the message says which."""


class Page(NamedTuple):
    """A fetched page: its Content-Type and decoded text."""

    content_type: str
    text: str
    bytes_read: int


class _Reaper:
    """Shut down sockets whose deadline passed: a blocked read then returns at once."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._live: set[int] = set()
        self._cond = threading.Condition()
        self._next = 0
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> int:
        """Shut ``sock`` down at ``deadline`` unless released first; return the ticket to release it with."""
        with self._cond:
            self._next += 1
            heapq.heappush(self._heap, (deadline, self._next, sock))
            self._live.add(self._next)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="monitorkit-scrape-reaper", daemon=True)
                self._thread.start()
            self._cond.notify()
            return self._next

    def release(self, ticket: int) -> None:
        """Forget a socket whose request finished in time."""
        with self._cond:
            self._live.discard(ticket)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    if not self._cond.wait(60.0) and not self._heap:
                        self._thread = None
                        return  # idle for a minute: the next watch() starts a new thread
                    continue
                deadline, ticket, sock = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(ticket)
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by its owner


REAPER = _Reaper()


class Fetcher:
    """GET one URL again and again over a kept-alive connection: ``Fetcher(url).get(deadline, headers)``."""

    def __init__(self, url: str, *, ca_file: str = "", insecure: bool = False, max_bytes: int = 64 * 2**20) -> None:
        parts = urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.max_bytes = max_bytes or 2**62
        self._conn: http.client.HTTPConnection | None = None
        self._ssl: ssl.SSLContext | None = None
        if self.https:
            self._ssl = ssl.create_default_context(cafile=ca_file or None)
            if insecure:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE

    def close(self) -> None:
        """Close the kept-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self, left: float) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._ssl is not None:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=left, context=self._ssl)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=left)
        return self._conn

    def get(self, deadline: float, headers: Mapping[str, str]) -> Page:
        """Fetch the page before ``deadline`` (a time.monotonic() value); FetchError with the reason otherwise."""
        reused = self._conn is not None and self._conn.sock is not None
        try:
            try:
                return self._get(deadline, headers)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                self.close()  # the exporter closed the kept-alive connection since the last scrape: once more
                return self._get(deadline, headers)
        except FetchError:
            self.close()
            raise
        except TimeoutError:
            self.close()
            raise FetchError("context deadline exceeded (scrape timeout)") from None
        except zlib.error as exc:
            self.close()
            raise FetchError(f"gzip body does not inflate: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise FetchError(f"{type(exc).__name__}: {exc}") from None

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise FetchError("context deadline exceeded (scrape timeout)")
        return left

    def _get(self, deadline: float, headers: Mapping[str, str]) -> Page:
        conn = self._connection(self._left(deadline))
        if conn.sock is None:
            conn.connect()
        ticket = REAPER.watch(conn.sock, deadline)
        try:
            return self._exchange(conn, deadline, headers)
        except OSError:
            if time.monotonic() >= deadline:
                raise FetchError("context deadline exceeded (scrape timeout)") from None
            raise
        finally:
            REAPER.release(ticket)

    def _exchange(self, conn: http.client.HTTPConnection, deadline: float, headers: Mapping[str, str]) -> Page:
        conn.sock.settimeout(self._left(deadline))
        conn.request("GET", self.path, headers=dict(headers))
        conn.sock.settimeout(self._left(deadline))
        response = conn.getresponse()
        if response.status != 200:
            response.read(CHUNK)
            raise FetchError(f"server returned HTTP status {response.status} {response.reason}")
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if response.getheader("Content-Encoding") == "gzip" else None
        parts: list[bytes] = []
        size = read = 0
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(self._left(deadline))
            chunk = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
            if not chunk:
                break
            read += len(chunk)
            if inflate is not None:
                chunk = inflate.decompress(chunk, self.max_bytes - size + 1)
                if inflate.unconsumed_tail:
                    raise FetchError(f"body size limit exceeded ({self.max_bytes} bytes)")
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"body size limit exceeded ({self.max_bytes} bytes)")
            parts.append(chunk)
        if time.monotonic() >= deadline:  # the reaper's shutdown reads as an early end of the body
            raise FetchError("context deadline exceeded (scrape timeout)")
        if response.length:  # http.client counts down a Content-Length: bytes still missing
            raise FetchError(f"body ended {response.length} bytes before its Content-Length")
        response.close()  # read1 does not close a Content-Length body at its end: the next request needs it closed
        if response.will_close:
            self.close()
        try:
            text = b"".join(parts).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FetchError(f"page is not UTF-8: {exc}") from None
        return Page(response.getheader("Content-Type", "") or "", text, read)


def auth_header(bearer: str = "", bearer_file: str = "", username: str | None = None, password: str = "",
                password_file: str = "") -> dict[str, str]:
    """Return the Authorization header for a bearer token or basic credentials (files re-read each call)."""
    try:
        if bearer_file:
            bearer = open(bearer_file).read().strip()
        if password_file:
            password = open(password_file).read().strip()
    except OSError as exc:
        raise FetchError(f"cannot read credentials file: {exc}") from None
    if bearer:
        return {"Authorization": f"Bearer {bearer}"}
    if username is not None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}

