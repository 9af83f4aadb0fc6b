"""node_exporter's series under monitorkit's names: a canned node_exporter 1.5 page scraped twice, value by value."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from interop_helpers import exporter

from monitorkit.catalog import REGISTRY, all_metrics
from monitorkit.dashboard import exposition
from monitorkit.dashboard.records import SeriesInfo
from monitorkit.errors import ConfigError
from monitorkit.interop.node_exporter import MAPPED, NEEDS_FLAG, NOT_MAPPED, NodeTranslator
from monitorkit.interop.scrape import parse_job, resolve_targets
from monitorkit.interop.targets import TargetScraper
from monitorkit.samples import HOST, Sample

PAGE = (Path(__file__).parent / "interop" / "node_exporter.txt").read_text()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def bumped(text: str, changes: dict[str, float]) -> str:
    """Return the page with ``changes`` (series text -> amount) added to those samples' values."""
    def add(match: re.Match[str]) -> str:
        return f"{match.group(1)} {float(match.group(2)) + changes[match.group(1)]!r}"

    pattern = "|".join(re.escape(series) for series in changes)
    return re.sub(rf"^({pattern}) (\S+)$", add, text, flags=re.M)


SECOND = bumped(PAGE, {
    'node_cpu_seconds_total{cpu="0",mode="user"}': 3.0, 'node_cpu_seconds_total{cpu="0",mode="idle"}': 1.0,
    'node_cpu_seconds_total{cpu="1",mode="idle"}': 3.5, 'node_cpu_seconds_total{cpu="1",mode="iowait"}': 0.5,
})


def scrape_twice(**job: object) -> tuple[list[Sample], list[Sample]]:
    pages = iter([PAGE, SECOND])
    with exporter(lambda h: (200, {}, next(pages).encode())) as (address, _):
        (target,) = resolve_targets([parse_job({"job": "node", "targets": [address], **job})])
        scraper = TargetScraper(target)
        try:
            first, second = scraper.scrape(T0), scraper.scrape(T0 + timedelta(seconds=1))
        finally:
            scraper.close()
    assert first.up and second.up
    return first.samples, second.samples


