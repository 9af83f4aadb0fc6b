"""The `alerts`, `rules` and `health` commands, on a file and through a running owner."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import invoke
from click.testing import Result
from rules_helpers import T0, engine_for, rule_settings, series, trigger, write_rule
from shared_helpers import wait_until
from store_helpers import run_python

from monitorkit.owner.connect import RemoteConnection, connect
from monitorkit.rules.loader import default_rules_dir
from monitorkit.samples import HOST, Sample
from monitorkit.store import Store


def cli(*args: str, db: Path) -> Result:
    return invoke(args, db=db, width=200)


@pytest.fixture(scope="module")
def fired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A database (no owner) where rule `hot` fired for key a and key b, with 15 minutes of cpu history."""
    base = tmp_path_factory.mktemp("cli")
    rules = base / "rules"
    write_rule(rules, "hot", summary="{{ key }} hot")
    with Store(base / "m.duckdb", settings=rule_settings(rules, defaults=True)) as store, \
            engine_for(store) as engine:
        store.write([trigger(T0, 80, key="a"), trigger(T0, 80, key="b")])
        store.write(series("cpu_percent", T0, [95.0] * 60 + [10.0] * 30, step=10))
        store.flush()
        engine.run(T0)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)  # no ./monitorkit.toml: the CLI finds its settings by --db only
        yield base / "m.duckdb"


def test_alert_commands_on_a_file(fired: Path) -> None:
    out = cli("alerts", "list", db=fired)
    assert out.exit_code == 0 and "a hot" in out.output and "firing" in out.output
    rows = json.loads(cli("alerts", "list", "--state", "firing", "--json", db=fired).output)
    assert [(r["rule"], r["labels"]) for r in rows] == [("hot", {"host": "h1", "key": "a"}),
                                                        ("hot", {"host": "h1", "key": "b"})]
    pending = json.loads(cli("alerts", "list", "--state", "pending", "--json", db=fired).output)
    assert [r["rule"] for r in pending] == ["cpu_saturation"]  # for: 2m
    assert len(json.loads(cli("alerts", "list", "--all", "--json", db=fired).output)) == 3
    assert cli("alerts", "list", "--state", "resolved", db=fired).output.strip() == "no alerts"

    first = str(rows[0]["id"])
    out = cli("alerts", "ack", first, "--by", "ana", "--comment", "looking", db=fired)
    assert out.exit_code == 0 and "acknowledged by ana" in out.output
    events = json.loads(cli("alerts", "show", first, "--json", db=fired).output)
    assert [(e["event"], e["actor"], e["comment"]) for e in events][-1] == ("ack", "ana", "looking")
    assert [e["event"] for e in events][:2] == ["pending", "firing"]
    assert "acknowledged by ana" in cli("alerts", "show", first, db=fired).output

    out = cli("alerts", "silence", "-m", "key=a", "-m", "alertname=~h.t", "--for", "2h", "--by", "ana",
              "--comment", "deploy", db=fired)
    assert out.exit_code == 0 and out.output.startswith("silence 1 (key=a, alertname=~h.t) until")
    assert "deploy" in cli("alerts", "silences", db=fired).output
    assert cli("alerts", "unsilence", "1", db=fired).exit_code == 0
    assert cli("alerts", "silences", db=fired).output.strip() == "no silences"
    expired = json.loads(cli("alerts", "silences", "--expired", "--json", db=fired).output)
    assert [(s["id"], s["status"], s["by"]) for s in expired] == [(1, "expired", "ana")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["alerts", "ack", "99", "--by", "ana"], "no alert with id 99"),
        (["alerts", "unsilence", "7"], "no silence with id 7"),
        (["alerts", "silence", "-m", "host", "--by", "a", "--comment", "c"], "invalid matcher"),
        (["alerts", "silence", "-m", "host=x", "--for", "0s", "--by", "a", "--comment", "c"], "longer than 0 s"),
        (["rules", "backtest", "nope"], "no rule named 'nope'"),
    ],
)
def test_mistakes_are_one_line_errors(fired: Path, args: list[str], message: str) -> None:
    out = invoke(args, db=fired)
    assert out.exit_code == 1 and message in out.output


def test_rule_commands(fired: Path) -> None:
    out = cli("rules", "list", "--json", db=fired)
    rules = {r["name"]: r for r in json.loads(out.output)}
    assert rules["hot"]["state"] == "ok" and rules["cpu_saturation"]["type"] == "alert"

    out = cli("rules", "backtest", "cpu_saturation", "--from", T0.isoformat(), "--to",
              (T0 + timedelta(minutes=15)).isoformat(), "--step", "1m", "--json", db=fired)
    [window] = json.loads(out.output)
    # keep_firing_for (1m) counts from the first quiet evaluation, as in Prometheus: resolved at 10:11
    assert window["start"].startswith("2024-05-01 10:02") and window["end"].startswith("2024-05-01 10:11")

    broken = fired.parent / "more"
    write_rule(broken, "fine", "SELECT 1 AS value")
    write_rule(broken, "no_value", "SELECT 1 AS x")
    out = cli("rules", "check", str(broken), db=fired)
    assert out.exit_code == 1 and "1 rule(s) errored" in out.output and "'value' column" in out.output

    test_file = fired.parent / "hot_test.toml"
    test_file.write_text("""
rule_files = ["rules/hot.sql"]
[[tests]]
series = [{ metric = "trigger", host = "x", labels = { key = "k" }, values = "80x3" }]
alerts = [{ at = "1m", rule = "hot", expected = [{ labels = { host = "x", key = "k" } }] }]
""")
    out = invoke(["rules", "test", str(test_file)])
    assert out.exit_code == 0 and "1 tests, 1 checks, 0 failures" in out.output
    test_file.write_text(test_file.read_text().replace('key = "k" } }', 'key = "other" } }'))
    out = invoke(["rules", "test", str(test_file)])
    assert out.exit_code == 1 and "FAIL" in out.output


