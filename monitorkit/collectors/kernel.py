"""Linux TCP and UDP protocol counters from ``/proc/net/snmp`` and ``/proc/net/netstat``.

The ``/proc`` root is injectable so tests read canned files: ``KernelCollector(proc_root="tests/proc")``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from monitorkit.catalog.registry import MetricInfo, MetricKind, register
from monitorkit.errors import MonitorkitError
from monitorkit.samples import Sample


class ProcNetFormatError(MonitorkitError, ValueError):
    """A /proc/net statistics file is not in the kernel's 'Prefix: names' / 'Prefix: values' layout."""


class KernelStat(NamedTuple):
    """Where one metric is read: ``KernelStat("snmp", "Tcp", "RetransSegs", info)``."""

    file: str
    section: str
    field: str
    info: MetricInfo


SECTION_UNITS = {"Tcp": "segments", "Udp": "datagrams", "TcpExt": "connections"}


def _stat(
    file: str, section: str, field: str, name: str, help: str, kind: MetricKind = "counter", unit: str = ""
) -> KernelStat:
    """Register the metric read from ``section`` ``field`` of /proc/net/``file``."""
    info = MetricInfo(name, kind, unit or SECTION_UNITS[section], f"{help} ({section} {field}).")
    return KernelStat(file, section, field, register(info))


STATS = (
    _stat("snmp", "Tcp", "ActiveOpens", "tcp_active_opens_total", "TCP connections opened by this host",
          unit="connections"),
    _stat("snmp", "Tcp", "PassiveOpens", "tcp_passive_opens_total", "TCP connections accepted", unit="connections"),
    _stat("snmp", "Tcp", "AttemptFails", "tcp_attempt_fails_total", "TCP connection attempts that failed",
          unit="connections"),
    _stat("snmp", "Tcp", "EstabResets", "tcp_established_resets_total",
          "TCP connections reset from ESTABLISHED or CLOSE_WAIT", unit="connections"),
    _stat("snmp", "Tcp", "CurrEstab", "tcp_current_established", "TCP connections now ESTABLISHED or CLOSE_WAIT",
          kind="gauge", unit="connections"),
    _stat("snmp", "Tcp", "InSegs", "tcp_in_segments_total", "TCP segments received"),
    _stat("snmp", "Tcp", "OutSegs", "tcp_out_segments_total", "TCP segments sent, retransmissions excluded"),
    _stat("snmp", "Tcp", "RetransSegs", "tcp_retransmitted_segments_total", "TCP segments retransmitted"),
    _stat("snmp", "Tcp", "InErrs", "tcp_in_errors_total", "TCP segments received in error"),
    _stat("snmp", "Tcp", "OutRsts", "tcp_resets_sent_total", "TCP segments sent with RST"),
    _stat("snmp", "Udp", "InDatagrams", "udp_in_datagrams_total", "UDP datagrams delivered"),
    _stat("snmp", "Udp", "OutDatagrams", "udp_out_datagrams_total", "UDP datagrams sent"),
    _stat("snmp", "Udp", "NoPorts", "udp_no_ports_total", "UDP datagrams to a port nobody listens on"),
    _stat("snmp", "Udp", "InErrors", "udp_in_errors_total", "UDP datagrams that could not be delivered"),
    _stat("snmp", "Udp", "RcvbufErrors", "udp_receive_buffer_errors_total",
          "UDP datagrams dropped: receive buffer full"),
    _stat("snmp", "Udp", "SndbufErrors", "udp_send_buffer_errors_total", "UDP datagrams dropped: send buffer full"),
    _stat("netstat", "TcpExt", "ListenOverflows", "tcp_listen_overflows_total",
          "Connections dropped because a listen queue was full"),
    _stat("netstat", "TcpExt", "ListenDrops", "tcp_listen_drops_total",
          "Connections dropped at listen, overflows included"),
    _stat("netstat", "TcpExt", "TCPTimeouts", "tcp_timeouts_total", "TCP retransmission timeouts", unit="timeouts"),
    _stat("netstat", "TcpExt", "SyncookiesSent", "tcp_syncookies_sent_total",
          "SYN cookies sent because a SYN queue was full (load or SYN flood)", unit="cookies"),
)


def parse_proc_net(text: str, *, source: str = "/proc/net/snmp") -> dict[str, dict[str, int]]:
    """Parse 'Tcp: A B' / 'Tcp: 1 2' line pairs into ``{"Tcp": {"A": 1, "B": 2}}``."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) % 2:
        raise ProcNetFormatError(f"{source} has an odd number of lines; expected header/value pairs")
    out: dict[str, dict[str, int]] = {}
    for header, values in zip(lines[::2], lines[1::2], strict=True):
        section, _, names = header.partition(":")
        vsection, _, numbers = values.partition(":")
        if section != vsection or not section:
            raise ProcNetFormatError(f"{source}: header {section!r} is followed by values of {vsection!r}")
        keys, nums = names.split(), numbers.split()
        if len(keys) != len(nums):
            raise ProcNetFormatError(f"{source}: {section} has {len(keys)} names but {len(nums)} values")
        try:
            out[section] = {key: int(num) for key, num in zip(keys, nums, strict=True)}
        except ValueError as exc:
            raise ProcNetFormatError(f"{source}: {section} has a value that is not an integer ({exc})") from None
    return out


class KernelCollector:
    """Collect TCP/UDP counters on Linux; elsewhere ``available`` is False and ``collect`` returns nothing."""

    def __init__(self, proc_root: str | Path = "/proc", interval: float = 5.0) -> None:
        self.name = "kernel"
        self.interval = interval
        self.proc_root = Path(proc_root)
        snmp = self.proc_root / "net" / "snmp"
        self.available = snmp.is_file()
        self.note = "" if self.available else f"{snmp} not found: TCP/UDP protocol counters are read on Linux only"

    def collect(self, now: datetime) -> list[Sample]:
        """Return the protocol counter samples observed at ``now``."""
        if not self.available:
            return []
        parsed: dict[str, dict[str, dict[str, int]]] = {}
        for file in ("snmp", "netstat"):
            path = self.proc_root / "net" / file
            # netstat is missing on some old kernels and sandboxes; snmp was checked at start.
            if file == "snmp" or path.is_file():
                parsed[file] = parse_proc_net(path.read_text(), source=str(path))
        out: list[Sample] = []
        for stat in STATS:
            value = parsed.get(stat.file, {}).get(stat.section, {}).get(stat.field)
            if value is not None:  # older kernels lack some fields
                out.append(Sample(now, stat.info.name, {}, float(value)))
        return out
