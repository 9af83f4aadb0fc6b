"""Every default collector, on this real machine and on canned sources, emits valid registered samples."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from collector_helpers import NOW

from monitorkit.catalog import REGISTRY
from monitorkit.collectors import (
    CannedProcess,
    CannedSource,
    Collector,
    ConnectionsCollector,
    KernelCollector,
    ProcessesCollector,
    default_collectors,
)
from monitorkit.errors import ConfigError
from monitorkit.samples import HOST, Sample, validate_sample

PROC = Path(__file__).resolve().parent / "proc"
ALL_NAMES = ["cpu", "memory", "disk_usage", "disk_io", "network", "connections", "processes", "kernel"]


def check(samples: list[Sample], now: datetime) -> None:
    """Assert each sample is valid, registered with its labels, and stamped with ``now`` and this host."""
    for s in samples:
        assert validate_sample(s) == s
        info = REGISTRY.get(s.name)
        assert info is not None, f"{s.name} is emitted but not registered"
        assert set(s.labels) <= set(info.labels), f"{s.name} has labels {dict(s.labels)} beyond {info.labels}"
        assert s.time == now and s.host == HOST


@pytest.mark.parametrize("collector", default_collectors(), ids=lambda c: c.name)
def test_each_default_collector_on_this_machine_emits_valid_registered_samples(collector: Collector) -> None:
    assert isinstance(collector, Collector)
    for now in (NOW, NOW + timedelta(seconds=1)):  # twice: the second has CPU baselines
        samples = list(collector.collect(now))
        check(samples, now)
    if collector.name in ("cpu", "memory", "processes"):
        assert samples, f"{collector.name} found nothing on this machine"


def test_default_collectors_on_canned_sources_emit_valid_registered_samples() -> None:
    source = CannedSource(processes=[CannedProcess(1, "init", user_seconds=1.0, rss=1_000)])
    collectors = default_collectors({"kernel": {"proc_root": str(PROC)}}, source=source)
    assert [c.name for c in collectors] == ALL_NAMES
    for c in collectors:
        samples = list(c.collect(NOW))
        assert samples, f"{c.name} emitted nothing"
        check(samples, NOW)
        assert getattr(c, "source", source) is source


def test_default_set_and_intervals() -> None:
    collectors = {c.name: c for c in default_collectors({"kernel": {"proc_root": PROC}}, source=CannedSource())}
    assert {name: c.interval for name, c in collectors.items()} == {
        "cpu": 1.0, "memory": 1.0, "disk_usage": 10.0, "disk_io": 1.0, "network": 1.0,
        "connections": 30.0, "processes": 10.0, "kernel": 5.0,
    }


def test_config_overrides_options_and_disables_collectors() -> None:
    collectors = default_collectors(
        {
            "processes": {"interval": 20, "max_groups": 5},
            "connections": {"enabled": False},
            "disk_usage": {"interval": "1m"},
            "kernel": {"proc_root": str(PROC), "interval": 2.5},
            "memory": {"enabled": True},
        },
        source=CannedSource(),
    )
    by_name = {c.name: c for c in collectors}
    assert "connections" not in by_name
    processes = by_name["processes"]
    assert isinstance(processes, ProcessesCollector)
    assert (processes.interval, processes.max_groups) == (20.0, 5)
    assert by_name["disk_usage"].interval == 60.0
    kernel = by_name["kernel"]
    assert isinstance(kernel, KernelCollector) and kernel.proc_root == PROC and kernel.interval == 2.5
    assert "memory" in by_name


def test_connection_options_reach_the_collector() -> None:
    [conns] = [c for c in default_collectors({"connections": {"kind": "inet", "max_ports": 5}}, source=CannedSource())
               if c.name == "connections"]
    assert isinstance(conns, ConnectionsCollector) and (conns.kind, conns.max_ports) == ("inet", 5)


def test_kernel_collector_is_left_out_where_proc_net_snmp_is_missing(tmp_path: Path) -> None:
    names = [c.name for c in default_collectors({"kernel": {"proc_root": str(tmp_path)}}, source=CannedSource())]
    assert names == ALL_NAMES[:-1]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"gpu": {}}, "unknown collector"),
        ({"cpu": {"top_n": 3}}, "no setting 'top_n'"),
        ({"cpu": 5}, "must be a table"),
        ({"cpu": {"enabled": "no"}}, "enabled must be true or false"),
        ({"cpu": {"interval": 0}}, "interval must be a duration > 0"),
        ({"cpu": {"interval": -1}}, "interval must be"),
        ({"cpu": {"interval": "often"}}, "interval must be"),
        ({"processes": {"max_groups": 0}}, "max_groups must be an integer > 0"),
        ({"processes": {"max_groups": True}}, "max_groups must be"),
        ({"processes": {"top_n": 5}}, "no setting 'top_n'; use one of: enabled, interval, max_groups"),
        ({"network": {"exclude": 3}}, "exclude must be"),
        ({"connections": {"kind": 4}}, "kind must be"),
        ({"connections": {"kind": "sctp"}}, "unknown"),
        ({"kernel": {"proc_root": 1}}, "proc_root must be"),
    ],
)
def test_bad_config_raises_config_error_naming_the_setting(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        default_collectors(config, source=CannedSource())  # type: ignore[arg-type]
