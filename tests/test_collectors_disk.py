"""Disk space and disk I/O collectors against canned sources."""

from __future__ import annotations

from typing import NamedTuple

from collector_helpers import NOW, rows

from monitorkit.collectors import CannedSource, DiskIOCollector, DiskUsageCollector
from monitorkit.collectors.records import DiskIO, DiskPartition, DiskUsage


def test_disk_usage_skips_pseudo_filesystems_repeated_devices_and_vanished_mounts() -> None:
    source = CannedSource(
        partitions=[
            DiskPartition("/dev/sda1", "/srv/bind", "ext4"),  # bind mount of / listed first
            DiskPartition("/dev/sda1", "/", "ext4"),
            DiskPartition("tmpfs", "/run", "tmpfs"),
            DiskPartition("/dev/loop3", "/snap/core/1", "squashfs"),
            DiskPartition("overlay", "/var/lib/docker/overlay2/x/merged", "overlay"),
            DiskPartition("/dev/sdc1", "/mnt/gone", "ext4"),  # unmounted after listing: disk_usage raises
            DiskPartition("/dev/sdb1", "/data", "xfs"),
        ],
        usage={
            "/": DiskUsage(total=1_000, used=250, free=700, percent=26.3),
            "/srv/bind": DiskUsage(total=1_000, used=250, free=700, percent=26.3),
            "/run": DiskUsage(total=10, used=1, free=9, percent=10.0),
            "/snap/core/1": DiskUsage(total=5, used=5, free=0, percent=100.0),
            "/data": DiskUsage(total=4_000, used=3_000, free=1_000, percent=75.0),
        },
    )
    collector = DiskUsageCollector(source=source)
    assert (collector.name, collector.interval) == ("disk_usage", 10.0)
    root = {"mount": "/", "device": "/dev/sda1", "fstype": "ext4"}
    data = {"mount": "/data", "device": "/dev/sdb1", "fstype": "xfs"}
    assert rows(collector.collect(NOW)) == [
        ("disk_total_bytes", root, 1_000.0),
        ("disk_used_bytes", root, 250.0),
        ("disk_free_bytes", root, 700.0),
        ("disk_used_percent", root, 26.3),
        ("disk_total_bytes", data, 4_000.0),
        ("disk_used_bytes", data, 3_000.0),
        ("disk_free_bytes", data, 1_000.0),
        ("disk_used_percent", data, 75.0),
    ]


def test_disk_io_reports_raw_counters_per_whole_disk_in_seconds() -> None:
    source = CannedSource(disks={
        "sda": DiskIO(read_count=10, write_count=20, read_bytes=4_096, write_bytes=8_192,
                      read_time=1_500, write_time=250, busy_time=1_750),
        "sda1": DiskIO(1, 1, 1, 1, 1, 1, 1),
        "nvme0n1": DiskIO(3, 4, 512, 1_024, 5, 6, 7),
        "nvme0n1p2": DiskIO(1, 1, 1, 1, 1, 1, 1),
        "loop0": DiskIO(1, 1, 1, 1, 1, 1, 1),
        "zram0": DiskIO(1, 1, 1, 1, 1, 1, 1),
        "dm-0": DiskIO(7, 8, 9, 10, 11, 12, 13),
    })
    collector = DiskIOCollector(source=source)
    assert (collector.name, collector.interval) == ("disk_io", 1.0)
    got = rows(collector.collect(NOW))
    assert sorted({labels["disk"] for _, labels, _ in got}) == ["dm-0", "nvme0n1", "sda"]
    assert [row for row in got if row[1] == {"disk": "sda"}] == [
        ("disk_read_bytes_total", {"disk": "sda"}, 4_096.0),
        ("disk_written_bytes_total", {"disk": "sda"}, 8_192.0),
        ("disk_reads_total", {"disk": "sda"}, 10.0),
        ("disk_writes_total", {"disk": "sda"}, 20.0),
        ("disk_read_seconds_total", {"disk": "sda"}, 1.5),
        ("disk_write_seconds_total", {"disk": "sda"}, 0.25),
        ("disk_busy_seconds_total", {"disk": "sda"}, 1.75),
    ]


class MacDiskIO(NamedTuple):
    """psutil's record on macOS: no busy_time."""

    read_count: int
    write_count: int
    read_bytes: int
    write_bytes: int
    read_time: int
    write_time: int


def test_disk_io_leaves_out_busy_time_where_the_os_has_none_and_honours_exclude() -> None:
    source = CannedSource(disks={"disk0": MacDiskIO(1, 2, 3, 4, 5, 6), "loop0": MacDiskIO(1, 1, 1, 1, 1, 1)})  # type: ignore[dict-item]
    got = rows(DiskIOCollector(source=source, exclude=None).collect(NOW))
    assert {name for name, _, _ in got} == {
        "disk_read_bytes_total", "disk_written_bytes_total", "disk_reads_total", "disk_writes_total",
        "disk_read_seconds_total", "disk_write_seconds_total",
    }
    assert sorted({labels["disk"] for _, labels, _ in got}) == ["disk0", "loop0"]
    only = rows(DiskIOCollector(source=source, exclude=r"^disk").collect(NOW))
    assert {labels["disk"] for _, labels, _ in only} == {"loop0"}


def test_disk_io_returns_nothing_when_the_os_shows_no_disks() -> None:
    assert DiskIOCollector(source=CannedSource(disks=None)).collect(NOW) == []
    assert DiskIOCollector(source=CannedSource(disks={})).collect(NOW) == []
