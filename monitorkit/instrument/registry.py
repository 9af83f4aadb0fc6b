"""The Registry: the metrics of one application and the tool runs waiting to be sent.

``REGISTRY`` is the default, global one; tests inject their own (``Counter(..., registry=Registry())``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from monitorkit.errors import InvalidMetricNameError
from monitorkit.instrument.cardinality import DEFAULT_MAX_SERIES, CardinalityGuard
from monitorkit.instrument.catalog import CARDINALITY_REFUSED, spec
from monitorkit.instrument.metrics import DEFAULT_BUCKETS, Counter, Gauge, Histogram, MetricFamily, check_buckets
from monitorkit.samples import HOST, Sample, utcnow

if TYPE_CHECKING:
    from monitorkit.instrument.tools import Execution

DEFAULT_MAX_EXECUTIONS = 10_000
T = TypeVar("T")
M = TypeVar("M", bound=MetricFamily)


class Registry:
    """Hold metrics by name, snapshot them as Samples and buffer tool runs until they are sent.

    ``max_series`` is the default cardinality limit of its metrics; ``strict=True`` makes a
    refused label set raise ``CardinalityLimitError`` instead of returning a no-op child.
    """

    def __init__(
        self,
        *,
        max_series: int = DEFAULT_MAX_SERIES,
        strict: bool = False,
        max_executions: int = DEFAULT_MAX_EXECUTIONS,
    ) -> None:
        self.guard = CardinalityGuard(max_series, strict=strict, on_refused=self._count_refusal)
        self._metrics: dict[str, MetricFamily] = {}
        self._sample_names: dict[str, str] = {}
        self._lock = threading.RLock()
        self._executions: deque[Execution] = deque()
        self.max_executions = max_executions
        self.dropped_executions = 0
        self._bundles: dict[str, object] = {}
        # Called once, on the first registration (the global registry's autostart of the sender).
        self.on_first_register: Callable[[Registry], None] | None = None

    @property
    def max_series(self) -> int:
        """Return the default limit of distinct label sets per metric."""
        return self.guard.max_series

    @max_series.setter
    def max_series(self, value: int) -> None:
        from monitorkit.instrument.cardinality import check_limit

        self.guard.max_series = check_limit(value)

    def register(self, metric: MetricFamily) -> None:
        """Add ``metric``; a name (or a sample name it writes) already taken raises InvalidMetricNameError."""
        with self._lock:
            for sample_name in (metric.name, *metric.sample_names()):
                owner = self._sample_names.get(sample_name)
                if owner is not None:
                    raise InvalidMetricNameError(
                        f"metric name {sample_name!r} is already used in this registry by {owner!r}; reuse that "
                        "metric object (or registry.counter()/gauge()/histogram(), which return it) or pick another name"
                    )
            self._metrics[metric.name] = metric
            for sample_name in (metric.name, *metric.sample_names()):
                self._sample_names[sample_name] = metric.name
            metric._attach(self, self.guard)
            hook, self.on_first_register = self.on_first_register, None  # fires once
        if hook is not None:
            hook(self)

    def unregister(self, metric: MetricFamily) -> None:
        """Remove ``metric`` (its series are no longer sent)."""
        with self._lock:
            if self._metrics.get(metric.name) is metric:
                del self._metrics[metric.name]
                for sample_name in (metric.name, *metric.sample_names()):
                    self._sample_names.pop(sample_name, None)

    def get(self, name: str) -> MetricFamily | None:
        """Return the metric called ``name``, or None."""
        return self._metrics.get(name)

    def metrics(self) -> list[MetricFamily]:
        """Return every registered metric."""
        with self._lock:
            return list(self._metrics.values())

    def _get_or_create(self, cls: type[M], name: str, labelnames: Iterable[str], make: Callable[[], M]) -> M:
        with self._lock:
            known = self._metrics.get(name)
            if known is None:
                return make()
            if type(known) is not cls or known.labelnames != tuple(labelnames):
                raise InvalidMetricNameError(
                    f"metric {name!r} already exists in this registry as a {known.kind} with labels "
                    f"{list(known.labelnames)}; use the same definition or another name"
                )
            return known  # type: ignore[return-value]

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = (), *,
                max_series: int | None = None) -> Counter:
        """Return the counter ``name``, creating it on first use."""
        return self._get_or_create(Counter, name, labelnames, lambda: Counter(
            name, documentation, labelnames, registry=self, max_series=max_series))

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = (), *,
              max_series: int | None = None) -> Gauge:
        """Return the gauge ``name``, creating it on first use."""
        return self._get_or_create(Gauge, name, labelnames, lambda: Gauge(
            name, documentation, labelnames, registry=self, max_series=max_series))

    def histogram(self, name: str, documentation: str, labelnames: Sequence[str] = (), *,
                  buckets: Sequence[float] = DEFAULT_BUCKETS, max_series: int | None = None) -> Histogram:
        """Return the histogram ``name``, creating it on first use (same buckets required)."""
        hist = self._get_or_create(Histogram, name, labelnames, lambda: Histogram(
            name, documentation, labelnames, buckets=buckets, registry=self, max_series=max_series))
        if hist.bounds != check_buckets(name, buckets):
            raise InvalidMetricNameError(f"histogram {name!r} already exists with buckets {list(hist.bounds)}")
        return hist

    def bundle(self, key: str, make: Callable[[Registry], T]) -> T:
        """Return the object ``make(self)`` built once per registry under ``key`` (helpers' metric sets)."""
        with self._lock:
            found = self._bundles.get(key)
            if found is None:
                found = self._bundles[key] = make(self)
            return found  # type: ignore[return-value]

    def collect(self, now: datetime | None = None, host: str = HOST) -> list[Sample]:
        """Return a snapshot of every series as Samples stamped ``now``."""
        at = now or utcnow()
        out: list[Sample] = []
        for metric in self.metrics():
            out.extend(metric.collect(at, host))
        return out

    def _count_refusal(self, metric: str) -> None:
        refused = self.counter(*spec(CARDINALITY_REFUSED), max_series=1_000_000)
        refused.labels(metric=metric).inc()

    def record_execution(self, execution: Execution) -> None:
        """Buffer one tool run until a sender takes it; the oldest are dropped past ``max_executions``."""
        with self._lock:
            self._executions.append(execution)
            while len(self._executions) > self.max_executions:
                self._executions.popleft()
                self.dropped_executions += 1

    def drain_executions(self) -> list[Execution]:
        """Return and forget every buffered tool run."""
        with self._lock:
            out = list(self._executions)
            self._executions.clear()
            return out


REGISTRY = Registry()
