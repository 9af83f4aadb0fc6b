"""Local webhook receivers on 127.0.0.1 for tests and benchmarks: a recording one and misbehaving ones.

``with receiver() as hook:`` records every JSON POST (``status=503`` to refuse, ``hold=True``
to keep each request until ``release()``); ``with misbehaving("trickle") as bad:`` answers the
way a broken receiver does (see ``BEHAVIOURS``). Every server is a daemon thread that ends
when its block ends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = dict[str, Any]


class Receiver:
    """A local HTTP server that records JSON POSTs as (arrival time, path, body) and answers ``status``."""

    def __init__(self, status: int = 200, *, hold: bool = False) -> None:
        self.status = status
        self.requests: list[tuple[float, str, Body]] = []
        self.arrived = threading.Event()  # set by the first request
        self._released = threading.Event()
        if not hold:
            self._released.set()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                with receiver._cond:
                    receiver.requests.append((now, self.path, json.loads(body)))
                    receiver._cond.notify_all()
                receiver.arrived.set()
                receiver._released.wait(30)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Return the URL to POST to."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def release(self) -> None:
        """Answer the held requests (and every later one at once)."""
        self._released.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Body]:
        """Block until ``count`` requests arrived (or time out) and return the bodies."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return [r[2] for r in self.requests]

    def first(self, match: Callable[[Body], bool], timeout: float = 30.0) -> float | None:
        """Return the arrival time (``time.time()``) of the first body ``match`` accepts, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hit = next((t for t, _, body in self.requests if match(body)), None)
                left = deadline - time.monotonic()
                if hit is not None or left <= 0:
                    return hit
                self._cond.wait(left)

    def close(self) -> None:
        """Stop serving (held requests are released first)."""
        self._released.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiver(status: int = 200, *, hold: bool = False) -> Iterator[Receiver]:
    """Run a Receiver for the block."""
    r = Receiver(status, hold=hold)
    try:
        yield r
    finally:
        r.close()


def _read_request(conn: socket.socket) -> None:
    """Read the request head and its Content-Length body (a broken receiver still reads what it is sent)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _truncated(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nabc")


def _not_http(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")


def _trickle(conn: socket.socket, stop: threading.Event) -> None:
    # One byte every 0.5 s: under any per-operation socket timeout, for as long as it is allowed to.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    for i in range(len(answer)):
        if stop.wait(0.5):
            return
        conn.sendall(answer[i:i + 1])


def _hang(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(60)


def _http_500(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops")


def _reset(conn: socket.socket, stop: threading.Event) -> None:
    # SO_LINGER with a zero timeout: close() sends a RST instead of a FIN.
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


BEHAVIOURS: dict[str, Callable[[socket.socket, threading.Event], None]] = {
    "truncated": _truncated,  # promises 100 bytes, sends 3, closes
    "not_http": _not_http,  # answers with bytes that are not HTTP
    "trickle": _trickle,  # a valid answer, one byte every 0.5 s
    "hang": _hang,  # reads the request, never answers
    "http_500": _http_500,  # a server error
    "reset": _reset,  # reads the request, then resets the connection
}


class BadReceiver:
    """A raw TCP server on 127.0.0.1 that reads each request and answers the way ``behaviour`` says."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self._answer = BEHAVIOURS[behaviour]
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Return the URL to POST to."""
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/hook"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(60)
            try:
                _read_request(conn)
                self._answer(conn, self._stop)
            except OSError:
                pass  # the client gave up (its deadline): nothing more to do

    def close(self) -> None:
        """Stop accepting and end every open connection."""
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@contextmanager
def misbehaving(behaviour: str) -> Iterator[BadReceiver]:
    """Run a BadReceiver for the block."""
    bad = BadReceiver(behaviour)
    try:
        yield bad
    finally:
        bad.close()
