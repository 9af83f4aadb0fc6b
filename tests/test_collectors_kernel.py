"""Kernel protocol counters parsed from canned /proc/net/snmp and /proc/net/netstat files."""

from __future__ import annotations

from pathlib import Path

import pytest
from collector_helpers import NOW
from hypothesis import given, settings
from hypothesis import strategies as st

from monitorkit.collectors.kernel import KernelCollector, ProcNetFormatError, parse_proc_net
from monitorkit.samples import HOST

PROC = Path(__file__).resolve().parent / "proc"


def collect(root: Path) -> dict[str, float]:
    collector = KernelCollector(proc_root=root)
    samples = collector.collect(NOW)
    assert all(s.time == NOW and s.host == HOST and s.labels == {} for s in samples)
    return {s.name: s.value for s in samples}


def test_reads_the_canned_files_copied_from_a_real_machine() -> None:
    collector = KernelCollector(proc_root=PROC)
    assert (collector.name, collector.interval, collector.available, collector.note) == ("kernel", 5.0, True, "")
    assert collect(PROC) == {
        "tcp_active_opens_total": 177.0,
        "tcp_passive_opens_total": 143.0,
        "tcp_attempt_fails_total": 12.0,
        "tcp_established_resets_total": 0.0,
        "tcp_current_established": 0.0,
        "tcp_in_segments_total": 10_865.0,
        "tcp_out_segments_total": 7_746.0,
        "tcp_retransmitted_segments_total": 0.0,
        "tcp_in_errors_total": 0.0,
        "tcp_resets_sent_total": 42.0,
        "udp_in_datagrams_total": 61.0,
        "udp_out_datagrams_total": 62.0,
        "udp_no_ports_total": 0.0,
        "udp_in_errors_total": 0.0,
        "udp_receive_buffer_errors_total": 0.0,
        "udp_send_buffer_errors_total": 0.0,
        "tcp_listen_overflows_total": 0.0,
        "tcp_listen_drops_total": 0.0,
        "tcp_timeouts_total": 2.0,
        "tcp_syncookies_sent_total": 0.0,
    }


def write_proc(root: Path, snmp: str, netstat: str | None) -> Path:
    (root / "net").mkdir(parents=True)
    (root / "net" / "snmp").write_text(snmp)
    if netstat is not None:
        (root / "net" / "netstat").write_text(netstat)
    return root


# Every field has its own value and sits at another position than in the real files, so a swapped field shows.
SYNTHETIC_SNMP = """\
Tcp: RtoAlgorithm ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts
Tcp: 1 1000 1001 1002 1003 1004 1005 1006 1007 1008 1009
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors
Udp: 1010 1012 1013 1011 1014 1015
"""
SYNTHETIC_NETSTAT = """\
TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPTimeouts
TcpExt: 1019 1016 1017 1018
"""


def test_every_metric_comes_from_its_own_field(tmp_path: Path) -> None:
    assert collect(write_proc(tmp_path, SYNTHETIC_SNMP, SYNTHETIC_NETSTAT)) == {
        "tcp_active_opens_total": 1_000.0,
        "tcp_passive_opens_total": 1_001.0,
        "tcp_attempt_fails_total": 1_002.0,
        "tcp_established_resets_total": 1_003.0,
        "tcp_current_established": 1_004.0,
        "tcp_in_segments_total": 1_005.0,
        "tcp_out_segments_total": 1_006.0,
        "tcp_retransmitted_segments_total": 1_007.0,
        "tcp_in_errors_total": 1_008.0,
        "tcp_resets_sent_total": 1_009.0,
        "udp_in_datagrams_total": 1_010.0,
        "udp_out_datagrams_total": 1_011.0,
        "udp_no_ports_total": 1_012.0,
        "udp_in_errors_total": 1_013.0,
        "udp_receive_buffer_errors_total": 1_014.0,
        "udp_send_buffer_errors_total": 1_015.0,
        "tcp_listen_overflows_total": 1_016.0,
        "tcp_listen_drops_total": 1_017.0,
        "tcp_timeouts_total": 1_018.0,
        "tcp_syncookies_sent_total": 1_019.0,
    }


def test_missing_netstat_file_and_missing_fields_are_skipped(tmp_path: Path) -> None:
    snmp = "Tcp: ActiveOpens RetransSegs\nTcp: 5 7\nUdp: NoPorts\nUdp: 3\n"
    assert collect(write_proc(tmp_path, snmp, None)) == {
        "tcp_active_opens_total": 5.0,
        "tcp_retransmitted_segments_total": 7.0,
        "udp_no_ports_total": 3.0,
    }


def test_without_proc_net_snmp_the_collector_is_unavailable_and_silent(tmp_path: Path) -> None:
    collector = KernelCollector(proc_root=tmp_path)
    assert collector.available is False
    assert str(tmp_path / "net" / "snmp") in collector.note and "Linux only" in collector.note
    assert collector.collect(NOW) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Tcp: A B\n", "odd number of lines"),
        ("Tcp: A B\nUdp: 1 2\n", "followed by values of 'Udp'"),
        ("Tcp: A B\nTcp: 1\n", "2 names but 1 values"),
        ("Tcp: A B\nTcp: 1 x\n", "not an integer"),
    ],
)
def test_malformed_files_raise_a_typed_error(text: str, message: str) -> None:
    with pytest.raises(ProcNetFormatError, match=message):
        parse_proc_net(text)


def test_parses_negative_values_and_blank_lines() -> None:
    assert parse_proc_net("Tcp: MaxConn RtoMin\n\nTcp: -1 200\n") == {"Tcp": {"MaxConn": -1, "RtoMin": 200}}


names = st.from_regex(r"[A-Z][A-Za-z0-9]{0,15}", fullmatch=True)


@settings(max_examples=50)
@given(st.dictionaries(names, st.dictionaries(names, st.integers(-(2**63), 2**64), min_size=1), max_size=5))
def test_parse_reads_back_what_the_kernel_layout_writes(data: dict[str, dict[str, int]]) -> None:
    text = "".join(
        f"{section}: {' '.join(fields)}\n{section}: {' '.join(map(str, fields.values()))}\n"
        for section, fields in data.items()
    )
    assert parse_proc_net(text) == data
