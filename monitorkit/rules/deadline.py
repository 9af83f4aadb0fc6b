"""A total time limit for one delivery: connect + send + read, however the receiver dribbles its answer.

A socket timeout bounds each operation, not the whole: a receiver that sends one byte every
2 s never trips a 3 s timeout and holds the sender for ever. ``Deadline`` shuts down every
socket it watches when the time is up, which wakes a blocked ``recv`` at once.

```python
with Deadline(10.0) as d:
    conn = http.client.HTTPConnection(host, port, timeout=d.left())
    conn.connect()
    d.watch(lambda: conn.sock)
    ...
```
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any


class DeadlineExceeded(TimeoutError):
    """The delivery did not finish within its total deadline."""


class Deadline:
    """Shut down the watched sockets ``seconds`` after entering; ``expired`` tells whether it fired."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[Callable[[], Any]] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._timer.cancel()

    def left(self) -> float:
        """Return the seconds left (for socket timeouts); raise DeadlineExceeded when none are."""
        left = self.expires - time.monotonic()
        if left <= 0 or self.expired:
            raise DeadlineExceeded(self.message())
        return left

    def watch(self, current: Callable[[], Any]) -> None:
        """Shut down ``current()`` (the socket in use then, or None) when the deadline passes."""
        with self._lock:
            self._sockets.append(current)
            expired = self.expired
        if expired:
            _shutdown(current())

    def message(self) -> str:
        """Return the error text of an expired delivery."""
        return f"no complete answer within the {self.seconds:g} s deadline (connect + send + read)"

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            watched = list(self._sockets)
        for current in watched:
            _shutdown(current())


def _shutdown(sock: Any) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected
