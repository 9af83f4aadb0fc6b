"""The cardinality guard: a cap on distinct label sets per metric, with counted, logged refusals.

A metric whose label values come from user input (ids, paths, emails) can grow without
bound and fill the database. Each metric may hold at most ``max_series`` label sets (its own
limit, else its registry's, default 1000). A label set past the limit is refused: the
refusal is counted (``refused`` and ``monitorkit_cardinality_refused_total{metric}``),
logged as an error naming the metric, and ``.labels()`` returns a no-op child so the
application goes on; label sets that already exist keep working. With ``strict=True``
``.labels()`` raises ``CardinalityLimitError`` instead (for tests and development).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from monitorkit.errors import CardinalityLimitError, InvalidValueError

log = logging.getLogger(__name__)

DEFAULT_MAX_SERIES = 1000
LOG_EVERY_SECONDS = 60.0


def check_limit(value: object, what: str = "max_series") -> int:
    """Return ``value`` if it is a positive int, else raise InvalidValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidValueError(f"{what} must be an integer >= 1, got {value!r}")
    return value


class CardinalityGuard:
    """Decide whether a metric may add a label set; count, log (or raise on) refusals."""

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES, *, strict: bool = False) -> None:
        self.max_series = check_limit(max_series)
        self.strict = strict
        self.refused: dict[str, int] = {}
        self._last_log: dict[str, float] = {}
        self._lock = threading.Lock()

    def limit(self, metric_limit: int | None) -> int:
        """Return the limit that applies to a metric (its own, else this guard's)."""
        return self.max_series if metric_limit is None else metric_limit

    def refuse(self, metric: str, labels: Mapping[str, str], limit: int) -> None:
        """Count and log a refused label set of ``metric``; raise if the guard is strict."""
        with self._lock:
            count = self.refused[metric] = self.refused.get(metric, 0) + 1
            now = time.monotonic()
            due = now - self._last_log.get(metric, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS
            if due:
                self._last_log[metric] = now
        message = (
            f"metric {metric!r} already has {limit} label sets (its max_series); refused new label set "
            f"{dict(labels)} ({count} refused so far, counted in monitorkit_cardinality_refused_total). "
            "Drop unbounded values such as ids from the labels, or raise max_series for this metric"
        )
        if self.strict:
            raise CardinalityLimitError(message)
        if due:  # once a minute per metric, so a runaway label does not flood the log
            log.error(message)