def test_health_command(fired: Path) -> None:
    out = cli("health", "--history", db=fired)
    assert out.exit_code == 0 and "rule_engine" in out.output and "overall:" in out.output
    data = json.loads(cli("health", "--json", db=fired).output)
    assert data["overall"] in ("ok", "degraded", "failing")
    assert {c["component"] for c in data["components"]} >= {"rule_engine", "writer"}


class Trigger:
    """A collector emitting `trigger{key=a}` = 80 every tick."""

    name = "trigger"
    interval = 0.2

    def collect(self, now: Any) -> list[Sample]:
        return [Sample(now, "trigger", {"key": "a"}, 80.0)]


@pytest.fixture
def owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An owner running in a thread: the trigger collector, the rule service with `hot` and the heartbeat check."""
    from monitorkit.owner.runtime import run_owner

    monkeypatch.chdir(tmp_path)
    write_rule(tmp_path / "rules", "hot")
    shutil.copy(default_rules_dir() / "health_heartbeats.sql", tmp_path / "rules")
    db = tmp_path / "m.duckdb"
    overrides: dict[str, Any] = {"store.path": str(db), "collect.interval": 0.2}
    settings = rule_settings(tmp_path / "rules", **overrides)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_owner, args=(settings, stop), kwargs={
        "collectors": [Trigger()], "services": ("monitorkit.rules.service:RuleService",),
        "on_ready": lambda ctx: ready.set()}, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield db
    finally:
        stop.set()
        thread.join(30)


def test_writes_go_through_the_owner_while_it_runs(owner: Path) -> None:
    with connect(owner) as con:
        assert isinstance(con, RemoteConnection)
        assert wait_until(lambda: con.execute("SELECT state FROM alerts").fetchall() == [("firing",)])
        assert cli("alerts", "ack", "1", "--by", "bo", "--comment", "mine", db=owner).exit_code == 0
        out = cli("alerts", "silence", "-m", "key=a", "--for", "1h", "--by", "bo", "--comment", "quiet", db=owner)
        assert out.exit_code == 0
        assert con.execute("SELECT acked_by, ack_comment FROM alerts").fetchall() == [("bo", "mine")]
        assert wait_until(lambda: con.execute("SELECT silenced_by FROM alerts").fetchall() == [(1,)])
        assert con.execute("SELECT count(*) FROM alert_hot").fetchall() == [(1,)]  # views over Quack
        [row] = json.loads(cli("alerts", "list", "--json", db=owner).output)
        assert (row["labels"], row["acked_by"], row["silenced_by"]) == ({"host": HOST, "key": "a"}, "bo", 1)
        events = json.loads(cli("alerts", "show", "1", "--json", db=owner).output)
        assert [e["event"] for e in events][:2] == ["pending", "firing"] and "ack" in [e["event"] for e in events]
        [window] = json.loads(cli("rules", "backtest", "hot", "--from", "30s", "--step", "5s", "--json",
                                  db=owner).output)
        assert window["end"] == "(still firing)"
        child = run_python("import sys\nfrom monitorkit.rules.health import heartbeat\n"
                           "print(heartbeat('worker', status='degraded', reason='slow', ttl=60, db=sys.argv[1]))",
                           str(owner))
        assert child.stdout.strip() == "True", child.stderr
        assert con.execute("SELECT status, reason FROM heartbeats").fetchall() == [("degraded", "slow")]
        assert wait_until(lambda: ("worker", "degraded") in con.execute(
            "SELECT component, status FROM health_components").fetchall())
        out = cli("health", db=owner)
        assert out.exit_code == 0 and "worker" in out.output


def test_recent_history_tells_pending_only_from_resolved(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    write_rule(rules, "slow", for_="5m")  # goes pending, and the trigger stops before 5 minutes
    write_rule(rules, "fast")  # fires at once, then resolves
    db = tmp_path / "m.duckdb"
    with Store(db, settings=rule_settings(rules)) as store, engine_for(store) as engine:
        store.write([trigger(T0, 80)])
        store.flush()
        engine.run(T0)
        engine.run(T0 + timedelta(minutes=2))  # no trigger value in the last minute: both clear
    rows = json.loads(cli("alerts", "recent", "--since", (T0 - timedelta(hours=1)).isoformat(), "--json",
                          db=db).stdout)
    got = {r["rule"]: (r["state"], r["outcome"], r["fired_at"] is not None) for r in rows}
    assert got == {"fast": ("resolved", "resolved", True), "slow": ("inactive", "pending only (never fired)", False)}
    table = cli("alerts", "recent", "--since", (T0 - timedelta(hours=1)).isoformat(), db=db).stdout
    slow = next(line for line in table.splitlines() if " slow " in line)
    assert "pending only (never fired)" in slow and "resolved" not in slow
    assert "inactive" not in table
    shown = cli("alerts", "show", str(next(r["id"] for r in rows if r["rule"] == "slow")), db=db).stdout
    assert "state pending only (never fired)" in shown
    late = cli("alerts", "recent", "--since", (T0 + timedelta(hours=1)).isoformat(), db=db)
    assert late.exit_code == 0 and late.output.startswith("no alert ended since 2024-05-01 11:00:00")
