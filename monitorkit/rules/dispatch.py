"""The dispatcher: deliver notifications off the evaluation path, one worker thread per channel, retrying with backoff.

``enqueue`` never blocks. Each channel of a receiver has its own queue and thread, so a
receiver that hangs or dribbles holds only its own deliveries, each for at most its total
deadline (``[alerting] timeout``). A failed attempt is retried with exponential backoff up to
``retry.attempts`` times; every attempt, whatever went wrong, is handed to ``record`` and the
end of a notification (any channel delivered, or all failed) to ``done``. ``health_rows``
tells whether the workers live and keep up, and how each receiver's last attempt went.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
QUEUE_LIMIT = 1000  # deliveries waiting per channel; past it the oldest is given up (and counted)


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


@dataclass
class _Worker:
    """One channel's queue (a heap by due time), thread and record of how its attempts went."""

    receiver: str
    channel: Channel
    heap: list[tuple[float, int, _Job]] = field(default_factory=list)
    thread: threading.Thread | None = None
    busy: bool = False
    failures: int = 0  # failed attempts in a row
    last_error: str | None = None
    attempts: int = 0
    dropped: int = 0


class Dispatcher:
    """Deliver notifications in background threads: ``d.start(); d.enqueue(note); d.stop()``."""

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
        self._workers: dict[tuple[str, int], _Worker] = {}
        self._seq = itertools.count()
        self._open: dict[int, list[int]] = {}  # token -> [channels left, channels delivered]
        self._started = False
        self._stopping = False
        self._cond = threading.Condition()  # one for all workers: each waits for its own heap

    def start(self) -> None:
        """Start delivering (each channel's thread starts with its first delivery)."""
        with self._cond:
            self._started = True
            for (receiver, index), worker in self._workers.items():
                self._worker(receiver, index, worker.channel)

    def enqueue(self, note: Notification) -> None:
        """Queue ``note`` for delivery through its channel (``note.channel``, or every one); never blocks."""
        receiver = self.config.receivers[note.receiver]
        given_up: list[_Job] = []
        with self._cond:
            if self._stopping:
                return
            token = next(self._seq)
            now = time.monotonic()
            targets = [(i, c) for i, c in enumerate(receiver.channels) if note.channel in (None, i)]
            self._open[token] = [len(targets), 0]
            for i, channel in targets:
                worker = self._worker(note.receiver, i, channel)
                heapq.heappush(worker.heap, (now, next(self._seq), _Job(note, channel, 1, token)))
                if len(worker.heap) > QUEUE_LIMIT:  # a dead receiver must not grow memory for ever
                    oldest = min(worker.heap, key=lambda item: item[1])
                    worker.heap.remove(oldest)
                    heapq.heapify(worker.heap)
                    worker.dropped += 1
                    given_up.append(oldest[2])
            self._cond.notify_all()
        for job in given_up:
            log.warning("notification queue of %s via %s is full: gave up %s", job.note.receiver, job.channel.label,
                        job.note.group_key)
            self._finish(job, ok=False)

    def _worker(self, receiver: str, index: int, channel: Channel) -> _Worker:
        """Return the worker of a channel, (re)starting its thread if it is not running (holding the lock)."""
        worker = self._workers.get((receiver, index))
        if worker is None:
            worker = self._workers[(receiver, index)] = _Worker(receiver, channel)
        if self._started and (worker.thread is None or not worker.thread.is_alive()):
            if worker.thread is not None:
                log.error("notification thread of %s via %s had stopped; restarting it", receiver, channel.label)
            worker.thread = threading.Thread(target=self._run, args=(worker,), daemon=True,
                                             name=f"monitorkit-notify-{receiver}-{index}")
            worker.thread.start()
        return worker

    def pending(self) -> int:
        """Return how many channel deliveries wait (including retries)."""
        with self._cond:
            return sum(len(w.heap) + (1 if w.busy else 0) for w in self._workers.values())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing waits or runs (retries included); return False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while any(w.heap or w.busy for w in self._workers.values()):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the deliveries in progress (each ends by its deadline); queued retries are abandoned."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            threads = [w.thread for w in self._workers.values() if w.thread is not None]
        end = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))

    def health_rows(self) -> list[HealthRow]:
        """Return ``dispatcher`` (its threads live and keep up) and ``receiver:<name>`` for each receiver tried."""
        if not self._started:
            return []
        late = self.config.retry.timeout.total_seconds() + 5.0  # a due delivery waiting longer is "behind"
        now = time.monotonic()
        rows: list[HealthRow] = []
        dead, behind = [], []
        receivers: dict[str, list[_Worker]] = {}
        with self._cond:
            for w in self._workers.values():
                receivers.setdefault(w.receiver, []).append(w)
                if w.thread is not None and not w.thread.is_alive() and not self._stopping:
                    dead.append(w.receiver)
                if any(now - due > late for due, _, _ in w.heap):
                    behind.append(w.receiver)
            if dead:
                rows.append(HealthRow("dispatcher", "failing", "notification thread stopped: " + ", ".join(sorted(dead))))
            elif behind:
                rows.append(HealthRow("dispatcher", "degraded", "deliveries fall behind for " + ", ".join(sorted(behind))))
            else:
                rows.append(HealthRow("dispatcher", "ok", "delivering"))
            for name, workers in sorted(receivers.items()):
                tried = [w for w in workers if w.attempts or w.dropped]
                if not tried:
                    continue
                bad = [w for w in tried if w.failures or w.dropped]
                if not bad:
                    rows.append(HealthRow(f"receiver:{name}", "ok", "delivered"))
                    continue
                reasons = [f"{w.channel.label}: {w.last_error or 'failed'}" +
                           (f" ({w.dropped} given up, queue full)" if w.dropped else "") for w in bad]
                status = "failing" if len(bad) == len(tried) else "degraded"
                rows.append(HealthRow(f"receiver:{name}", status, "; ".join(reasons)[:1000]))
        return rows

    def _next(self, worker: _Worker) -> _Job | None:
        with self._cond:
            while not self._stopping:
                if worker.heap:
                    left = worker.heap[0][0] - time.monotonic()
                    if left <= 0:
                        worker.busy = True
                        return heapq.heappop(worker.heap)[2]
                    self._cond.wait(left)
                else:
                    self._cond.wait()
            return None

    def _run(self, worker: _Worker) -> None:
        while True:
            job = self._next(worker)
            if job is None:
                return
            try:
                self._attempt(worker, job)
            except Exception:  # a bug in recording must not end this channel's deliveries
                log.exception("notification to %s via %s failed unexpectedly", job.note.receiver, job.channel.label)
            finally:
                with self._cond:
                    worker.busy = False
                    self._cond.notify_all()

    def _attempt(self, worker: _Worker, job: _Job) -> None:
        retry = self.config.retry
        try:
            result = self._send(job.note, job.channel, retry.timeout.total_seconds())
        except Exception as exc:  # the built-in senders return errors; a custom one may raise
            result = DeliveryResult(False, None, f"{type(exc).__name__}: {exc}")
        with self._cond:
            worker.attempts += 1
            worker.failures = 0 if result.ok else worker.failures + 1
            worker.last_error = None if result.ok else result.error
        try:
            self._record(Attempt(utcnow(), job.note, job.channel, job.attempt, result))
        except StoreClosedError:  # the owner is shutting down: the attempt happened, its record is lost
            log.info("store closed; notification attempt to %s not recorded", job.note.receiver)
        except Exception:  # a record that cannot be queued must not leave the notification open
            log.exception("recording a notification attempt to %s failed", job.note.receiver)
        if not result.ok:
            log.warning("notification to %s via %s failed (attempt %d/%d): %s", job.note.receiver,
                        job.channel.label, job.attempt, retry.attempts, result.error)
        if not result.ok and job.attempt < retry.attempts:
            with self._cond:
                due = time.monotonic() + retry.delay(job.attempt)
                heapq.heappush(worker.heap, (due, next(self._seq),
                                             _Job(job.note, job.channel, job.attempt + 1, job.token)))
            return
        self._finish(job, result.ok)

    def _finish(self, job: _Job, ok: bool) -> None:
        """Count one channel of a notification as ended; call ``done`` once every channel has."""
        with self._cond:
            left = self._open.get(job.token)
            if left is None:
                return
            left[0] -= 1
            left[1] += 1 if ok else 0
            finished = left[0] == 0
            delivered = left[1] > 0
            if finished:
                del self._open[job.token]
        if finished:
            try:
                self._done(job.note, delivered)
            except StoreClosedError:
                log.info("store closed; notification state of %s not saved", job.note.group_key)
            except Exception:
                log.exception("saving the notification state of %s failed", job.note.group_key)
