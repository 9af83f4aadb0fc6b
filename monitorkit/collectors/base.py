"""The Collector protocol every source of samples follows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol, runtime_checkable

from monitorkit.samples import Sample


@runtime_checkable
class Collector(Protocol):
    """Something that returns samples when asked; it never stores, alerts or renders.

    ``name`` identifies the collector in health and logs; ``interval`` is its default
    cadence in seconds (cheap counters 1 s, costly scans slower).
    """

    name: str
    interval: float

    def collect(self, now: datetime) -> Iterable[Sample]:
        """Return the samples observed at ``now``."""
        ...
