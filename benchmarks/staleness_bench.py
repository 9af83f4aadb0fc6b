"""What the stale-marker tracker costs a collector: its time per collect beside the collect's own.

    .venv/bin/python benchmarks/staleness_bench.py [--repeat 20]

For each default collector on this machine (real psutil and /proc), one collect is timed, then
``SeriesTracker.vanished`` on that collect's samples (the scheduler calls it once per collect)
and, beside it, a tracker keyed by the store's JSON series keys (the form the markers are
written in) as the peer it replaced. Then the OTLP receiver's per-stream comparison
(``StreamTracker.settle``) on a request of 5,000 series in 50 metrics, nothing vanished, beside
what the receiver spends on such a request (interop_bench.py otlp: about 11 µs a point). Times are
the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import timeit
from datetime import UTC, datetime

import numpy as np
from rich.console import Console
from rich.table import Table

from monitorkit.collectors import Collector, default_collectors
from monitorkit.interop.otlp_stale import Export, StreamTracker
from monitorkit.rules.staleness import SeriesTracker, series_key
from monitorkit.samples import Sample


def json_keys(samples: list[Sample], last: set[str]) -> set[str]:
    """The peer: every sample's key built as the store's JSON series key, and the difference."""
    keys = {series_key(s.host, s.name, s.labels) for s in samples}
    return last - keys


def measure(collector: Collector, repeat: int) -> tuple[int, float, float, float]:
    """Return (samples, collect s, tracker s, JSON-key peer s), each the best of ``repeat`` runs."""
    collector.collect(datetime.now(UTC))  # the first collect warms caches and baselines
    now = datetime.now(UTC)
    collect = min(timeit.repeat(lambda: collector.collect(now), number=1, repeat=max(3, repeat // 4)))
    samples = list(collector.collect(now))
    tracker = SeriesTracker()
    tracker.vanished(samples)
    ours = min(timeit.repeat(lambda: tracker.vanished(samples), number=1, repeat=repeat))
    last = {series_key(s.host, s.name, s.labels) for s in samples}
    peer = min(timeit.repeat(lambda: json_keys(samples, last), number=1, repeat=repeat))
    return len(samples), collect, ours, peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    table = Table("collector", "samples", "collect ms", "tracker ms", "tracker µs/sample", "share", "JSON-key peer ms")
    for collector in default_collectors():
        n, collect, ours, peer = measure(collector, args.repeat)
        per = ours / n * 1e6 if n else 0.0
        table.add_row(collector.name, str(n), f"{collect * 1000:.2f}", f"{ours * 1000:.3f}", f"{per:.2f}",
                      f"{ours / collect:.1%}" if collect else "-", f"{peer * 1000:.3f}")
    Console().print(table)
    print(f"OTLP stream comparison, 5,000 series a request: {otlp_settle(args.repeat) * 1e9:.0f} ns a point")


def otlp_settle(repeat: int, points: int = 5_000) -> float:
    """Return the seconds ``settle`` takes per point of a request whose stream reported everything again."""
    tracker = StreamTracker()
    index = np.arange(points, dtype=np.int64)
    ids = np.arange(1, points + 1, dtype=np.int64)
    step = points // 50
    exports = 0

    def one() -> None:
        nonlocal exports
        exports += 1  # a newer export each time: the comparing path
        export = Export(newest=exports, ranges=[(m * step, (m + 1) * step) for m in range(50)])
        tracker.settle(None, {((("service.name", "bench"),), "scope", "1"): export}, index, ids,  # type: ignore[arg-type]
                       lambda key: 0)

    one()
    return min(timeit.repeat(one, number=50, repeat=repeat)) / 50 / points


if __name__ == "__main__":
    main()
