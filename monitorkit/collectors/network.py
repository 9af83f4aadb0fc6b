"""Cumulative traffic, errors and drops per network interface, plus its link state and speed."""

from __future__ import annotations

import re
from datetime import datetime

from monitorkit.catalog.registry import MetricInfo, register
from monitorkit.collectors.sources import HostSource, PsutilSource
from monitorkit.samples import Sample

NIC = ("nic",)
NET_BYTES_RECV = register(MetricInfo("net_bytes_recv_total", "counter", "bytes", "Bytes received.", NIC))
NET_BYTES_SENT = register(MetricInfo("net_bytes_sent_total", "counter", "bytes", "Bytes sent.", NIC))
NET_PACKETS_RECV = register(MetricInfo("net_packets_recv_total", "counter", "packets", "Packets received.", NIC))
NET_PACKETS_SENT = register(MetricInfo("net_packets_sent_total", "counter", "packets", "Packets sent.", NIC))
NET_ERRORS_IN = register(MetricInfo("net_errors_in_total", "counter", "packets", "Receive errors.", NIC))
NET_ERRORS_OUT = register(MetricInfo("net_errors_out_total", "counter", "packets", "Transmit errors.", NIC))
NET_DROPS_IN = register(MetricInfo("net_drops_in_total", "counter", "packets", "Incoming packets dropped.", NIC))
NET_DROPS_OUT = register(MetricInfo(
    "net_drops_out_total", "counter", "packets", "Outgoing packets dropped (always 0 on macOS).", NIC))
NET_UP = register(MetricInfo("net_up", "gauge", "boolean", "1 if the interface is up, else 0.", NIC))
NET_SPEED = register(MetricInfo(
    "net_speed_mbps", "gauge", "megabits per second",
    "Link speed; absent when the OS does not know it (virtual NICs, loopback).", NIC))

COUNTERS = (
    (NET_BYTES_RECV, "bytes_recv"),
    (NET_BYTES_SENT, "bytes_sent"),
    (NET_PACKETS_RECV, "packets_recv"),
    (NET_PACKETS_SENT, "packets_sent"),
    (NET_ERRORS_IN, "errin"),
    (NET_ERRORS_OUT, "errout"),
    (NET_DROPS_IN, "dropin"),
    (NET_DROPS_OUT, "dropout"),
)


class NetworkCollector:
    """Collect per-NIC counters and link state; ``exclude`` is a regex of NIC names to skip."""

    def __init__(self, source: HostSource | None = None, interval: float = 1.0, exclude: str | None = None) -> None:
        self.name = "network"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()
        self.exclude = re.compile(exclude) if exclude else None

    def _wanted(self, nic: str) -> bool:
        return self.exclude is None or not self.exclude.match(nic)

    def collect(self, now: datetime) -> list[Sample]:
        """Return the network samples observed at ``now``."""
        out: list[Sample] = []
        for nic, io in sorted(self.source.net_io_counters(pernic=True).items()):
            if self._wanted(nic):
                out += [Sample(now, info.name, {"nic": nic}, float(getattr(io, field))) for info, field in COUNTERS]
        for nic, stats in sorted(self.source.net_if_stats().items()):
            if not self._wanted(nic):
                continue
            out.append(Sample(now, NET_UP.name, {"nic": nic}, 1.0 if stats.isup else 0.0))
            if stats.speed > 0:  # psutil reports 0 when the speed is unknown
                out.append(Sample(now, NET_SPEED.name, {"nic": nic}, float(stats.speed)))
        return out
