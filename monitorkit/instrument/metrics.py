"""Counters, gauges and histograms with labels, in the spirit of prometheus_client, and their factories.

``c = Counter("jobs_processed_total", "Jobs done", labelnames=["queue"]); c.labels(queue="a").inc()``;
``counter("jobs_processed_total", "Jobs done", ["queue"], registry=reg)`` returns the metric of
that name in ``reg`` or creates it.

Names and labels are checked when the metric or the label set is created and refused with
``InvalidMetricNameError`` / ``InvalidLabelError``; values with ``InvalidValueError``. A metric
without labels is its own (only) child; a labelled one hands out one child per label set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any, ClassVar, TypeVar

from monitorkit.errors import InvalidLabelError, InvalidMetricNameError, InvalidValueError
from monitorkit.instrument.cardinality import CardinalityGuard, check_limit
from monitorkit.instrument.catalog import CARDINALITY_REFUSED, spec
from monitorkit.instrument.registry import REGISTRY, Registry
from monitorkit.instrument.values import NOOP, CounterChild, GaugeChild, HistogramChild, NoopChild, Timer
from monitorkit.samples import HOST, LABEL_NAME_RE, Sample, validate_labels, validate_name

__all__ = ["NOOP", "Counter", "CounterChild", "Gauge", "GaugeChild", "Histogram", "HistogramChild", "MetricFamily",
           "NoopChild", "Timer", "counter", "gauge", "histogram"]

INF = float("inf")
# prometheus_client's defaults: request latencies from 5 ms to 10 s.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
STANDALONE_GUARD = CardinalityGuard()


def format_le(bound: float) -> str:
    """Return the ``le`` label of a bucket bound as Prometheus writes it (``0.5``, ``1.0``, ``+Inf``)."""
    return "+Inf" if bound == INF else repr(float(bound))


def check_labelnames(name: str, labelnames: Iterable[str], reserved: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Return ``labelnames`` as a tuple after checking each name, else raise InvalidLabelError."""
    if isinstance(labelnames, str):
        raise InvalidLabelError(f"labelnames of metric {name!r} must be a list of names, not the string {labelnames!r}")
    names = tuple(labelnames)
    for label in names:
        if not isinstance(label, str) or not LABEL_NAME_RE.match(label) or label.startswith("__"):
            raise InvalidLabelError(
                f"invalid label name {label!r} on metric {name!r}: use letters, digits and '_', not starting "
                "with a digit or '__'"
            )
        if label in reserved:
            raise InvalidLabelError(f"label name {label!r} is reserved on metric {name!r}")
    if len(set(names)) != len(names):
        raise InvalidLabelError(f"metric {name!r} lists a label name twice: {names}")
    return names


