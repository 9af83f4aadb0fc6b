"""The host charts that share one table of rows read series of one collector: one cadence, no cut lines."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from monitorkit.collectors import default_collectors
from monitorkit.dashboard.panels.host import CHARTS


def test_every_aligned_host_chart_reads_one_collector() -> None:
    # An aligned chart keeps one row per sample time for all its lines; a line from a collector with
    # another cadence would be NaN between its own samples and draw as loose dots (seen: TCP connections).
    made: dict[str, str] = {}
    collectors = default_collectors()
    for _ in range(2):  # counters and rates need two passes
        for collector in collectors:
            for sample in collector.collect(datetime.now(UTC)):
                made.setdefault(sample.name, collector.name)
        time.sleep(0.3)
    checked = 0
    for kind, specs in CHARTS.items():
        for spec in specs:
            metrics = {m for t in spec.traces for m in (t.metric, t.over) if m}
            sources = {made[m] for m in metrics if m in made}
            if spec.aligned:
                assert len(sources) <= 1, f"{kind} / {spec.title} mixes collectors {sources}: make it aligned=False"
                checked += bool(sources)
    assert checked >= 10, "most host charts read metrics this machine's collectors make"


def test_a_chart_gives_each_of_twenty_series_its_own_colour() -> None:
    from monitorkit.dashboard.charts import TimeChart
    from monitorkit.dashboard.lines import Trace

    chart = TimeChart("TCP states", (Trace("net_connections", "{state}"),), aligned=False)
    for i in range(20):  # they arrive one by one, as a host's states do
        chart.add(("state", i), [(1000 + i, "v")], f"state {i}")
    colours = [colour for colour, _ in chart.labels]
    assert len(set(colours)) == 20, colours