def values(samples: list[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    drop = {"job", "instance"}
    return {tuple(sorted((k, v) for k, v in s.labels.items() if k not in drop)): s.value
            for s in samples if s.name == name}


def test_a_scraped_node_exporter_of_another_host_gets_monitorkits_names_computed_as_psutil_does() -> None:
    first, second = scrape_twice(labels={"host": "db1"})
    assert values(first, "cpu_percent") == {}  # a busy percent needs two scrapes, as psutil's first is 0
    assert values(second, "cpu_percent") == {(): 37.5, (("cpu", "0"),): 75.0, (("cpu", "1"),): 0.0}
    modes = values(second, "cpu_seconds_total")
    assert modes[(("mode", "user"),)] == pytest.approx(169.48 + 3 + 275.07)
    assert modes[(("mode", "guest"),)] == 0.0 and len(modes) == 10  # psutil's 10 Linux modes
    assert values(second, "cpu_count") == {(): 2.0}
    assert values(second, "load1") == {(): 0.37}
    assert values(second, "memory_total_bytes") == {(): 25275990016.0}
    assert values(second, "memory_available_bytes") == {(): 24763899904.0}
    assert values(second, "memory_used_bytes") == {(): 25275990016.0 - 24763899904.0}
    assert values(second, "memory_percent") == {(): 2.0}
    assert values(second, "swap_percent") == {(): 0.0}  # no swap: 0, not a division by zero
    root = (("device", "/dev/vda"), ("fstype", "ext4"), ("mount", "/"))
    assert values(second, "disk_total_bytes") == {root: 270553174016.0}
    assert values(second, "disk_used_bytes") == {root: 270553174016.0 - 244989308928.0}
    assert values(second, "disk_free_bytes") == {root: 83380428800.0}  # avail: what unprivileged users may use
    used = 270553174016.0 - 244989308928.0
    assert values(second, "disk_used_percent") == {root: round(used / (used + 83380428800.0) * 100, 1)}
    assert values(second, "disk_reads_total") == {(("disk", "vda"),): 103919.0}  # zram0 skipped like the collector
    assert values(second, "net_bytes_recv_total")[(("nic", "eth0"),)] == 504074820.0
    assert values(second, "tcp_retransmitted_segments_total") == {(): 44.0}
    assert values(second, "udp_in_datagrams_total") == {(): 447.0}  # Udp, not Udp6, as /proc/net/snmp's Udp line
    # psutil's isup is the IFF_UP flag: loopback is up although its operstate (node_network_up) is "unknown"
    assert values(second, "net_up") == {(("nic", "eth0"),): 1.0, (("nic", "ifb0"),): 0.0, (("nic", "ifb1"),): 0.0,
                                        (("nic", "lo"),): 1.0}
    assert values(second, "net_speed_mbps") == {}  # node_exporter's -125000: speed unknown, absent as in psutil
    translated = [s for s in second if s.name in MAPPED]
    assert translated and all(s.host == "db1" and s.labels["job"] == "node" and "instance" in s.labels
                              for s in translated)
    assert {s.name for s in second if s.name.startswith("node_")}, "node_exporter's own series are kept"


def test_every_mapped_name_is_a_catalogued_metric_of_the_same_labels() -> None:
    catalog = {m.name for m in all_metrics()}
    assert set(MAPPED) <= catalog
    _, second = scrape_twice(labels={"host": "db1"})
    for s in second:
        if s.name in MAPPED:
            assert set(s.labels) - {"job", "instance"} <= set(REGISTRY[s.name].labels), s
    written = {s.name for s in second if s.name in MAPPED}
    # what a default node_exporter does not give: the NEEDS_FLAG ones, and a speed on this virtual NIC
    assert set(MAPPED) - written == set(NEEDS_FLAG) | {"net_speed_mbps"}
    assert not {m for m in NOT_MAPPED if m in written}


def test_the_sources_behind_node_exporter_flags_map_too() -> None:
    extra = ('node_processes_state{state="S"} 82\nnode_processes_state{state="I"} 36\n'
             'node_processes_state{state="R"} 2\nnode_processes_state{state="?"} 1\n'
             'node_netstat_Tcp_EstabResets 633\nnode_netstat_Tcp_AttemptFails 4220\n'
             'node_network_speed_bytes{device="eth1"} 1.25e+08\n')
    page = [Sample(T0, name, {**labels, "job": "node", "instance": "db1:9100"}, value, "db1")
            for name, labels, value in _parsed(PAGE + extra)]
    out = NodeTranslator().translate(page)
    assert values(out, "processes") == {(("status", "idle"),): 36.0, (("status", "running"),): 2.0,
                                        (("status", "sleeping"),): 82.0, (("status", "unknown"),): 1.0}
    assert values(out, "processes_count") == {(): 121.0}
    assert values(out, "tcp_established_resets_total") == {(): 633.0}
    assert values(out, "tcp_attempt_fails_total") == {(): 4220.0}
    assert values(out, "net_speed_mbps") == {(("nic", "eth1"),): 1000.0}  # 125 MB/s is a 1 Gbit/s link


def _parsed(text: str) -> list[tuple[str, dict[str, str], float]]:
    from monitorkit.interop.exposition import parse_rows, split_series

    return [(*split_series(series), value) for series, value, _ in parse_rows(text, openmetrics=False)]


def test_this_machines_own_node_exporter_is_not_translated_unless_asked() -> None:
    _, second = scrape_twice()  # loopback: this machine, whose collectors already write these names
    assert {s.host for s in second} == {HOST} and not [s for s in second if s.name in MAPPED]
    _, forced = scrape_twice(translate="node_exporter")
    assert values(forced, "memory_total_bytes") == {(): 25275990016.0}
    _, off = scrape_twice(labels={"host": "db1"}, translate="none")
    assert not [s for s in off if s.name in MAPPED]


def test_translate_must_be_a_known_mode() -> None:
    with pytest.raises(ConfigError, match="translate must be one of 'auto', 'node_exporter', 'none'"):
        parse_job({"job": "node", "targets": ["db1:9100"], "translate": "yes"})
    with pytest.raises(ValueError, match="translate must be one of"):
        NodeTranslator("always")


def test_cpu_counters_going_back_after_a_reboot_give_no_percent_then_resume() -> None:
    translator = NodeTranslator("node_exporter")

    def scrape(at: int, idle: float, user: float) -> dict[tuple[tuple[str, str], ...], float]:
        t = T0 + timedelta(seconds=at)
        page = [Sample(t, "node_cpu_seconds_total", {"cpu": "0", "mode": "idle", "job": "n"}, idle, "db1"),
                Sample(t, "node_cpu_seconds_total", {"cpu": "0", "mode": "user", "job": "n"}, user, "db1")]
        return values(translator.translate(page), "cpu_percent")

    assert scrape(0, 100.0, 100.0) == {}
    assert scrape(1, 101.0, 101.0) == {(): 50.0, (("cpu", "0"),): 50.0}
    assert scrape(2, 1.0, 0.5) == {}  # rebooted: counters went back
    assert scrape(3, 1.0, 1.5) == {(): 100.0, (("cpu", "0"),): 100.0}
    assert scrape(4, 1.0, 1.5) == {(): 0.0, (("cpu", "0"),): 0.0}  # no time passed: 0 as psutil


def test_translated_and_scraped_series_are_not_re_exposed_on_metrics() -> None:
    series = {
        1: SeriesInfo(1, "db1", "cpu_percent", {"job": "node", "instance": "db1:9100"}),
        2: SeriesInfo(2, "db1", "up", {"job": "node", "instance": "db1:9100"}),
        3: SeriesInfo(3, HOST, "cpu_percent", {}),
    }
    text = exposition.render(series, {sid: (1.7e12, 50.0) for sid in series})
    assert f'cpu_ratio{{host="{HOST}"}} 0.5' in text
    assert "db1" not in text and "\nup" not in text


def test_docs_interop_md_names_every_mapped_and_unmapped_metric() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "interop.md").read_text()
    section = doc.split("### node_exporter on other hosts", 1)[1].split("\n## ", 1)[0]
    kernel = {name for name in MAPPED if name.startswith(("tcp_", "udp_"))}  # listed as tcp_*, udp_*
    for name in [*(set(MAPPED) - kernel), *NOT_MAPPED, *NEEDS_FLAG]:
        assert f"`{name}" in section, name
    assert "`tcp_*`, `udp_*` (the kernel collector's 20)" in section and len(kernel) == 20
