"""The demo generator: deterministic, incidents where INCIDENTS says, bad arguments refused."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from cli_helpers import invoke

from monitorkit import demo
from monitorkit.demo import DemoArgumentError, DemoConfig

# The default history at a 60 s step: the same incidents as the CLI default, 6x fewer rows.
CONFIG = DemoConfig(step=60)
TINY = DemoConfig(days=1, hosts=2, step=300)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[demo.DemoReport, duckdb.DuckDBPyConnection]:  # type: ignore[misc]
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    report = demo.generate(path, CONFIG)
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    yield report, con
    con.close()


def _digest(data: demo.DemoData) -> str:
    h = hashlib.sha256()
    for host, name, labels, values in data.series:
        h.update(f"{host}|{name}|{sorted(labels.items())}".encode())
        h.update(values.tobytes())
    for run in data.runs:
        h.update(repr(run).encode())
    return h.hexdigest()


def test_same_seed_same_values_other_seed_other_values() -> None:
    assert _digest(demo.build(TINY)) == _digest(demo.build(TINY))
    assert _digest(demo.build(TINY)) != _digest(demo.build(TINY._replace(seed=43)))


def test_a_hosts_values_do_not_depend_on_how_many_hosts() -> None:
    one = [s for s in demo.build(TINY._replace(hosts=1)).series]
    three = [s for s in demo.build(TINY._replace(hosts=3)).series if s[0] == "web-1"]
    assert [(s[1], s[2]) for s in one] == [(s[1], s[2]) for s in three]
    assert all((a[3] == b[3]).all() for a, b in zip(one, three, strict=True))


def test_same_seed_writes_the_same_database(tmp_path: Path) -> None:
    prints = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        demo.generate(tmp_path / f"{name}.duckdb", TINY._replace(seed=seed))
        with duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True) as con:
            prints.append(demo.fingerprint(con))
    assert prints[0] == prints[1]
    assert prints[0][:2] == prints[2][:2]  # same shape ...
    assert prints[0][2] != prints[2][2]  # ... different values


def test_report_counts_match_the_file(demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection]) -> None:
    report, con = demo_db
    series, samples, _ = demo.fingerprint(con)
    assert (report.series, report.samples) == (series, samples)
    assert samples == demo.estimate_rows(CONFIG) == CONFIG.steps * series
    hosts = con.execute("SELECT list(DISTINCT host ORDER BY host) FROM series").fetchone()
    assert hosts == (["db-1", "web-1", "worker-1"],)
    span = con.execute("SELECT min(time), max(time) FROM samples_raw").fetchone()
    assert span == (CONFIG.start, CONFIG.end - timedelta(seconds=CONFIG.step))


def test_tiers_are_rolled_up(demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection]) -> None:
    report, con = demo_db
    rows = dict(con.execute("SELECT tier, rows FROM tier_status").fetchall())
    assert rows["1m"] == report.series * CONFIG.days * 1440
    assert rows["1h"] == report.series * CONFIG.days * 24


def test_metric_names_are_the_collectors_and_instrument_names(
    demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection],
) -> None:
    from monitorkit.catalog import all_metrics

    _, con = demo_db
    names = {n for (n,) in con.execute("SELECT DISTINCT name FROM series").fetchall()}
    registry = {m.name: m.kind for m in all_metrics()}
    for name in names:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert registry.get(name) in ("gauge", "counter") or registry.get(base) == "histogram", name
    assert {"cpu_percent", "disk_used_percent", "net_up", "memory_percent", "load1"} <= names


def test_incidents_is_the_default_plan() -> None:
    assert demo.INCIDENTS == demo.plan_incidents(DemoConfig())
    assert [i.kind for i in demo.INCIDENTS] == [
        "nic_flapping", "cpu_saturation", "slow_tool", "protocol_errors", "memory_leak", "disk_fill",
    ]
    for incident in demo.INCIDENTS:
        assert DemoConfig().start <= incident.start < incident.end <= DemoConfig().end


@pytest.mark.parametrize("incident", demo.INCIDENTS, ids=lambda i: i.kind)
def test_incident_is_observed_only_in_its_window(
    demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection], incident: demo.Incident
) -> None:
    _, con = demo_db
    seen = demo.observed(con, incident)
    assert seen is not None, f"{incident.kind} never crosses {incident.threshold}"
    first, last = seen
    # Nothing before the start; the end within 10 minutes (rounding, 5-minute buckets, flaps).
    assert incident.start <= first <= incident.start + timedelta(minutes=10)
    assert incident.end - timedelta(minutes=10) <= last < incident.end


def test_incident_not_seen_on_other_hosts(demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection]) -> None:
    _, con = demo_db
    for incident in demo.INCIDENTS:
        for host in CONFIG.host_names:
            if host != incident.host:
                other = incident._replace(host=host)
                assert demo.observed(con, other) is None, (incident.kind, host)


def test_cpu_above_90_exactly_during_saturation(demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection]) -> None:
    _, con = demo_db
    sat = next(i for i in demo.INCIDENTS if i.kind == "cpu_saturation")
    inside, outside = con.execute(  # type: ignore[misc]
        """SELECT min(value) FILTER (time >= ? AND time < ?), max(value) FILTER (time < ? OR time >= ?)
           FROM samples WHERE name = 'cpu_percent' AND host = ?""",
        [sat.start, sat.end, sat.start, sat.end, sat.host],
    ).fetchone()
    assert inside > 95 and outside < 90
    others = con.execute("SELECT max(value) FROM samples WHERE name = 'cpu_percent' AND host <> ?", [sat.host]).fetchone()
    assert others[0] < 90  # type: ignore[index]


def test_latency_rises_with_cpu(demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection]) -> None:
    _, con = demo_db
    sat = next(i for i in demo.INCIDENTS if i.kind == "cpu_saturation")
    latency = sat._replace(metric="protocol_request_duration_seconds", labels={"method": "GET"}, threshold=0.2)
    during = demo.observed(con, latency)
    assert during is not None and sat.start <= during[0] and during[1] < sat.end


def test_executions_rows_tell_the_slow_tool_story(demo_db: tuple[demo.DemoReport, duckdb.DuckDBPyConnection]) -> None:
    report, con = demo_db
    slow = next(i for i in demo.INCIDENTS if i.kind == "slow_tool")
    total, in_window, out_window, timeouts_out = con.execute(  # type: ignore[misc]
        """SELECT count(*),
                  avg(duration_s) FILTER (tool = 'reindex' AND started >= ? AND started < ?),
                  avg(duration_s) FILTER (tool = 'reindex' AND (started < ? OR started >= ?)),
                  count(*) FILTER (outcome = 'timeout' AND (started < ? OR started >= ?))
           FROM executions""",
        [slow.start, slow.end] * 3,
    ).fetchone()
    assert total == report.executions > 0
    assert in_window > 30 and out_window < 3 and timeouts_out == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"days": 0}, "days must be a whole number from 1 to 366"),
        ({"days": 1.5}, "days must be a whole number"),
        ({"hosts": 0}, "hosts must be a whole number from 1 to 12"),
        ({"hosts": 13}, "hosts must be a whole number from 1 to 12"),
        ({"step": 7}, "divides a day"),
        ({"step": 0}, "step must be"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"start": datetime(2026, 1, 5)}, "aware datetime"),
        ({"days": 366, "hosts": 3, "step": 10}, "pass a larger step such as --step 300"),
    ],
)
def test_bad_arguments_are_refused_clearly(change: dict[str, object], message: str) -> None:
    with pytest.raises(DemoArgumentError, match=re.escape(message)):
        demo.check_config(DemoConfig()._replace(**change))  # type: ignore[arg-type]


def test_existing_file_needs_force(tmp_path: Path) -> None:
    path = tmp_path / "d.duckdb"
    path.write_bytes(b"not a database")
    with pytest.raises(DemoArgumentError, match="already exists; pass --force"):
        demo.generate(path, TINY)
    assert path.read_bytes() == b"not a database"
    calls: list[tuple[int, int]] = []
    report = demo.generate(path, TINY, force=True, progress=lambda done, total: calls.append((done, total)))
    assert report.samples == demo.estimate_rows(TINY)
    assert calls[-1] == (TINY.steps + 1, TINY.steps + 1)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DemoArgumentError, match="is a folder"):
        demo.generate(tmp_path, TINY, force=True)


def test_cli_writes_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "cli.duckdb"
    result = invoke(["demo", "--db", str(path), "--days", "1", "--hosts", "2", "--step", "300"])
    assert result.exit_code == 0, result.output
    assert f"wrote {demo.estimate_rows(TINY):,} samples" in result.output
    assert "cpu_saturation" in result.output and "nic_flapping" in result.output
    with duckdb.connect(str(path), read_only=True) as con:
        assert demo.fingerprint(con)[1] == demo.estimate_rows(TINY)


def test_cli_end_now_aligns_the_range(tmp_path: Path) -> None:
    path = tmp_path / "now.duckdb"
    before = datetime.now(UTC)
    result = invoke(["demo", "--db", str(path), "--days", "1", "--hosts", "1", "--step", "300", "--end", "now", "-q"])
    assert result.exit_code == 0, result.output
    with duckdb.connect(str(path), read_only=True) as con:
        newest = con.execute("SELECT max(time) FROM samples_raw").fetchone()[0]  # type: ignore[index]
    assert before - timedelta(minutes=10) < newest <= before
    assert newest.timestamp() % 300 == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "days must be a whole number from 1 to 366"),
        (["--hosts", "20"], "hosts must be a whole number from 1 to 12"),
        (["--step", "7"], "divides a day"),
        (["--end", "yesterday"], "--end must be 'now' or an ISO time"),
    ],
)
def test_cli_refuses_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(["demo", "--db", str(tmp_path / "x.duckdb"), *args])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "x.duckdb").exists()
