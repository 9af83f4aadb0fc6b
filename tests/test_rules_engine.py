"""The engine on a real store: states, history, broken rules, reloads, views and health."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import duckdb
import pytest
from rules_helpers import T0, engine_for, events, rule_settings, trigger, write_rule

from monitorkit.owner import local
from monitorkit.owner.connect import connect
from monitorkit.owner.runtime import OwnerContext
from monitorkit.rules.health import heartbeat
from monitorkit.store import Store

SLOW_SQL = "SELECT count(*)::DOUBLE AS value FROM range(100000000000) t(a) WHERE a % 7 = 99"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_alert_goes_pending_firing_resolved_and_history_is_one_query(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "hot", for_="1m", keep_firing_for="45s", summary="{{ key }} at {{ value }}")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        for s in (0, 30, 60, 90):
            store.write([trigger(at(s), 80)])
        store.write([trigger(at(120), 10)])
        store.flush()
        assert [e.event for e in engine.run(at(0)).events] == ["pending"]
        assert engine.run(at(30)).events == []
        assert [e.event for e in engine.run(at(60)).events] == ["firing"]
        assert engine.run(at(90)).events == []
        assert engine.run(at(120)).events == []  # condition gone: keep_firing_for (45 s) counts from here
        assert engine.run(at(150)).events == []  # 30 s since the first quiet evaluation
        assert [e.event for e in engine.run(at(180)).events] == ["resolved"]
        [(_id, rule, state, summary, labels, since, fired, resolved)] = store.query(
            "SELECT id, rule, state, summary, labels, since, fired_at, resolved_at FROM alerts")
        assert (rule, state, summary) == ("hot", "resolved", "a at 80")
        assert labels == {"alertname": "hot", "host": "h1", "key": "a", "severity": "warning"}
        assert (since, fired, resolved) == (at(0), at(60), at(180))
        assert [(e[1], e[2]) for e in events(store)] == [("pending", "pending"), ("firing", "firing"),
                                                         ("resolved", "resolved")]
        assert store.query("SELECT count(*) FROM alert_hot")[0][0] == 0  # the live view (now() is 2024+)
        assert store.query("SELECT state, error FROM rules WHERE name = 'hot'") == [("ok", None)]


def test_a_pending_alert_that_stops_goes_inactive_then_a_new_episode_starts(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "hot", for_="5m")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        store.write([trigger(at(0), 80), trigger(at(60), 10), trigger(at(120), 80)])
        store.flush()
        for s in (0, 60, 120):
            engine.run(at(s))
        assert [e[1] for e in events(store)] == ["pending", "inactive", "pending"]
        assert store.query("SELECT state, since FROM alerts") == [("pending", at(120))]


def test_broken_rules_are_errored_while_others_fire_and_fixing_a_file_reloads_it(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    write_rule(rules, "good")
    write_rule(rules, "no_table", "SELECT 1 AS value FROM no_such_table")
    write_rule(rules, "no_value", "SELECT host FROM samples WHERE time > eval_time()")
    write_rule(rules, "slow", SLOW_SQL, timeout="200ms")
    write_rule(rules, "bad_health", "SELECT 'x' AS component", type="health")
    write_rule(rules, "bad_status", "SELECT 'x' AS component, 'meh' AS status, '' AS reason", type="health")
    (rules / "unparsable.sql").write_text("-- name: unparsable\n-- kind: sometimes\nSELECT 1 AS value")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(rules)) as store, engine_for(store) as engine:
        store.write([trigger(at(0), 80)])
        store.flush()
        report = engine.run(at(0))
        assert [(e.rule, e.event) for e in report.events] == [("good", "pending"), ("good", "firing")]
        errors = dict(store.query("SELECT name, error FROM rules WHERE state = 'errored'"))
        assert set(errors) == {"no_table", "no_value", "slow", "bad_health", "bad_status", "unparsable"}
        assert "no_such_table" in errors["no_table"]
        assert "'value' column" in errors["no_value"]
        assert "budget" in errors["slow"]
        assert "component, status, reason" in errors["bad_health"]
        assert "ok, degraded or failing" in errors["bad_status"]
        assert "kind must be one of" in errors["unparsable"]
        assert store.query("SELECT state FROM alerts WHERE rule = 'good'") == [("firing",)]
        assert store.query("SELECT status FROM health_status WHERE component = 'x'") == []

        write_rule(rules, "no_table", "SELECT 2 AS value")
        (rules / "unparsable.sql").write_text("-- name: unparsable\n-- kind: error\nSELECT 3 AS value")
        os.utime(rules, None)
        report = engine.run(at(10))
        errors = dict(store.query("SELECT name, error FROM rules WHERE state = 'errored'"))
        assert set(errors) == {"no_value", "slow", "bad_health", "bad_status"}
        assert {e.rule for e in report.events} == {"no_table", "unparsable"}
        assert store.query("SELECT value FROM alert_no_table") == [(2,)]


def test_a_removed_rule_resolves_its_alerts_and_drops_its_view(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    path = write_rule(rules, "gone")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(rules)) as store, engine_for(store) as engine:
        store.write([trigger(at(0), 80)])
        store.flush()
        engine.run(at(0))
        path.unlink()
        engine.run(at(10))
        assert store.query("SELECT state FROM alerts") == [("resolved",)]
        assert store.query("SELECT comment FROM alert_events WHERE event = 'resolved'") == [("rule removed",)]
        with pytest.raises(duckdb.CatalogException):
            store.query("SELECT * FROM alert_gone")


def test_duplicate_label_sets_count_once_and_labels_skip_underscore_columns(tmp_path: Path) -> None:
    sql = "SELECT 'x' AS key, 1 AS value, 'v' || (random() * 1000)::INT AS _note FROM range(3)"
    write_rule(tmp_path / "rules", "dup", sql, summary="note {{ _note }}")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        engine.run(at(0))
        engine.run(at(10))
        [(labels, summary)] = store.query("SELECT labels, summary FROM alerts")
        assert labels == {"alertname": "dup", "key": "x", "severity": "warning"}
        assert summary.startswith("note v")


def test_health_checks_heartbeats_and_the_overall_status(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    with Store(tmp_path / "m.duckdb", settings=rule_settings(rules, defaults=True)) as store, \
            engine_for(store) as engine:
        store.write([trigger(at(0), 1)])
        store.flush()
        here = cast(OwnerContext, SimpleNamespace(owner=SimpleNamespace(store=store)))  # the owner, in this process
        local.register(store.path, here)
        try:
            assert heartbeat("billing", status="ok", ttl=30)
        finally:
            local.unregister(store.path, here)
        store.flush()
        [(beat,)] = store.query("SELECT updated_at FROM heartbeats WHERE component = 'billing'")
        engine.run(beat + timedelta(seconds=5))
        status = dict(store.query("SELECT component, status FROM health_status"))
        assert status["billing"] == "ok" and status["rule_engine"] == "ok" and status["writer"] == "failing"
        assert status["overall"] == "failing"
        engine.run(beat + timedelta(seconds=45))
        assert store.query("SELECT status, reason FROM health_status WHERE component = 'billing'")[0][0] == "failing"
        history = store.query(
            "SELECT status, previous FROM health_history WHERE component = 'billing' ORDER BY time")
        assert history == [("ok", None), ("failing", "ok")]
        assert store.query("SELECT state FROM alerts WHERE rule = 'heartbeat_failing'") == [("pending",)]
    with connect(tmp_path / "m.duckdb") as con:  # no owner: the file, read-only; the views still work
        comps = dict(con.execute("SELECT component, status FROM health_components").fetchall())
        assert comps["billing"] == "ok"  # live: eval_time() is now(), within the ttl
        assert comps["writer"] == "failing"  # nothing written lately (the samples are from 2024)
        assert con.execute("SELECT status FROM health_overall").fetchall() == [("failing",)]
