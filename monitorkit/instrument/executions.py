"""Tool runs: the ``Execution`` record (one ``executions`` row) and the outbox runs wait in for a sender.

Finished runs are put in the outbox of their registry; the sender of that registry takes
them on each cycle (``Sender.outbox``). The registry itself only holds metrics.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

# Runs kept while no sender takes them (none started yet); the oldest go first.
DEFAULT_MAX_EXECUTIONS = 10_000


class Execution(NamedTuple):
    """One tool run, as stored in the ``executions`` table."""

    run_id: str
    tool: str
    started: datetime
    duration_s: float
    outcome: str
    error_type: str | None
    error_message: str | None
    labels: Mapping[str, str]
    host: str
    pid: int


class Outbox:
    """Tool runs waiting for a sender, at most ``max_size``: past it the oldest are dropped and counted."""

    def __init__(self, max_size: int = DEFAULT_MAX_EXECUTIONS) -> None:
        self.max_size = max_size
        self.dropped = 0
        self._runs: deque[Execution] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def put(self, execution: Execution) -> None:
        """Keep one finished run until a sender takes it."""
        with self._lock:
            self._runs.append(execution)
            while len(self._runs) > self.max_size:
                self._runs.popleft()
                self.dropped += 1

    def take(self) -> list[Execution]:
        """Return and forget every waiting run, oldest first."""
        with self._lock:
            out = list(self._runs)
            self._runs.clear()
            return out


# One outbox per registry, gone with it; keyed here so the registry need not know about tool runs.
_OUTBOXES: weakref.WeakKeyDictionary[object, Outbox] = weakref.WeakKeyDictionary()
_OUTBOXES_LOCK = threading.Lock()


def outbox(registry: object) -> Outbox:
    """Return the outbox of the tool runs recorded against ``registry`` (made on first use)."""
    with _OUTBOXES_LOCK:
        box = _OUTBOXES.get(registry)
        if box is None:
            box = _OUTBOXES[registry] = Outbox()
        return box
