"""Run collectors at their own cadences, back off the failing ones, and feed the store."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitorkit.collectors.base import Collector
from monitorkit.config import parse_duration
from monitorkit.rules.staleness import SeriesTracker, submit_stale
from monitorkit.samples import HOST, Sample, SampleValidator, utcnow
from monitorkit.store import Store
from monitorkit.store.compaction import floor_period

log = logging.getLogger(__name__)
MAX_BACKOFF = 300.0
RETENTION_EVERY = 3600.0
ALIGN_TOLERANCE = 0.02  # of a tick: 20 ms at 1 s


def align(now: datetime, tick: float, tolerance: float = ALIGN_TOLERANCE) -> datetime:
    """Return the tick boundary ``now`` jittered past (within ``tolerance`` of a tick), else ``now``.

    Like Prometheus's scrape timestamp alignment: samples a few milliseconds late are stamped
    at the tick they belong to, so a series' times are evenly spaced and compress to almost
    nothing once compacted (jittered microseconds cost about 1.4 bytes a sample).
    """
    if tick <= 0:
        return now
    step = timedelta(seconds=tick)
    boundary = floor_period(now, step)
    return boundary if now - boundary <= tolerance * step else now


@dataclass
class CollectorState:
    """Bookkeeping for one collector: when it is due, how it last went."""

    collector: Collector
    next_due: float = 0.0
    failures: int = 0
    errors_total: int = 0
    last_error: str | None = None
    last_duration: float = 0.0
    # A collector is a target in Prometheus's terms: a series its previous collect wrote and this
    # one lacks (all of them, when it fails) gets a stale marker at this collect's time.
    seen: SeriesTracker = field(default_factory=SeriesTracker)

    @property
    def up(self) -> bool:
        """Tell whether the last run succeeded."""
        return self.failures == 0


@dataclass
class Scheduler:
    """Call each collector when due, write its samples, and roll up the store on a timer."""

    store: Store
    collectors: Sequence[Collector]
    tick: float = 1.0
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = utcnow
    states: dict[str, CollectorState] = field(default_factory=dict)
    tick_hooks: list[Callable[[datetime], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for c in self.collectors:
            self.states[c.name] = CollectorState(c)
        self.rollup_every = parse_duration(self.store.settings.get("store.rollup_every")).total_seconds()
        self._next_rollup = self._rollup_due(self.clock(), self.now())
        self._next_retention = self.clock()
        self._validate = SampleValidator()  # a series is checked in full once, then only values and times

    def run_once(self) -> int:
        """Run every due collector once, queue the samples and return how many."""
        mono = self.clock()
        now = align(self.now(), self.tick)
        count = 0
        for state in self.states.values():
            # A quarter tick of slack: ticks jitter, and a 1 s collector must not skip one.
            if mono + 0.25 * self.tick < state.next_due:
                continue
            # Queued as soon as it is collected (the writer groups them into one commit anyway):
            # a slow collector, such as the process scan, does not delay the others' samples.
            out = self._run_collector(state, now, mono)
            self.store.write(out, validate=False)
            gone = state.seen.vanished(out)
            if gone:  # queued after the samples: the marker's series exist by the time it is written
                submit_stale(self.store, gone, now)
            count += len(out)
        own = self._self_metrics(now)
        self.store.write(own, validate=False)
        count += len(own)
        for hook in self.tick_hooks:
            hook(now)
        if mono >= self._next_rollup:
            self._next_rollup = self._rollup_due(mono, now)
            self.store.rollup_soon(now)
        if mono >= self._next_retention:
            self._next_retention = mono + RETENTION_EVERY
            self.store.enforce_retention(now)
        return count

    def _rollup_due(self, mono: float, now: datetime) -> float:
        """Return the monotonic time of the next rollup: ``rollup_lateness`` past a wall-clock multiple of ``rollup_every``."""
        # Aligned, one pass per minute comes just after each minute closes: the 1 m tier is at
        # most about lateness + one flush interval behind, as fresh as unaligned 30 s passes were.
        lateness = self.store.lateness.total_seconds()
        phase = (now.timestamp() - lateness) % self.rollup_every
        return mono + self.rollup_every - phase

    def _run_collector(self, state: CollectorState, now: datetime, mono: float) -> list[Sample]:
        collector = state.collector
        started = time.perf_counter()
        try:
            out = [self._validate(s) for s in collector.collect(now)]
        except Exception as exc:  # any collector bug is contained: record it, back off, go on
            state.failures += 1
            state.errors_total += 1
            state.last_error = f"{type(exc).__name__}: {exc}"
            backoff = min(MAX_BACKOFF, collector.interval * 2 ** state.failures)
            state.next_due = mono + backoff
            log.warning("collector %s failed (%s); retrying in %.0f s", collector.name, state.last_error, backoff)
            out = []
        else:
            state.failures = 0
            state.last_error = None
            state.next_due = mono + collector.interval
        state.last_duration = time.perf_counter() - started
        return out

    def _self_metrics(self, now: datetime) -> list[Sample]:
        w = self.store.writer
        out = [
            Sample(now, "monitorkit_samples_dropped_total", {"reason": "queue_full"}, float(w.dropped - w.lost_on_commit), HOST),
            Sample(now, "monitorkit_samples_dropped_total", {"reason": "write_failed"}, float(w.lost_on_commit), HOST),
            Sample(now, "monitorkit_samples_dropped_total", {"reason": "series_limit"}, float(w.series.refused), HOST),
            Sample(now, "monitorkit_series", {}, float(len(w.series)), HOST),
            Sample(now, "monitorkit_samples_written_total", {}, float(w.written), HOST),
            Sample(now, "monitorkit_write_batches_total", {}, float(w.batches), HOST),
            Sample(now, "monitorkit_write_seconds", {}, float(w.last_commit_seconds), HOST),
            Sample(now, "monitorkit_queue_depth", {}, float(w.queued), HOST),
        ]
        for name, st in self.states.items():
            labels = {"collector": name}
            out.append(Sample(now, "monitorkit_collector_up", labels, 1.0 if st.up else 0.0, HOST))
            out.append(Sample(now, "monitorkit_collector_errors_total", labels, float(st.errors_total), HOST))
            out.append(Sample(now, "monitorkit_collector_duration_seconds", labels, st.last_duration, HOST))
        return out

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set, aligned to whole multiples of ``tick``."""
        while not stop.is_set():
            self.run_once()
            delay = self.tick - (time.time() % self.tick)
            stop.wait(delay)
