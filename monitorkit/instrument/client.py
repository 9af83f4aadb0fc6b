"""The sender: a background thread that ships registry snapshots and the registry's tool runs to the owner.

``monitorkit.instrument.start(db_path="data/monitorkit.duckdb", interval=1.0)``

Every ``interval`` the sender snapshots its registry and queues the batch, then delivers
what is queued, oldest first. When no owner runs (or it stops answering) batches wait in a
bounded queue; past ``max_queued_samples`` the oldest are dropped and counted in ``dropped``
and ``monitorkit_client_dropped_samples_total``. Metric calls never wait for the sender, and
a missing owner never raises into the application. The owner is found again through its
sidecar as soon as one runs; an owner in this very process is written to directly.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from monitorkit.instrument.cardinality import check_limit
from monitorkit.instrument.catalog import CLIENT_DROPPED_EXECUTIONS, CLIENT_DROPPED_SAMPLES, spec
from monitorkit.instrument.executions import Execution, Outbox, outbox
from monitorkit.instrument.metrics import counter
from monitorkit.instrument.registry import REGISTRY, Registry
from monitorkit.instrument.transport import (
    Delivery,
    HttpTarget,
    LocalTarget,
    Target,
    local_sink,
    read_endpoint,
)
from monitorkit.instrument.wire import choose_format
from monitorkit.samples import Sample, utcnow, validate_labels

log = logging.getLogger(__name__)

# A queued sample costs about 110 bytes (its labels are shared), so the default bound is ~6 MB.
DEFAULT_MAX_QUEUED_SAMPLES = 50_000
DEFAULT_MAX_QUEUED_EXECUTIONS = 10_000
MAX_POST_SAMPLES = 20_000


class Sender:
    """Snapshot ``registry`` every ``interval`` seconds and deliver to the owner of ``db``.

    ``instance_labels`` are added to every sample (default ``{"pid": "<this pid>"}``) so two
    processes updating the same counter write two series instead of one jumbled one; pass
    ``{}`` to send the labels as they are. ``owner`` forces direct writes to that Owner;
    ``target`` replaces the transport altogether (anything with send_samples/send_executions).
    """

    def __init__(
        self,
        db: str | Path,
        *,
        registry: Registry | None = None,
        interval: float = 1.0,
        max_queued_samples: int = DEFAULT_MAX_QUEUED_SAMPLES,
        max_queued_executions: int = DEFAULT_MAX_QUEUED_EXECUTIONS,
        instance_labels: dict[str, str] | None = None,
        wire_format: str = "auto",
        timeout: float = 5.0,
        owner: Any = None,
        target: Target | None = None,
    ) -> None:
        self.db = Path(db)
        self.registry = registry if registry is not None else REGISTRY
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.interval = float(interval)
        self.max_queued_samples = check_limit(max_queued_samples, "max_queued_samples")
        self.max_queued_executions = check_limit(max_queued_executions, "max_queued_executions")
        labels = {"pid": str(os.getpid())} if instance_labels is None else instance_labels
        self.instance_labels = validate_labels(labels, metric="instance_labels")
        self.content_type = choose_format(wire_format)
        self.timeout = timeout
        self._owner = owner
        self._fixed_target = target
        self._samples: deque[list[Sample]] = deque()
        self._queued = 0
        self._executions: deque[Execution] = deque()
        self._target: Target | None = None
        self._lock = threading.Lock()  # one delivery cycle at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.dropped_executions = 0
        self.rejected = 0
        self.sent = 0
        self.sent_executions = 0
        self.last_error: str | None = None
        # Tool runs of this registry wait here until a cycle moves them to the send queue.
        self.outbox: Outbox = outbox(self.registry)
        self.registry.on_first_register = None  # a sender made by hand: no autostart of another one
        self._dropped_counter = counter(*spec(CLIENT_DROPPED_SAMPLES), registry=self.registry)
        self._dropped_exec_counter = counter(*spec(CLIENT_DROPPED_EXECUTIONS), registry=self.registry)

    @property
    def queued(self) -> int:
        """Return the number of samples waiting to be delivered."""
        return self._queued

    @property
    def queued_executions(self) -> int:
        """Return the number of tool runs waiting to be delivered."""
        return len(self._executions)

    @property
    def connected(self) -> bool:
        """Tell whether the last delivery reached an owner."""
        return self._target is not None

    @property
    def running(self) -> bool:
        """Tell whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Sender:
        """Start the background thread (idempotent) and flush once more at interpreter exit."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="monitorkit-instrument-sender", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread, then snapshot and deliver one last time; return whether nothing is left queued."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        atexit.unregister(self.stop)
        return self.flush()

    def flush(self) -> bool:
        """Snapshot now and try to deliver everything queued; return whether the queue is empty after."""
        with self._lock:
            self._snapshot()
            self._deliver()
            return not self._samples and not self._executions

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:  # the sender must never take the application down; keep the reason
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("monitorkit sender cycle failed")

    def _snapshot(self) -> None:
        samples = self.registry.collect(utcnow())
        if samples:
            self._samples.append(samples)
            self._queued += len(samples)
            while self._queued > self.max_queued_samples and len(self._samples) > 1:
                oldest = self._samples.popleft()
                self._queued -= len(oldest)
                self.dropped += len(oldest)
                self._dropped_counter.inc(len(oldest))
        runs = self.outbox.take()
        if runs:
            self._executions.extend(runs)
            excess = len(self._executions) - self.max_queued_executions
            for _ in range(max(0, excess)):
                self._executions.popleft()
            if excess > 0:
                self.dropped_executions += excess
                self._dropped_exec_counter.inc(excess)

    def _find_target(self) -> Target | None:
        if self._target is not None:
            return self._target
        if self._fixed_target is not None:
            self._target = self._fixed_target
            return self._target
        if self._owner is not None:
            from monitorkit.owner.ingest import StoreSink

            self._target = LocalTarget(StoreSink(self._owner.store))
            return self._target
        sink = local_sink(self.db)
        if sink is not None:
            self._target = LocalTarget(sink)
            return self._target
        endpoint = read_endpoint(self.db)
        if endpoint is not None:
            self._target = HttpTarget(endpoint, self.content_type, self.timeout)
        return self._target

    def _deliver(self) -> None:
        target = self._find_target()
        if target is None:
            if self._samples or self._executions:
                self.last_error = f"owner unreachable: no owner of {self.db} runs"
            return
        while self._samples:
            batch: list[Sample] = []
            taken = 0
            while taken < len(self._samples) and len(batch) + len(self._samples[taken]) <= MAX_POST_SAMPLES:
                batch.extend(self._samples[taken])
                taken += 1
            if not taken:  # one snapshot bigger than a POST: send it alone
                batch, taken = self._samples[0], 1
            if not self._settle(target, lambda b=batch: target.send_samples(b, self.instance_labels), len(batch)):
                return
            for _ in range(taken):
                self._queued -= len(self._samples.popleft())
            self.sent += len(batch)
        if self._executions:
            runs = list(self._executions)
            if not self._settle(target, lambda: target.send_executions(runs), len(runs)):
                return
            for _ in runs:
                self._executions.popleft()
            self.sent_executions += len(runs)

    def _settle(self, target: Target, send: Any, count: int) -> bool:
        """Send one batch; return True when it may leave the queue (accepted, or refused for good)."""
        try:
            answer: Delivery = send()
        except OSError as exc:  # the owner went away: find it again next cycle
            self._lose(target, f"owner unreachable: {exc}")
            return False
        if answer.ok:
            self.last_error = None
            return True
        if answer.status == 400 or answer.status == 413:
            self.rejected += count
            self.last_error = f"owner refused {count} rows: {answer.message}"
            log.error("monitorkit owner refused a batch of %d rows: %s", count, answer.message)
            return True
        self._lose(target, f"owner answered {answer.status}: {answer.message}")
        return False

    def _lose(self, target: Target, reason: str) -> None:
        if self._target is target:
            self._target = None
        self.last_error = reason
        log.debug("monitorkit sender: %s", reason)


_SENDERS: dict[int, Sender] = {}
_SENDERS_LOCK = threading.Lock()


def start(
    db_path: str | Path | None = None,
    *,
    interval: float | None = None,
    registry: Registry | None = None,
    **options: Any,
) -> Sender:
    """Start (once per registry) the sender that delivers ``registry`` to the owner of ``db_path``.

    Defaults come from settings: ``instrument.db`` (else ``store.path``) and ``instrument.interval`` (1 s).
    Other keywords go to ``Sender`` (``max_queued_samples``, ``instance_labels``, ``wire_format``, ``owner``).
    """
    reg = registry if registry is not None else REGISTRY
    reg.on_first_register = None  # started by hand: no autostart on first metric use
    with _SENDERS_LOCK:
        running = _SENDERS.get(id(reg))
        if running is not None and running.running:
            return running
        if db_path is None or interval is None:
            from monitorkit.config import load_settings

            settings = load_settings()
            db_path = db_path or settings.get("instrument.db") or settings.get("store.path")
            interval = interval or float(settings.get("instrument.interval", 1.0))
        sender = Sender(db_path, registry=reg, interval=interval, **options)
        _SENDERS[id(reg)] = sender
        return sender.start()


def stop(registry: Registry | None = None) -> bool:
    """Stop the sender of ``registry`` (default: the global one) after a last delivery; return whether all went."""
    reg = registry if registry is not None else REGISTRY
    with _SENDERS_LOCK:
        sender = _SENDERS.pop(id(reg), None)
    return sender.stop() if sender is not None else True


def sender(registry: Registry | None = None) -> Sender | None:
    """Return the running sender of ``registry`` (default: the global one), if any."""
    return _SENDERS.get(id(registry if registry is not None else REGISTRY))


def autostart(registry: Registry) -> None:
    """Start the global sender on first metric use when settings say ``instrument.autostart = true``."""
    from monitorkit.config import load_settings

    settings = load_settings()
    if settings.get("instrument.autostart", False) is True:
        start(registry=registry)
