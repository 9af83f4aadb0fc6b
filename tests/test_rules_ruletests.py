"""Rule unit tests at promtool's level: annotations and labels checked exactly, promtool's notation, promtool files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from promtool_harness import PROMTOOL
from rules_helpers import write_rule

from monitorkit.rules.errors import RuleTestError
from monitorkit.rules.ruletests import run_rule_tests

SQL = "SELECT host, value FROM instant('m', eval_time()) WHERE value > 50"


def rule(folder: Path) -> None:
    write_rule(folder, "hot", SQL, for_="1m", summary="{{ $labels.host }} at {{ $value }}",
               **{"annotations.runbook_url": "https://wiki/hot"})


def toml(folder: Path, expected: str, values: str = "0 60x5", at: str = "3m") -> Path:
    path = folder / "t.toml"
    path.write_text(f"""
rule_files = ["hot.sql"]
[[tests]]
name = "hot"
series = [{{ series = 'm{{host="web1"}}', values = "{values}" }}]
alerts = [{{ at = "{at}", rule = "hot", expected = [{expected}] }}]
""")
    return path


def test_a_wrong_summary_fails_with_the_difference(tmp_path: Path) -> None:
    rule(tmp_path)
    assert run_rule_tests(toml(tmp_path, '{ labels = { host = "web1" }, summary = "web1 at 60" }')).ok
    [failure] = run_rule_tests(toml(tmp_path, '{ labels = { host = "web1" }, summary = "WRONG" }')).failures
    assert failure.message.splitlines()[-2:] == ['-firing {host="web1"} annotations {summary="WRONG"}',
                                                 '+firing {host="web1"} annotations {summary="web1 at 60"}']


def test_annotations_are_compared_exactly_when_given(tmp_path: Path) -> None:
    rule(tmp_path)
    full = '{ summary = "web1 at 60", runbook_url = "https://wiki/hot" }'
    assert run_rule_tests(toml(tmp_path, f'{{ labels = {{ host = "web1" }}, annotations = {full} }}')).ok
    partial = '{ labels = { host = "web1" }, annotations = { summary = "web1 at 60" } }'
    [failure] = run_rule_tests(toml(tmp_path, partial)).failures
    assert 'runbook_url="https://wiki/hot"' in failure.message


def test_labels_are_compared_exactly(tmp_path: Path) -> None:
    rule(tmp_path)
    [failure] = run_rule_tests(toml(tmp_path, '{ labels = { host = "web1", extra = "x" } }')).failures
    assert '-firing {extra="x", host="web1"}' in failure.message
    assert run_rule_tests(toml(tmp_path, '{ labels = { host = "web1", severity = "warning" } }')).ok
    assert not run_rule_tests(toml(tmp_path, '{ labels = { host = "web1", severity = "critical" } }')).ok


def test_an_unknown_expectation_key_is_refused(tmp_path: Path) -> None:
    rule(tmp_path)
    with pytest.raises(RuleTestError, match=r"unknown key\(s\) \['sumary'\]"):
        run_rule_tests(toml(tmp_path, '{ labels = { host = "web1" }, sumary = "web1 at 60" }'))


def test_promtool_series_notation_with_gaps_and_a_stale_marker(tmp_path: Path) -> None:
    rule(tmp_path)
    # 60 at 0-1 min, gaps at 2-4 min (the 5-minute lookback bridges them), stale at 5 min
    assert run_rule_tests(toml(tmp_path, '{ labels = { host = "web1" } }', values="60 60 _x3 stale", at="4m")).ok
    assert run_rule_tests(toml(tmp_path, "", values="60 60 _x3 stale", at="5m")).ok  # ended at the marker
    assert run_rule_tests(toml(tmp_path, "", values="0 1+1x10 60-5x2", at="2m")).ok


PROMQL_RULES = {"groups": [{"name": "g", "rules": [{
    "alert": "hot", "expr": "m > 50", "for": "1m", "labels": {"severity": "warning"},
    "annotations": {"summary": "{{ $labels.host }} at {{ $value }}", "runbook_url": "https://wiki/hot"}}]}]}


def promtool_test(folder: Path, summary: str) -> Path:
    (folder / "rules.yml").write_text(json.dumps(PROMQL_RULES))
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [{"series": 'm{host="web1"}', "values": "0 60x5 stale"}],
        "alert_rule_test": [
            {"eval_time": "1m", "alertname": "hot", "exp_alerts": []},  # pending: not listed
            {"eval_time": "2m30s", "alertname": "hot", "exp_alerts": [
                {"exp_labels": {"host": "web1", "severity": "warning"},
                 "exp_annotations": {"summary": summary, "runbook_url": "https://wiki/hot"}}]},
            {"eval_time": "7m", "alertname": "hot", "exp_alerts": []}],
        "promql_expr_test": [{"expr": "m", "eval_time": "1m", "exp_samples": [{"labels": 'm{host="web1"}',
                                                                                 "value": 60}]}]}]}
    path = folder / "test.yml"
    path.write_text(json.dumps(test))
    return path


@pytest.mark.parametrize(("summary", "ok"), [("web1 at 60", True), ("WRONG", False)])
def test_one_promtool_file_runs_in_promtool_with_promql_and_in_monitorkit_with_sql(
        tmp_path: Path, summary: str, ok: bool) -> None:
    rule(tmp_path)
    path = promtool_test(tmp_path, summary)
    done = subprocess.run([PROMTOOL, "test", "rules", path.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode == 0) == ok, done.stdout
    report = run_rule_tests(path, rule_dirs=[tmp_path])
    assert report.ok == ok and report.checks == 3
    assert report.skipped == ("rule_files rules.yml (PromQL: monitorkit runs its SQL rules of the same names)",
                              "test 1: promql_expr_test 'm' at 1m (PromQL)")
    if not ok:
        [failure] = report.failures
        assert failure.at == "0:02:00" and 'summary="WRONG"' in failure.message