class MetricFamily:
    """What every metric shares: name, help, label names, children and the cardinality guard."""

    kind: ClassVar[str] = ""
    _child_methods: ClassVar[tuple[str, ...]] = ()
    _reserved_labels: ClassVar[tuple[str, ...]] = ()

    name: str
    documentation: str
    labelnames: tuple[str, ...]
    max_series: int | None
    registry: Registry | None

    def _setup(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str],
        registry: Registry | None,
        max_series: int | None,
    ) -> None:
        self.name = self._check_name(validate_name(name))
        if not isinstance(documentation, str):
            raise InvalidMetricNameError(f"help text of metric {name!r} must be a string")
        self.documentation = documentation
        self.labelnames = check_labelnames(name, labelnames, self._reserved_labels)
        self.max_series = None if max_series is None else check_limit(max_series)
        self.registry = None
        self._guard: CardinalityGuard = STANDALONE_GUARD
        self._family_lock = threading.Lock()
        self._children: dict[tuple[Any, ...], Any] = {}
        if self.labelnames:
            # A labelled metric has no value of its own: shadow the value methods with one that explains.
            for method in self._child_methods:
                setattr(self, method, self._needs_labels)
        else:
            self._children[()] = self
        if registry is not None:
            registry.register(self)

    def _check_name(self, name: str) -> str:
        return name

    def sample_names(self) -> tuple[str, ...]:
        """Return the sample names this metric writes (a histogram writes three)."""
        return (self.name,)

    def _needs_labels(self, *args: object, **kwargs: object) -> None:
        wanted = ", ".join(f"{n}=..." for n in self.labelnames)
        raise InvalidLabelError(f"metric {self.name!r} has labels; call .labels({wanted}) first")

    def _attach(self, registry: Registry, guard: CardinalityGuard) -> None:
        self.registry = registry
        self._guard = guard

    def labels(self, *values: str, **labelkw: str) -> Any:
        """Return the child for one label set: ``.labels("a")`` or ``.labels(queue="a")``."""
        names = self.labelnames
        if labelkw:
            if values:
                raise InvalidLabelError(f"metric {self.name!r}: pass label values by position or by name, not both")
            if len(labelkw) != len(names):
                raise self._mismatch(labelkw)
            try:
                key = (labelkw[names[0]],) if len(names) == 1 else tuple([labelkw[n] for n in names])
            except KeyError:
                raise self._mismatch(labelkw) from None
        else:
            key = values
            if len(key) != len(names) or not names:
                raise self._mismatch(dict(enumerate(values)))
        try:
            child = self._children.get(key)
        except TypeError:  # an unhashable value: let the validation below explain it
            child = None
        if child is None:
            child = self._add_child(key)
        return child

    def _mismatch(self, given: object) -> InvalidLabelError:
        if not self.labelnames:
            return InvalidLabelError(f"metric {self.name!r} has no labels; call its methods directly")
        return InvalidLabelError(
            f"metric {self.name!r} takes exactly the labels {list(self.labelnames)}, got {given!r}"
        )

    def _add_child(self, key: tuple[Any, ...]) -> Any:
        label_map = validate_labels(dict(zip(self.labelnames, key, strict=True)), metric=self.name)
        limit = self._guard.limit(self.max_series)
        with self._family_lock:
            child = self._children.get(key)
            if child is not None:
                return child
            if len(self._children) < limit:
                child = self._children[key] = self._new_child(label_map)
                return child
        if self.registry is not None:  # counted before a strict guard raises, and sent with the other metrics
            refused = counter(*spec(CARDINALITY_REFUSED), registry=self.registry, max_series=1_000_000)
            refused.labels(metric=self.name).inc()
        self._guard.refuse(self.name, label_map, limit)
        return NOOP

    def _new_child(self, label_map: dict[str, str]) -> Any:
        raise NotImplementedError

    def remove(self, *values: str, **labelkw: str) -> None:
        """Forget one label set (it is no longer sent; its slot is freed for the cardinality limit)."""
        if not self.labelnames:
            raise self._mismatch(values)
        try:
            key = tuple(labelkw[n] for n in self.labelnames) if labelkw else values
        except KeyError:
            raise self._mismatch(labelkw) from None
        with self._family_lock:
            self._children.pop(key, None)

    def children(self) -> list[Any]:
        """Return every live child (the metric itself when it has no labels)."""
        with self._family_lock:
            return list(self._children.values())

    def collect(self, now: datetime, host: str = HOST) -> list[Sample]:
        """Return one Sample per series at ``now``."""
        return [Sample(now, self.name, child.label_map, child._value, host) for child in self.children()]


class _ValueFamily(MetricFamily):
    """A counter or a gauge: one float per series, its children made by ``_child``."""

    _child: ClassVar[type[CounterChild | GaugeChild]]

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        registry: Registry | None = ...,  # type: ignore[assignment]
        max_series: int | None = None,
    ) -> None:
        self._child.__init__(self, name, {})  # type: ignore[arg-type]  # the family is its own child (no labels)
        self._setup(name, documentation, labelnames, _default_registry(registry), max_series)

    def _new_child(self, label_map: dict[str, str]) -> CounterChild | GaugeChild:
        return self._child(self.name, label_map)


class Counter(_ValueFamily, CounterChild):
    """A value that only goes up; its name ends in ``_total``: ``Counter("jobs_total", "Jobs done")``."""

    kind = "counter"
    _child = CounterChild
    _child_methods = ("inc", "get")

    def _check_name(self, name: str) -> str:
        if not name.endswith("_total"):
            raise InvalidMetricNameError(
                f"counter name {name!r} must end in '_total' (the store computes rates of *_total series), "
                f"e.g. {name + '_total'!r}"
            )
        return name


class Gauge(_ValueFamily, GaugeChild):
    """A value that goes up and down: ``Gauge("queue_depth", "Jobs waiting").set(3)``."""

    kind = "gauge"
    _child = GaugeChild
    _child_methods = ("set", "inc", "dec", "set_to_current_time", "get")

    def _check_name(self, name: str) -> str:
        if name.endswith("_total"):
            raise InvalidMetricNameError(f"gauge name {name!r} ends in '_total', which is reserved for counters")
        return name


