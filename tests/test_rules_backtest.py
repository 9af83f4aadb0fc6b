"""Backtests over generated history with known incidents, and promtool-style unit tests of the shipped rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rules_helpers import T0, engine_for, rule_settings, series, write_rule

from monitorkit.owner.connect import connect
from monitorkit.rules.backtest import backtest
from monitorkit.rules.errors import RuleTestError
from monitorkit.rules.loader import default_rules_dir, load_file
from monitorkit.rules.ruletests import expand_values, run_rule_tests
from monitorkit.store import Store

LAST_SQL = """SELECT host, last AS value
FROM gauge_window('cpu_percent', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE labels['cpu'] IS NULL AND last > 90"""


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def incident_history() -> list:
    """An hour of cpu_percent every 10 s on three hosts: a 20-minute, a 5-minute and a 1-minute incident."""
    out = []
    incidents = {"a": (10, 30), "b": (40, 45), "c": (50, 51)}
    for host, (start, end) in incidents.items():
        values = [95.0 if start * 60 <= i * 10 < end * 60 else 20.0 for i in range(361)]
        out.extend(series("cpu_percent", T0, values, step=10, host=host))
    return out


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("backtest")
    write_rule(base / "rules", "last_high", LAST_SQL, for_="2m")
    settings = rule_settings(base / "rules", defaults=True)
    with Store(base / "m.duckdb", settings=settings) as store:
        store.write(incident_history())
        store.flush()
        with engine_for(store):
            pass  # installs the rules, so they are found by name in the `rules` table
    return base / "m.duckdb"


def test_backtest_returns_exactly_the_known_firing_windows(history_db: Path) -> None:
    rule = load_file(history_db.parent / "rules" / "last_high.sql")
    with connect(history_db) as con:
        result = backtest(con, rule, m(0), m(60), "1m")
    assert result.evaluations == 61 and result.errors == []
    got = [(w.labels["host"], w.start, w.end, w.duration, w.max_value) for w in result.windows]
    assert got == [
        ("a", m(12), m(30), timedelta(minutes=18), 95.0),
        ("b", m(42), m(45), timedelta(minutes=3), 95.0),
    ]  # host c's one-minute blip went pending and back, never firing


def test_backtest_of_a_shipped_rule_by_name_with_keep_firing_for(history_db: Path) -> None:
    with connect(history_db) as con:
        result = backtest(con, "cpu_saturation", m(0), m(60), timedelta(minutes=1))
        assert con.execute("SELECT count(*) FROM alerts").fetchall() == [(0,)]  # live state untouched
    # 1-minute averages: active 10:11-10:29 and 10:41-10:44; for 2m, keep_firing_for 1m counted from the
    # first quiet evaluation (10:30, 10:45) as Prometheus does: resolved one evaluation later
    assert [(w.labels["host"], w.start, w.end) for w in result.windows] == [("a", m(13), m(31)), ("b", m(43), m(46))]


def test_backtest_reports_a_window_still_open_at_the_end(history_db: Path) -> None:
    rule = load_file(history_db.parent / "rules" / "last_high.sql")
    with connect(history_db) as con:
        result = backtest(con, rule, m(0), m(20), 60)
    [window] = result.windows
    assert (window.start, window.end, window.duration) == (m(12), None, timedelta(minutes=8))


def test_backtest_refuses_naive_times_and_unknown_rules(history_db: Path) -> None:
    from monitorkit.errors import ConfigError
    from monitorkit.rules.errors import UnknownRuleError

    with connect(history_db) as con:
        with pytest.raises(ConfigError):
            backtest(con, "cpu_saturation", m(0).replace(tzinfo=None), m(1))
        with pytest.raises(UnknownRuleError):
            backtest(con, "no_such_rule", m(0), m(1))


def test_expand_values() -> None:
    assert expand_values("1 2 _ 5+5x2 7x1 10-2x2") == [1, 2, None, 5, 10, 15, 7, 7, 10, 8, 6]
    assert expand_values([1, None, 3]) == [1.0, None, 3.0]
    with pytest.raises(RuleTestError):
        expand_values("1 two")


SHIPPED_TESTS = """
evaluation_interval = "1m"

[[tests]]
name = "cpu saturation: 1-minute average above 90 for 2 minutes"
interval = "10s"
series = [{ metric = "cpu_percent", host = "web1", values = "20x5 95x30 20x10" },
          { metric = "cpu_percent", host = "web1", labels = { cpu = "0" }, values = "99x45" }]
[[tests.alerts]]
at = "3m"
rule = "cpu_saturation"
expected = [{ labels = { host = "web1" }, state = "pending" }]
[[tests.alerts]]
at = "4m"
rule = "cpu_saturation"
expected = [{ labels = { host = "web1" }, value = 95 }]
[[tests.alerts]]
at = "8m"
rule = "cpu_saturation"
expected = []

[[tests]]
name = "memory pressure and a fresh writer"
interval = "10s"
series = [{ metric = "memory_percent", values = "95x40" }]
alerts = [{ at = "4m", rule = "memory_pressure", expected = [{ labels = { host = "test" }, state = "pending" }] },
          { at = "5m", rule = "memory_pressure", expected = [{ labels = { host = "test" }, value = 95 }] }]
health = [{ at = "5m", expected = [{ component = "writer", status = "ok" }] }]

[[tests]]
name = "disk filling and disk full predicted from the last hour's trend"
interval = "10s"
[[tests.series]]
metric = "disk_used_percent"
labels = { mount = "/", device = "sda1", fstype = "ext4" }
values = "95x200"
[[tests.series]]
metric = "disk_used_bytes"
labels = { mount = "/", device = "sda1", fstype = "ext4" }
values = "0+10000000x200"
[[tests.series]]
metric = "disk_free_bytes"
labels = { mount = "/", device = "sda1", fstype = "ext4" }
values = "36000000000x200"
[[tests.alerts]]
at = "5m"
rule = "disk_filling"
expected = [{ labels = { host = "test", mount = "/", device = "sda1" }, value = 95 }]
[[tests.alerts]]
at = "24m"
rule = "disk_full_predicted"
expected = [{ labels = { host = "test", mount = "/", device = "sda1" }, state = "pending" }]
[[tests.alerts]]
at = "25m"
rule = "disk_full_predicted"
expected = [{ labels = { host = "test", mount = "/", device = "sda1" }, value = 10 }]

[[tests]]
name = "swap activity and NIC errors"
interval = "10s"
series = [{ metric = "swap_in_bytes_total", values = "0+20971520x60" },
          { metric = "swap_out_bytes_total", values = "0x60" },
          { metric = "net_errors_in_total", labels = { nic = "eth0" }, values = "0+5x20" },
          { metric = "net_errors_out_total", labels = { nic = "eth0" }, values = "0x20" }]
[[tests.alerts]]
at = "6m"
rule = "swap_activity"
expected = [{ labels = { host = "test" }, value = 2 }]
[[tests.alerts]]
at = "4m"
rule = "nic_errors"
expected = [{ labels = { host = "test", nic = "eth0", direction = "in" }, value = 0.5 }]

[[tests]]
name = "connection surge against the hourly baseline"
interval = "1m"
series = [{ metric = "net_connections", labels = { kind = "tcp", state = "ESTABLISHED" }, values = "50x59 400x3" },
          { metric = "net_connections", labels = { kind = "tcp", state = "LISTEN" }, values = "900x62" }]
[[tests.alerts]]
at = "61m"
rule = "connection_surge"
expected = [{ labels = { host = "test" }, state = "pending" }]
[[tests.alerts]]
at = "62m"
rule = "connection_surge"
expected = [{ labels = { host = "test" }, value = 400 }]

[[tests]]
name = "collectors: one stops reporting, one fails"
interval = "10s"
series = [{ metric = "monitorkit_collector_up", labels = { collector = "cpu" }, values = "1x60" },
          { metric = "monitorkit_collector_up", labels = { collector = "disk" }, values = "1x5 0x54" }]
[[tests.alerts]]
at = "12m"
rule = "collector_down"
expected = [{ labels = { host = "test", collector = "cpu" }, value = 120 },
            { labels = { host = "test", collector = "disk" }, value = 120 }]
[[tests.health]]
at = "12m"
expected = [{ component = "collector:cpu", status = "failing" },
            { component = "collector:disk", status = "failing", reason = "its last run raised an error" }]

[[tests]]
name = "tool error rate and protocol latency from application metrics"
interval = "1m"
series = [
  { metric = "tool_runs_total", labels = { tool = "build", outcome = "ok" }, values = "0+10x30" },
  { metric = "tool_runs_total", labels = { tool = "build", outcome = "error" }, values = "0+5x30" },
  { metric = "tool_runs_total", labels = { tool = "lint", outcome = "ok" }, values = "0+10x30" },
  { metric = "protocol_request_duration_seconds_bucket", labels = { protocol = "http", le = "0.5" }, values = "0x10" },
  { metric = "protocol_request_duration_seconds_bucket", labels = { protocol = "http", le = "1.0" }, values = "0x10" },
  { metric = "protocol_request_duration_seconds_bucket", labels = {protocol = "http", le = "2.5"}, values = "0+20x9" },
  { metric = "protocol_request_duration_seconds_bucket", labels = {protocol = "http", le = "+Inf"}, values = "0+20x9"},
]
[[tests.alerts]]
at = "5m"
rule = "tool_error_rate"
expected = [{ labels = { host = "test", tool = "build" }, state = "pending" }]
[[tests.alerts]]
at = "10m"
rule = "tool_error_rate"
expected = [{ labels = { host = "test", tool = "build" }, value = 33.3 }]
[[tests.alerts]]
at = "7m"
rule = "protocol_latency"
expected = [{ labels = { host = "test", protocol = "http" }, value = 2.425 }]

[[tests]]
name = "a few failures of a rarely run tool are no trend (3 of 21 runs), a failing one is"
interval = "1m"
series = [
  { metric = "tool_runs_total", labels = { tool = "nightly", outcome = "ok" }, values = "0 0+1x17 18x10" },
  { metric = "tool_runs_total", labels = { tool = "nightly", outcome = "error" }, values = "0x5 1 1 2 2 3x20" },
  { metric = "tool_runs_total", labels = { tool = "reindex", outcome = "ok" }, values = "0+2x28" },
  { metric = "tool_runs_total", labels = { tool = "reindex", outcome = "timeout" }, values = "0+1x28" },
]
[[tests.alerts]]
at = "20m"
rule = "tool_error_rate"
[[tests.alerts.expected]]
labels = { host = "test", tool = "reindex" }
value = 33.3
summary = "Tool reindex on test fails 33.3% of its runs (14 of 42 in 15 min)"

[[tests]]
name = "protocol error rate: 5% of a method's requests in 5 minutes"
interval = "1m"
series = [
  { series = 'protocol_requests_total{protocol="http", method="GET", status="200"}', values = "0+100x10" },
  { series = 'protocol_requests_total{protocol="http", method="GET", status="500"}', values = "0x3 0+10x6" },
  { series = 'protocol_errors_total{protocol="http", method="GET", error_type="ServerError"}', values = "0x3 0+10x6" },
  { series = 'protocol_requests_total{protocol="http", method="POST", status="200"}', values = "0+100x10" },
  { series = 'protocol_errors_total{protocol="http", method="POST", error_type="ServerError"}', values = "0+1x10" },
]
[[tests.alerts]]
at = "6m"
rule = "protocol_error_rate"
expected = []  # 20 of 420 (4.8%), and POST's 1% never
[[tests.alerts]]
at = "7m"
rule = "protocol_error_rate"
expected = [{ labels = { host = "test", protocol = "http", method = "GET" }, state = "pending", value = 7 }]
[[tests.alerts]]
at = "9m"
rule = "protocol_error_rate"
[[tests.alerts.expected]]
labels = { host = "test", protocol = "http", method = "GET" }
value = 9.1
summary = "http GET on test: 9.1% of requests failed in 5 min (40 of 440)"

[[tests]]
name = "memory that grows day over day, not a daily cycle"
interval = "1h"
# cyclic: 60 to 78 and back every 24 hours
series = [{ metric = "memory_percent", host = "leaky", values = "60+0.5x50" },
          { metric = "memory_percent", host = "cyclic", values = "60+2x9 76-2x8 60x4 60+2x9 76-2x8 60x4 60+2x9 76-2x8 60x4" }]
[[tests.alerts]]
at = "48h"
rule = "memory_growth"
[[tests.alerts.expected]]
labels = { host = "leaky" }
value = 84
summary = "Memory on leaky at 84%, 12 points above the same hour yesterday"
"""


def test_shipped_rules_pass_their_unit_tests(tmp_path: Path) -> None:
    path = tmp_path / "shipped.toml"
    path.write_text(SHIPPED_TESTS)
    report = run_rule_tests(path, rule_dirs=[default_rules_dir()])
    assert report.failures == []
    assert (report.tests, report.checks) == (10, 23)


def test_a_failing_rule_test_says_what_differed(tmp_path: Path) -> None:
    write_rule(tmp_path, "hot", "SELECT host, last AS value FROM gauge_window('t', eval_time() - INTERVAL 1 MINUTE, "
                                "eval_time()) WHERE last > 50", for_="1m")
    path = tmp_path / "t.toml"
    path.write_text("""
rule_files = ["hot.sql"]
[[tests]]
name = "wrong on purpose"
series = [{ metric = "t", host = "x", values = "80x5" }]
alerts = [{ at = "1m", rule = "hot", expected = [{ labels = { host = "y" } }] }]
""")
    [failure] = run_rule_tests(path).failures
    assert failure.rule == "hot" and failure.at == "0:01:00"
    assert failure.message.splitlines() == ['exp: firing {host="y"}', 'got: firing {host="x"} value 80.0',
                                            "--- expected", "+++ got", '-firing {host="y"}',
                                            '+firing {host="x"} value 80.0']
