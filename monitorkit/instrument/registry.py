"""The Registry: the metrics of one application, snapshotted as Samples.

``REGISTRY`` is the default, global one; tests inject their own (``Counter(..., registry=Registry())``).
Like prometheus_client's ``CollectorRegistry`` it knows nothing of metric kinds: the factories
that return an existing metric or make it (``counter()``, ``gauge()``, ``histogram()``) live
next to the metric classes in ``metrics.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from monitorkit.errors import InvalidMetricNameError
from monitorkit.instrument.cardinality import DEFAULT_MAX_SERIES, CardinalityGuard, check_limit
from monitorkit.samples import HOST, Sample, utcnow

T = TypeVar("T")


class Metric(Protocol):
    """What a registry needs of a metric (``metrics.MetricFamily`` follows it)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def documentation(self) -> str: ...

    @property
    def labelnames(self) -> tuple[str, ...]: ...

    def sample_names(self) -> tuple[str, ...]:
        """Return the sample names the metric writes."""
        ...

    def _attach(self, registry: Registry, guard: CardinalityGuard) -> None: ...

    def collect(self, now: datetime, host: str = HOST) -> list[Sample]:
        """Return one Sample per series at ``now``."""
        ...


M = TypeVar("M", bound=Metric)


class Registry:
    """Hold metrics by name and snapshot them as Samples.

    ``max_series`` is the default cardinality limit of its metrics; ``strict=True`` makes a
    refused label set raise ``CardinalityLimitError`` instead of returning a no-op child.
    """

    def __init__(self, *, max_series: int = DEFAULT_MAX_SERIES, strict: bool = False) -> None:
        self.guard = CardinalityGuard(max_series, strict=strict)
        self._metrics: dict[str, Metric] = {}
        self._sample_names: dict[str, str] = {}
        self._lock = threading.RLock()
        self._bundles: dict[str, object] = {}
        # Called once, on the first registration (the global registry's autostart of the sender).
        self.on_first_register: Callable[[Registry], None] | None = None

    @property
    def max_series(self) -> int:
        """Return the default limit of distinct label sets per metric."""
        return self.guard.max_series

    @max_series.setter
    def max_series(self, value: int) -> None:
        self.guard.max_series = check_limit(value)

    def register(self, metric: Metric) -> None:
        """Add ``metric``; a name (or a sample name it writes) already taken raises InvalidMetricNameError."""
        with self._lock:
            for sample_name in (metric.name, *metric.sample_names()):
                owner = self._sample_names.get(sample_name)
                if owner is not None:
                    raise InvalidMetricNameError(
                        f"metric name {sample_name!r} is already used in this registry by {owner!r}; reuse that "
                        "metric object (or counter()/gauge()/histogram() with registry=, which return it) or pick "
                        "another name"
                    )
            self._metrics[metric.name] = metric
            for sample_name in (metric.name, *metric.sample_names()):
                self._sample_names[sample_name] = metric.name
            metric._attach(self, self.guard)
            hook, self.on_first_register = self.on_first_register, None  # fires once
        if hook is not None:
            hook(self)

    def unregister(self, metric: Metric) -> None:
        """Remove ``metric`` (its series are no longer sent)."""
        with self._lock:
            if self._metrics.get(metric.name) is metric:
                del self._metrics[metric.name]
                for sample_name in (metric.name, *metric.sample_names()):
                    self._sample_names.pop(sample_name, None)

    def get(self, name: str) -> Metric | None:
        """Return the metric called ``name``, or None."""
        return self._metrics.get(name)

    def metrics(self) -> list[Metric]:
        """Return every registered metric."""
        with self._lock:
            return list(self._metrics.values())

    def get_or_create(self, name: str, make: Callable[[], M]) -> Metric:
        """Return the metric called ``name``, else the one ``make()`` creates (and registers), atomically."""
        with self._lock:
            known = self._metrics.get(name)
            return known if known is not None else make()

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


REGISTRY = Registry()
