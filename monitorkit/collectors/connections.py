"""Socket counts by kind and state, and the listening ports (one costly scan of the socket tables)."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import datetime

from monitorkit.catalog.registry import MetricInfo, register
from monitorkit.collectors.procnet import KIND_TABLES  # the socket kinds each psutil ``kind`` covers
from monitorkit.collectors.records import Connection
from monitorkit.collectors.sources import HostSource, PsutilSource
from monitorkit.errors import ConfigError
from monitorkit.samples import Sample

NET_CONNECTIONS = register(MetricInfo(
    "net_connections", "gauge", "sockets",
    "Sockets by kind (tcp, tcp6, udp, udp6, unix) and state; UDP and Unix sockets have state NONE.",
    ("kind", "state")))
NET_LISTENING_PORTS = register(MetricInfo(
    "net_listening_ports", "gauge", "ports",
    "Distinct (kind, port) pairs listening: TCP in LISTEN, UDP bound with no remote address."))
NET_LISTEN = register(MetricInfo(
    "net_listen", "gauge", "boolean", "1 for each listening port (lowest ports first, at most max_ports).",
    ("kind", "port")))

TCP_STATES = (
    "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
    "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
)
AF_UNIX = getattr(socket, "AF_UNIX", None)  # missing on Windows
PROTOCOLS: dict[int, str] = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}
FAMILIES: dict[int, str] = {socket.AF_INET: "", socket.AF_INET6: "6"}


def socket_kind(conn: Connection) -> str | None:
    """Return psutil's kind name (``tcp``, ``udp6``, ``unix``...) of ``conn``, or None if it is none of them."""
    if AF_UNIX is not None and conn.family == AF_UNIX:
        return "unix"
    proto = PROTOCOLS.get(conn.type)
    family = FAMILIES.get(conn.family)
    if proto is None or family is None:
        return None
    return proto + family


def listening_port(kind: str, conn: Connection) -> int | None:
    """Return the local port ``conn`` listens on, or None if it is not listening."""
    if not conn.laddr or isinstance(conn.laddr, str) or conn.laddr[1] == 0:
        return None
    if kind.startswith("tcp") and conn.status == "LISTEN":
        return int(conn.laddr[1])
    if kind.startswith("udp") and not conn.raddr:
        return int(conn.laddr[1])
    return None


class ConnectionsCollector:
    """Collect socket counts; the kernel walks its whole socket hash to list them (5-10 ms), hence the 30 s default."""

    def __init__(
        self, source: HostSource | None = None, interval: float = 30.0, kind: str = "all", max_ports: int = 200
    ) -> None:
        self.name = "connections"
        self.interval = interval
        self.source: HostSource = source if source is not None else PsutilSource()
        if kind not in KIND_TABLES:
            raise ConfigError(f"connections kind {kind!r} is unknown; use one of {', '.join(KIND_TABLES)}")
        self.kind = kind
        self.max_ports = max_ports
        # Zero-filled so a state that empties reads as 0 instead of a gap in the series.
        self.known_pairs = [
            (k, state) for k in KIND_TABLES[kind] for state in (TCP_STATES if k.startswith("tcp") else ("NONE",))
        ]

    def collect(self, now: datetime) -> list[Sample]:
        """Return the connection samples observed at ``now``."""
        counts: Counter[tuple[str, str]] = Counter({pair: 0 for pair in self.known_pairs})
        listening: set[tuple[int, str]] = set()
        for conn in self.source.net_connections(kind=self.kind):
            kind = socket_kind(conn)
            if kind is None:
                continue
            counts[(kind, conn.status)] += 1
            port = listening_port(kind, conn)
            if port is not None:
                listening.add((port, kind))
        out = [
            Sample(now, NET_CONNECTIONS.name, {"kind": kind, "state": state}, float(n))
            for (kind, state), n in sorted(counts.items())
        ]
        out.append(Sample(now, NET_LISTENING_PORTS.name, {}, float(len(listening))))
        out += [
            Sample(now, NET_LISTEN.name, {"kind": kind, "port": str(port)}, 1.0)
            for port, kind in sorted(listening)[: self.max_ports]
        ]
        return out
