"""The dispatcher thread: deliver notifications off the evaluation path, retrying with backoff.

``enqueue`` never blocks; each channel of the receiver is a job, retried with exponential
backoff up to ``retry.attempts`` times; every attempt is handed to ``record`` and the end
of a notification (any channel delivered, or all failed) to ``done``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from monitorkit.errors import StoreClosedError
from monitorkit.rules.groups import Notification
from monitorkit.rules.notify import DeliveryResult, send
from monitorkit.rules.routing import AlertingConfig, Channel
from monitorkit.rules.runner import HealthRow
from monitorkit.samples import utcnow

log = logging.getLogger(__name__)
Sender = Callable[[Notification, Channel, float], DeliveryResult]


class Attempt(NamedTuple):
    """One delivery attempt of one notification through one channel."""

    time: datetime
    note: Notification
    channel: Channel
    attempt: int
    result: DeliveryResult


@dataclass
class _Job:
    note: Notification
    channel: Channel
    attempt: int
    token: int


class Dispatcher:
    """Deliver notifications in a background thread: ``d.start(); d.enqueue(note); d.stop()``."""

    def __init__(
        self,
        config: AlertingConfig,
        *,
        record: Callable[[Attempt], None],
        done: Callable[[Notification, bool], None],
        sender: Sender = send,
    ) -> None:
        self.config = config
        self._record = record
        self._done = done
        self._send = sender
        self._heap: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._open: dict[int, list[int]] = {}  # token -> [channels left, channels delivered]
        self._busy = False
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="monitorkit-notify", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def enqueue(self, note: Notification) -> None:
        """Queue ``note`` for delivery through every channel of its receiver; never blocks."""
        receiver = self.config.receivers[note.receiver]
        with self._cond:
            if self._stopping:
                return
            token = next(self._seq)
            self._open[token] = [len(receiver.channels), 0]
            now = time.monotonic()
            for channel in receiver.channels:
                heapq.heappush(self._heap, (now, next(self._seq), _Job(note, channel, 1, token)))
            self._cond.notify_all()

    def pending(self) -> int:
        """Return how many channel deliveries wait (including retries)."""
        with self._cond:
            return len(self._heap) + (1 if self._busy else 0)

    def health_rows(self) -> list[HealthRow]:
        """Return the dispatcher's components for health (none yet)."""
        return []

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing waits or runs (retries included); return False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the delivery in progress; queued retries are abandoned."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _next(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                if self._heap:
                    due = self._heap[0][0]
                    left = due - time.monotonic()
                    if left <= 0:
                        self._busy = True
                        return heapq.heappop(self._heap)[2]
                    self._cond.wait(left)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        retry = self.config.retry
        result = self._send(job.note, job.channel, retry.timeout.total_seconds())
        try:
            self._record(Attempt(utcnow(), job.note, job.channel, job.attempt, result))
        except StoreClosedError:  # the owner is shutting down: the attempt happened, its record is lost
            log.info("store closed; notification attempt to %s not recorded", job.note.receiver)
        if not result.ok:
            log.warning("notification to %s via %s failed (attempt %d/%d): %s", job.note.receiver,
                        job.channel.label, job.attempt, retry.attempts, result.error)
        if not result.ok and job.attempt < retry.attempts:
            with self._cond:
                due = time.monotonic() + retry.delay(job.attempt)
                heapq.heappush(self._heap, (due, next(self._seq), _Job(job.note, job.channel, job.attempt + 1,
                                                                       job.token)))
            return
        with self._cond:
            left = self._open.get(job.token)
            if left is None:
                return
            left[0] -= 1
            left[1] += 1 if result.ok else 0
            finished = left[0] == 0
            ok = left[1] > 0
            if finished:
                del self._open[job.token]
        if finished:
            try:
                self._done(job.note, ok)
            except StoreClosedError:
                log.info("store closed; notification state of %s not saved", job.note.group_key)
