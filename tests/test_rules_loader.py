"""Rule files: the header, the SQL checks, templates, matchers, time substitution, the shipped rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from rules_helpers import T0, write_rule

from monitorkit.rules.errors import MatcherError, RuleFileError
from monitorkit.rules.loader import default_rules_dir, load_rules, parse_rule, render, snapshot, sql_at
from monitorkit.rules.silences import Matcher, parse_matcher, parse_matchers

FULL = """-- name: cpu_saturation
-- kind: resource
-- severity: critical
-- for: 2m
-- keep_firing_for: 1m
-- summary: CPU {{ host }} at {{ value }}%
-- description: first line
--   second line
-- labels: team=infra, page=yes
-- timeout: 500ms
-- an ordinary comment
SELECT host, 95.0 AS value FROM samples WHERE time > eval_time() - INTERVAL 1 MINUTE;
"""


def test_header_fields_are_parsed() -> None:
    rule = parse_rule(FULL)
    assert rule.name == "cpu_saturation" and rule.type == "alert" and rule.view == "alert_cpu_saturation"
    assert (rule.kind, rule.severity) == ("resource", "critical")
    assert rule.for_ == timedelta(minutes=2) and rule.keep_firing_for == timedelta(minutes=1)
    assert rule.summary == "CPU {{ host }} at {{ value }}%"
    assert rule.description == "first line second line"
    assert dict(rule.labels) == {"team": "infra", "page": "yes"}
    assert rule.timeout == timedelta(milliseconds=500)
    assert rule.sql.startswith("SELECT host") and not rule.sql.endswith(";")


def test_health_check_defaults() -> None:
    rule = parse_rule("-- name: db\n-- type: health\nSELECT 'db' AS component, 'ok' AS status, '' AS reason")
    assert (rule.type, rule.kind, rule.view) == ("health", "health", "health_db")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: x\n-- kind: resource\n-- keep_firing: 1m\nSELECT 1 AS value", "unknown header key 'keep_firing'"),
        ("-- name: x\n-- kind: memory\nSELECT 1 AS value", "kind must be one of"),
        ("-- name: x\n-- kind: error\n-- severity: page\nSELECT 1 AS value", "severity must be one of"),
        ("-- name: Bad-Name\n-- kind: error\nSELECT 1 AS value", "lower case"),
        ("-- name: x\n-- kind: error\n-- for: soon\nSELECT 1 AS value", "invalid duration"),
        ("-- name: x\n-- kind: error\n", "no SQL"),
        ("-- name: x\n-- kind: error\nSELECT 1 AS value; SELECT 2 AS value", "exactly one"),
        ("-- name: x\n-- kind: error\nDELETE FROM samples_raw", "must be a SELECT"),
        ("-- name: x\n-- kind: error\nSELECT now() AS value", "eval_time()"),
        ("-- name: x\n-- kind: error\nSELEC 1", "does not parse"),
        ("-- name: status\n-- type: health\nSELECT 1", "reserved"),
        ("-- name: x\n-- name: y\n-- kind: error\nSELECT 1 AS value", "given twice"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        parse_rule(text)


def test_now_inside_a_string_or_comment_is_allowed() -> None:
    rule = parse_rule("-- name: x\n-- kind: error\nSELECT 'now()' AS note, 1 AS value -- not now()")
    assert "now()" in rule.sql


def test_sql_at_fixes_eval_time_and_needs_an_aware_time() -> None:
    rule = parse_rule(FULL)
    sql = sql_at(rule, T0)
    assert "eval_time" not in sql and "TIMESTAMPTZ '2024-05-01T10:00:00+00:00'" in sql
    assert sql_at(rule, None) == rule.sql
    with pytest.raises(ValueError):
        sql_at(rule, T0.replace(tzinfo=None))


def test_templates_render_columns_and_values() -> None:
    row = {"host": "web1", "value": 95.123, "n": 3.0, "r": 99.9}
    assert render("CPU {{ host }} at {{value}}% ({{ n }}, {{ r }}) {{ missing }}.", row) == "CPU web1 at 95.12% (3, 99.9) ."


def test_load_rules_later_folder_wins_and_broken_files_are_listed(tmp_path: Path) -> None:
    write_rule(tmp_path / "a", "one", severity="warning")
    write_rule(tmp_path / "b", "one", severity="critical")
    (tmp_path / "b" / "broken.sql").write_text("-- name: broken\n-- kind: nope\nSELECT 1 AS value")
    loaded = load_rules([tmp_path / "a", tmp_path / "b", tmp_path / "missing"])
    assert loaded.rules["one"].severity == "critical"
    assert set(loaded.broken) == {"broken"} and "kind must be one of" in loaded.broken["broken"][1]
    assert set(load_rules([tmp_path / "a", tmp_path / "b"], disabled=["one"]).rules) == set()


def test_snapshot_changes_when_a_file_is_added(tmp_path: Path) -> None:
    write_rule(tmp_path, "one")
    before = snapshot([tmp_path])
    write_rule(tmp_path, "two")
    assert snapshot([tmp_path]) != before


def test_shipped_rules_cover_the_four_kinds_and_health_checks() -> None:
    loaded = load_rules([default_rules_dir()])
    assert not loaded.broken
    kinds = {r.kind for r in loaded.rules.values() if r.type == "alert"}
    assert kinds == {"performance", "resource", "error", "health"}
    checks = {r.name for r in loaded.rules.values() if r.type == "health"}
    assert {"collectors", "writer", "rule_engine", "notifiers", "heartbeats"} <= checks
    for name in ("cpu_saturation", "memory_pressure", "disk_filling", "disk_full_predicted", "swap_activity",
                 "nic_errors", "connection_surge", "collector_down", "tool_error_rate", "protocol_latency"):
        assert name in loaded.rules, name
        assert "eval_time()" in loaded.rules[name].sql  # every rule can be backtested


@pytest.mark.parametrize(
    ("text", "matcher", "hits", "misses"),
    [
        ("host=web1", Matcher("host", "=", "web1"), {"host": "web1"}, {"host": "web2"}),
        ("host!=web1", Matcher("host", "!=", "web1"), {"host": "web2"}, {"host": "web1"}),
        ("alertname=~cpu.*", Matcher("alertname", "=~", "cpu.*"), {"alertname": "cpu_sat"}, {"alertname": "xcpu"}),
        ("mount!~/boot.*", Matcher("mount", "!~", "/boot.*"), {"mount": "/"}, {"mount": "/boot/efi"}),
        ('env="prod"', Matcher("env", "=", "prod"), {"env": "prod"}, {}),
    ],
)
def test_matchers(text: str, matcher: Matcher, hits: dict[str, str], misses: dict[str, str]) -> None:
    assert parse_matcher(text) == matcher
    assert matcher.matches(hits) and not matcher.matches(misses)


def test_matchers_split_on_commas_but_not_inside_regexes() -> None:
    got = parse_matchers(["host=web1, code=~5[0-9]{1,2}", "env!=dev"])
    assert [str(m) for m in got] == ["host=web1", "code=~5[0-9]{1,2}", "env!=dev"]
    for bad in ("host", "=web1", "host=~("):
        with pytest.raises(MatcherError):
            parse_matcher(bad)
