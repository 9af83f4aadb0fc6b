"""The value of one series: counter, gauge and histogram children, the block timer and the no-op child."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from types import TracebackType
from typing import Any, ClassVar

from monitorkit.errors import InvalidValueError

INF = float("inf")


def _bad_value(metric: str, what: str, value: object) -> InvalidValueError:
    return InvalidValueError(f"{what} of metric {metric!r} must be a finite number, got {value!r}")


def _finite(value: float) -> bool:
    """Tell whether ``value`` is a finite number (callers pass anything: a string is no number, not a TypeError)."""
    try:
        return -INF < value < INF
    except TypeError:
        return False


class _ValueChild:
    """One series holding one float: what a counter's and a gauge's children share."""

    __slots__ = ("_lock", "_metric", "_value", "label_map")

    def __init__(self, metric: str, label_map: dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._value = 0.0
        self._metric = metric
        self.label_map = label_map

    def get(self) -> float:
        """Return the current value."""
        return self._value


class CounterChild(_ValueChild):
    """One series of a counter: ``inc(amount)`` adds a finite amount >= 0."""

    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1); counters only go up."""
        if not (_finite(amount) and amount >= 0):
            raise InvalidValueError(
                f"counter {self._metric!r} can only grow by a finite amount >= 0, got {amount!r}; use a Gauge "
                "for values that go down"
            )
        with self._lock:
            self._value += amount


class GaugeChild(_ValueChild):
    """One series of a gauge: ``set``, ``inc``, ``dec`` and ``set_to_current_time``."""

    __slots__ = ()

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        if not _finite(value):
            raise _bad_value(self._metric, "value", value)
        self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1)."""
        if not _finite(amount):
            raise _bad_value(self._metric, "amount", amount)
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract ``amount`` (default 1)."""
        self.inc(-amount)

    def set_to_current_time(self) -> None:
        """Set the gauge to the current Unix time in seconds."""
        self._value = time.time()


class HistogramChild:
    """One series of a histogram: ``observe(value)`` counts it in its bucket and adds it to the sum."""

    __slots__ = ("_bounds", "_counts", "_lock", "_metric", "_sum", "bucket_labels", "label_map")

    def __init__(self, metric: str, label_map: dict[str, str], bounds: tuple[float, ...]) -> None:
        self._lock = threading.Lock()
        self._bounds = bounds  # finite upper bounds; the last count is the +Inf bucket
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._metric = metric
        self.label_map = label_map
        self.bucket_labels: list[dict[str, str]] | None = None  # label_map + each "le", built on first collect

    def observe(self, amount: float) -> None:
        """Record one observation of ``amount``."""
        if not _finite(amount):
            raise _bad_value(self._metric, "observation", amount)
        i = bisect_left(self._bounds, amount)  # first bound >= amount: the 'le' bucket it falls in
        with self._lock:
            self._counts[i] += 1
            self._sum += amount

    def time(self) -> Timer:
        """Return a context manager that observes the seconds its block took."""
        return Timer(self.observe)

    def snapshot(self) -> tuple[list[int], float, int]:
        """Return (cumulative bucket counts ending with +Inf, sum, count) taken atomically."""
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        cumulative: list[int] = []
        running = 0
        for c in counts:
            running += c
            cumulative.append(running)
        return cumulative, total, running


class Timer:
    """Observe the seconds a ``with`` block took: ``with hist.time(): work()``."""

    __slots__ = ("_observe", "_start")

    def __init__(self, observe: Any) -> None:
        self._observe = observe
        self._start = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._observe(time.perf_counter() - self._start)


class NoopChild:
    """What ``.labels()`` returns for a label set refused by the cardinality guard: every call does nothing."""

    __slots__ = ()
    label_map: ClassVar[dict[str, str]] = {}

    def inc(self, amount: float = 1.0) -> None:
        """Do nothing."""

    def dec(self, amount: float = 1.0) -> None:
        """Do nothing."""

    def set(self, value: float) -> None:
        """Do nothing."""

    def set_to_current_time(self) -> None:
        """Do nothing."""

    def observe(self, amount: float) -> None:
        """Do nothing."""

    def get(self) -> float:
        """Return 0."""
        return 0.0

    def time(self) -> Timer:
        """Return a timer that records nothing."""
        return Timer(self.observe)


NOOP = NoopChild()
