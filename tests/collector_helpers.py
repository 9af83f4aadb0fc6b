"""What the collector tests share: the fixed collection time and a flattening of samples that checks time and host."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from monitorkit.samples import HOST, Sample

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def rows(samples: Iterable[Sample], now: datetime = NOW) -> list[tuple[str, dict[str, str], float]]:
    """Return (name, labels, value) of each sample after checking its time, host and float value."""
    out = []
    for s in samples:
        assert s.time == now and s.host == HOST
        assert isinstance(s.value, float)
        out.append((s.name, dict(s.labels), s.value))
    return out
