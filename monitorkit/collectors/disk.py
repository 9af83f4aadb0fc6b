"""Filesystem space per mount (slow cadence) and cumulative I/O per disk (fast cadence)."""

from __future__ import annotations

import re
from datetime import datetime

from monitorkit.catalog.registry import MetricInfo, register
from monitorkit.collectors.sources import HostSource, PsutilSource
from monitorkit.samples import Sample

MOUNT_LABELS = ("mount", "device", "fstype")
DISK_TOTAL = register(MetricInfo("disk_total_bytes", "gauge", "bytes", "Size of the filesystem.", MOUNT_LABELS))
DISK_USED = register(MetricInfo("disk_used_bytes", "gauge", "bytes", "Space used on the filesystem.", MOUNT_LABELS))
DISK_FREE = register(MetricInfo(
    "disk_free_bytes", "gauge", "bytes", "Space free for unprivileged users.", MOUNT_LABELS))
DISK_USED_PERCENT = register(MetricInfo(
    "disk_used_percent", "gauge", "percent", "Percent of the space usable by unprivileged users that is used.",
    MOUNT_LABELS))

DISK_READ_BYTES = register(MetricInfo(
    "disk_read_bytes_total", "counter", "bytes", "Bytes read from the disk.", ("disk",)))
DISK_WRITTEN_BYTES = register(MetricInfo(
    "disk_written_bytes_total", "counter", "bytes", "Bytes written to the disk.", ("disk",)))
DISK_READS = register(MetricInfo("disk_reads_total", "counter", "operations", "Reads completed.", ("disk",)))
DISK_WRITES = register(MetricInfo("disk_writes_total", "counter", "operations", "Writes completed.", ("disk",)))
DISK_READ_SECONDS = register(MetricInfo(
    "disk_read_seconds_total", "counter", "seconds", "Time spent on reads (sum over requests).", ("disk",)))
DISK_WRITE_SECONDS = register(MetricInfo(
    "disk_write_seconds_total", "counter", "seconds", "Time spent on writes (sum over requests).", ("disk",)))
DISK_BUSY_SECONDS = register(MetricInfo(
    "disk_busy_seconds_total", "counter", "seconds",
    "Time the disk had I/O in flight (Linux and FreeBSD only); its rate is utilisation.", ("disk",)))

# Virtual and always-full filesystems; their figures say nothing about the machine's disks.
PSEUDO_FSTYPES = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devfs", "devpts",
    "devtmpfs", "efivarfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay", "proc", "pstore",
    "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs",
})
# node_exporter's default: RAM disks, loop devices, floppies and partitions of whole disks.
DEFAULT_DISK_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"


class DiskUsageCollector:
    """Collect space per mounted filesystem, skipping pseudo filesystems and repeated devices."""

    def __init__(self, source: HostSource | None = None, interval: float = 10.0) -> None:
        self.name = "disk_usage"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()

    def collect(self, now: datetime) -> list[Sample]:
        """Return the space samples observed at ``now``."""
        seen_devices: set[str] = set()
        out: list[Sample] = []
        # Shortest mount first, so a device bind-mounted elsewhere is reported at its main mount.
        for part in sorted(self.source.disk_partitions(), key=lambda p: (len(p.mountpoint), p.mountpoint)):
            if part.fstype in PSEUDO_FSTYPES or part.device in seen_devices:
                continue
            try:
                usage = self.source.disk_usage(part.mountpoint)
            except OSError:
                # Unmounted since listed, stale network mount or not ours to stat: skip this mount only.
                continue
            seen_devices.add(part.device)
            labels = {"mount": part.mountpoint, "device": part.device, "fstype": part.fstype}
            out += [
                Sample(now, DISK_TOTAL.name, dict(labels), float(usage.total)),
                Sample(now, DISK_USED.name, dict(labels), float(usage.used)),
                Sample(now, DISK_FREE.name, dict(labels), float(usage.free)),
                Sample(now, DISK_USED_PERCENT.name, dict(labels), float(usage.percent)),
            ]
        return out


class DiskIOCollector:
    """Collect cumulative I/O counters per whole disk; ``exclude`` is a regex of disk names to skip."""

    def __init__(
        self, source: HostSource | None = None, interval: float = 1.0, exclude: str | None = DEFAULT_DISK_EXCLUDE
    ) -> None:
        self.name = "disk_io"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()
        self.exclude = re.compile(exclude) if exclude else None

    def collect(self, now: datetime) -> list[Sample]:
        """Return the disk I/O samples observed at ``now``."""
        out: list[Sample] = []
        # psutil returns None (or {}) when the OS shows no disks, as in some containers.
        disks = self.source.disk_io_counters(perdisk=True) or {}
        for disk, io in sorted(disks.items()):
            if self.exclude is not None and self.exclude.match(disk):
                continue
            labels = {"disk": disk}
            out += [
                Sample(now, DISK_READ_BYTES.name, dict(labels), float(io.read_bytes)),
                Sample(now, DISK_WRITTEN_BYTES.name, dict(labels), float(io.write_bytes)),
                Sample(now, DISK_READS.name, dict(labels), float(io.read_count)),
                Sample(now, DISK_WRITES.name, dict(labels), float(io.write_count)),
                Sample(now, DISK_READ_SECONDS.name, dict(labels), io.read_time / 1000),
                Sample(now, DISK_WRITE_SECONDS.name, dict(labels), io.write_time / 1000),
            ]
            busy_ms = getattr(io, "busy_time", None)  # absent on macOS, Windows and others
            if busy_ms is not None:
                out.append(Sample(now, DISK_BUSY_SECONDS.name, dict(labels), busy_ms / 1000))
        return out
