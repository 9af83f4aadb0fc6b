"""Network interface and socket collectors against canned sources."""

from __future__ import annotations

import socket

import pytest
from collector_helpers import NOW, rows

from monitorkit.collectors import CannedSource, ConnectionsCollector, NetworkCollector
from monitorkit.collectors.connections import TCP_STATES
from monitorkit.collectors.records import Address, Connection, NetIO, NicStats
from monitorkit.errors import ConfigError

TCP, UDP = socket.SOCK_STREAM, socket.SOCK_DGRAM
V4, V6, UNIX = socket.AF_INET, socket.AF_INET6, socket.AF_UNIX


def test_network_collector_reports_raw_counters_link_state_and_known_speed() -> None:
    source = CannedSource(
        nics={
            "eth0": NetIO(bytes_sent=1_000, bytes_recv=2_000, packets_sent=3, packets_recv=4,
                          errin=5, errout=6, dropin=7, dropout=8),
            "lo": NetIO(10, 10, 1, 1, 0, 0, 0, 0),
        },
        nic_stats={
            "eth0": NicStats(isup=True, duplex=2, speed=1_000, mtu=1_500),
            "lo": NicStats(isup=True, duplex=0, speed=0, mtu=65_536),
            "docker0": NicStats(isup=False, duplex=0, speed=0, mtu=1_500),
        },
    )
    collector = NetworkCollector(source=source)
    assert (collector.name, collector.interval) == ("network", 1.0)
    got = rows(collector.collect(NOW))
    eth0 = {"nic": "eth0"}
    assert [row for row in got if row[1] == eth0] == [
        ("net_bytes_recv_total", eth0, 2_000.0),
        ("net_bytes_sent_total", eth0, 1_000.0),
        ("net_packets_recv_total", eth0, 4.0),
        ("net_packets_sent_total", eth0, 3.0),
        ("net_errors_in_total", eth0, 5.0),
        ("net_errors_out_total", eth0, 6.0),
        ("net_drops_in_total", eth0, 7.0),
        ("net_drops_out_total", eth0, 8.0),
        ("net_up", eth0, 1.0),
        ("net_speed_mbps", eth0, 1_000.0),
    ]
    assert [row for row in got if row[0] in ("net_up", "net_speed_mbps") and row[1] != eth0] == [
        ("net_up", {"nic": "docker0"}, 0.0),
        ("net_up", {"nic": "lo"}, 1.0),
    ]
    assert len([row for row in got if row[1] == {"nic": "lo"}]) == 9  # 8 counters + net_up, no speed


def test_network_collector_exclude_drops_matching_nics_everywhere() -> None:
    source = CannedSource(
        nics={"eth0": NetIO(1, 1, 1, 1, 0, 0, 0, 0), "veth12": NetIO(1, 1, 1, 1, 0, 0, 0, 0)},
        nic_stats={"eth0": NicStats(True, 2, 100, 1_500), "veth12": NicStats(True, 2, 10_000, 1_500)},
    )
    got = rows(NetworkCollector(source=source, exclude=r"^veth").collect(NOW))
    assert {labels["nic"] for _, labels, _ in got} == {"eth0"}


def conn(family: int, kind: int, laddr: object, raddr: object, status: str) -> Connection:
    return Connection(fd=-1, family=family, type=kind, laddr=laddr, raddr=raddr, status=status)  # type: ignore[arg-type]


CONNECTIONS = [
    conn(V4, TCP, Address("0.0.0.0", 22), (), "LISTEN"),
    conn(V6, TCP, Address("::", 22), (), "LISTEN"),
    conn(V4, TCP, Address("127.0.0.1", 8080), (), "LISTEN"),
    conn(V4, TCP, Address("10.0.0.1", 22), Address("10.0.0.2", 50_000), "ESTABLISHED"),
    conn(V4, TCP, Address("10.0.0.1", 22), Address("10.0.0.3", 50_001), "ESTABLISHED"),
    conn(V6, TCP, Address("::1", 40_000), Address("::1", 8080), "TIME_WAIT"),
    conn(V4, UDP, Address("0.0.0.0", 53), (), "NONE"),  # a UDP server
    conn(V4, UDP, Address("10.0.0.1", 40_001), Address("8.8.8.8", 53), "NONE"),  # a connected UDP client
    conn(V6, UDP, Address("::", 0), (), "NONE"),  # bound to no port
    conn(UNIX, TCP, "/run/dbus/system_bus_socket", "", "NONE"),
    conn(UNIX, UDP, "", "", "NONE"),
    conn(getattr(socket, "AF_PACKET", 17), socket.SOCK_RAW, (), (), "NONE"),  # neither tcp, udp nor unix
]


def test_connections_counts_by_kind_and_state_with_zero_filled_states() -> None:
    source = CannedSource(connections=CONNECTIONS)
    collector = ConnectionsCollector(source=source)
    assert (collector.name, collector.interval) == ("connections", 30.0)
    got = rows(collector.collect(NOW))
    counts = {(labels["kind"], labels["state"]): value for name, labels, value in got if name == "net_connections"}
    expected = {(kind, state): 0.0 for kind in ("tcp", "tcp6") for state in TCP_STATES}
    expected |= {("udp", "NONE"): 2.0, ("udp6", "NONE"): 1.0, ("unix", "NONE"): 2.0}
    expected |= {("tcp", "LISTEN"): 2.0, ("tcp6", "LISTEN"): 1.0, ("tcp", "ESTABLISHED"): 2.0,
                 ("tcp6", "TIME_WAIT"): 1.0}
    assert counts == expected
    assert source.connection_kinds == ["all"]
    assert [row for row in got if row[0] != "net_connections"] == [
        ("net_listening_ports", {}, 4.0),
        ("net_listen", {"kind": "tcp", "port": "22"}, 1.0),
        ("net_listen", {"kind": "tcp6", "port": "22"}, 1.0),
        ("net_listen", {"kind": "udp", "port": "53"}, 1.0),
        ("net_listen", {"kind": "tcp", "port": "8080"}, 1.0),
    ]


def test_connections_keeps_the_lowest_max_ports_but_counts_them_all() -> None:
    listening = [conn(V4, TCP, Address("0.0.0.0", port), (), "LISTEN") for port in range(1_000, 1_250)]
    got = rows(ConnectionsCollector(source=CannedSource(connections=listening)).collect(NOW))
    ports = [int(labels["port"]) for name, labels, _ in got if name == "net_listen"]
    assert ports == list(range(1_000, 1_200))
    assert ("net_listening_ports", {}, 250.0) in got
    small = rows(ConnectionsCollector(source=CannedSource(connections=listening), max_ports=3).collect(NOW))
    assert [labels["port"] for name, labels, _ in small if name == "net_listen"] == ["1000", "1001", "1002"]


def test_connections_zero_fills_only_the_kinds_asked_for() -> None:
    source = CannedSource(connections=[c for c in CONNECTIONS if c.family != UNIX and c.type == TCP])
    got = rows(ConnectionsCollector(source=source, kind="tcp").collect(NOW))
    assert source.connection_kinds == ["tcp"]
    assert {labels["kind"] for name, labels, _ in got if name == "net_connections"} == {"tcp", "tcp6"}


def test_connections_refuses_an_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="'sctp' is unknown"):
        ConnectionsCollector(source=CannedSource(), kind="sctp")