class Histogram(MetricFamily, HistogramChild):
    """Observations counted in buckets, stored as ``<name>_bucket{le=...}``, ``<name>_sum``, ``<name>_count``.

    ``Histogram("request_seconds", "Latency", buckets=(0.1, 0.5, 1)).observe(0.2)``
    """

    kind = "histogram"
    _child_methods = ("observe", "time", "snapshot")
    _reserved_labels = ("le",)

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        registry: Registry | None = ...,  # type: ignore[assignment]
        max_series: int | None = None,
    ) -> None:
        self.bounds = check_buckets(name, buckets)
        self.le_values = (*(format_le(b) for b in self.bounds), "+Inf")
        HistogramChild.__init__(self, name, {}, self.bounds)
        self._setup(name, documentation, labelnames, _default_registry(registry), max_series)

    def _check_name(self, name: str) -> str:
        for suffix in ("_total", "_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                raise InvalidMetricNameError(
                    f"histogram name {name!r} must not end in {suffix!r}: the histogram writes {name}_bucket, "
                    f"{name}_sum and {name}_count"
                )
        return name

    def sample_names(self) -> tuple[str, ...]:
        """Return ``<name>_bucket``, ``<name>_sum`` and ``<name>_count``."""
        return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")

    def _new_child(self, label_map: dict[str, str]) -> HistogramChild:
        return HistogramChild(self.name, label_map, self.bounds)

    def collect(self, now: datetime, host: str = HOST) -> list[Sample]:
        """Return cumulative bucket counts (``le`` up to ``+Inf``), the sum and the count of every series."""
        bucket_name, sum_name, count_name = self.sample_names()
        out: list[Sample] = []
        for child in self.children():
            cumulative, total, count = child.snapshot()
            base = child.label_map
            bucket_labels = child.bucket_labels
            if bucket_labels is None:  # built once: queued snapshots share these dicts
                bucket_labels = child.bucket_labels = [{**base, "le": le} for le in self.le_values]
            for labels, value in zip(bucket_labels, cumulative, strict=True):
                out.append(Sample(now, bucket_name, labels, float(value), host))
            out.append(Sample(now, sum_name, base, total, host))
            out.append(Sample(now, count_name, base, float(count), host))
        return out


def check_buckets(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    """Return the finite, strictly increasing upper bounds of ``buckets`` (a trailing +Inf is implied)."""
    try:
        bounds = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise InvalidValueError(f"buckets of histogram {name!r} must be numbers, got {buckets!r}") from None
    if bounds and bounds[-1] == INF:
        bounds.pop()
    if not bounds:
        raise InvalidValueError(f"histogram {name!r} needs at least one finite bucket bound")
    for b in bounds:
        if not -INF < b < INF:
            raise InvalidValueError(f"bucket bound {b} of histogram {name!r} is not finite (+Inf is implied)")
    if any(b >= c for b, c in pairwise(bounds)):
        raise InvalidValueError(f"buckets of histogram {name!r} must be strictly increasing, got {list(buckets)}")
    return tuple(bounds)


def _default_registry(registry: Registry | None) -> Registry | None:
    return REGISTRY if registry is ... else registry


F = TypeVar("F", bound=MetricFamily)


def _existing(registry: Registry, cls: type[F], name: str, labelnames: Iterable[str], make: Callable[[], F]) -> F:
    """Return ``registry``'s metric ``name`` if it is a ``cls`` with these labels, else make it; raise if it differs."""
    known = registry.get_or_create(name, make)
    if type(known) is not cls or known.labelnames != tuple(labelnames):
        kind = getattr(known, "kind", type(known).__name__)
        raise InvalidMetricNameError(
            f"metric {name!r} already exists in this registry as a {kind} with labels "
            f"{list(getattr(known, 'labelnames', ()))}; use the same definition or another name"
        )
    return known


def counter(name: str, documentation: str, labelnames: Sequence[str] = (), *, registry: Registry = REGISTRY,
            max_series: int | None = None) -> Counter:
    """Return the counter ``name`` of ``registry``, creating it on first use."""
    return _existing(registry, Counter, name, labelnames, lambda: Counter(
        name, documentation, labelnames, registry=registry, max_series=max_series))


def gauge(name: str, documentation: str, labelnames: Sequence[str] = (), *, registry: Registry = REGISTRY,
          max_series: int | None = None) -> Gauge:
    """Return the gauge ``name`` of ``registry``, creating it on first use."""
    return _existing(registry, Gauge, name, labelnames, lambda: Gauge(
        name, documentation, labelnames, registry=registry, max_series=max_series))


def histogram(name: str, documentation: str, labelnames: Sequence[str] = (), *, registry: Registry = REGISTRY,
              buckets: Sequence[float] = DEFAULT_BUCKETS, max_series: int | None = None) -> Histogram:
    """Return the histogram ``name`` of ``registry``, creating it on first use (same buckets required)."""
    hist = _existing(registry, Histogram, name, labelnames, lambda: Histogram(
        name, documentation, labelnames, buckets=buckets, registry=registry, max_series=max_series))
    if hist.bounds != check_buckets(name, buckets):
        raise InvalidMetricNameError(f"histogram {name!r} already exists with buckets {list(hist.bounds)}")
    return hist
