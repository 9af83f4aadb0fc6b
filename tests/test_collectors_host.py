"""CPU and memory collectors against canned sources: exact names, labels and values."""

from __future__ import annotations

from collector_helpers import NOW, rows

from monitorkit.collectors import CannedSource, CpuCollector, MemoryCollector
from monitorkit.collectors.records import CpuTimes, SwapMemory, VirtualMemory


def test_cpu_collector_reports_percent_seconds_load_and_count() -> None:
    source = CannedSource(
        percent=37.5,
        per_cpu_percent=[12.5, 62.5, 50.0],
        times=CpuTimes(user=10.25, nice=0.5, system=3.0, idle=99.0, iowait=1.5, irq=0.25, softirq=0.125, steal=2.0),
        loadavg=(1.5, 0.75, 0.5),
        cpus=3,
    )
    collector = CpuCollector(source=source)
    assert (collector.name, collector.interval) == ("cpu", 1.0)
    assert rows(collector.collect(NOW)) == [
        ("cpu_percent", {}, 37.5),
        ("cpu_percent", {"cpu": "0"}, 12.5),
        ("cpu_percent", {"cpu": "1"}, 62.5),
        ("cpu_percent", {"cpu": "2"}, 50.0),
        ("cpu_seconds_total", {"mode": "user"}, 10.25),
        ("cpu_seconds_total", {"mode": "nice"}, 0.5),
        ("cpu_seconds_total", {"mode": "system"}, 3.0),
        ("cpu_seconds_total", {"mode": "idle"}, 99.0),
        ("cpu_seconds_total", {"mode": "iowait"}, 1.5),
        ("cpu_seconds_total", {"mode": "irq"}, 0.25),
        ("cpu_seconds_total", {"mode": "softirq"}, 0.125),
        ("cpu_seconds_total", {"mode": "steal"}, 2.0),
        ("load1", {}, 1.5),
        ("load5", {}, 0.75),
        ("load15", {}, 0.5),
        ("cpu_count", {}, 3.0),
    ]


def test_cpu_collector_skips_an_unknown_cpu_count_and_honours_interval() -> None:
    collector = CpuCollector(source=CannedSource(cpus=None), interval=2.5)
    names = [s.name for s in collector.collect(NOW)]
    assert "cpu_count" not in names
    assert "load1" in names
    assert collector.interval == 2.5


def test_memory_collector_reports_bytes_percents_and_raw_swap_counters() -> None:
    source = CannedSource(
        memory=VirtualMemory(total=16_000, available=12_000, percent=25.0, used=3_000, free=9_000),
        swap=SwapMemory(total=2_000, used=500, free=1_500, percent=25.0, sin=123_456, sout=654_321),
    )
    collector = MemoryCollector(source=source)
    assert (collector.name, collector.interval) == ("memory", 1.0)
    assert rows(collector.collect(NOW)) == [
        ("memory_total_bytes", {}, 16_000.0),
        ("memory_available_bytes", {}, 12_000.0),
        ("memory_used_bytes", {}, 3_000.0),
        ("memory_free_bytes", {}, 9_000.0),
        ("memory_percent", {}, 25.0),
        ("swap_total_bytes", {}, 2_000.0),
        ("swap_used_bytes", {}, 500.0),
        ("swap_percent", {}, 25.0),
        ("swap_in_bytes_total", {}, 123_456.0),
        ("swap_out_bytes_total", {}, 654_321.0),
    ]
