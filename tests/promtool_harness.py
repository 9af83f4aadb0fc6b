"""Differential harness: one alerting case run by the real ``promtool test rules`` and by monitorkit's engine.

A case (``tests/promtool_cases/<family>.toml``) gives input series in promtool's notation, one
alert rule twice (``expr`` in PromQL, ``sql`` in monitorkit SQL) with the same ``for``,
``keep_firing_for``, ``labels`` and ``annotations`` (Prometheus templates, which monitorkit
renders natively; ``mk_annotations`` may spell them in monitorkit's ``{{ column }}`` syntax
instead), and how far to evaluate. ``check(case, folder)``:

1. replays the case through monitorkit (the rule-test path: ``load_series``, then ``Replay``,
   which is the live engine's AlertBook) and records, at every evaluation, each pending and
   firing alert: state, labels, annotations and ``since`` (Prometheus's ActiveAt);
2. writes a promtool unit-test file whose expectations are monitorkit's answers: at every
   evaluation ``alert_rule_test`` (the firing alerts with labels and annotations, as promtool
   compares them), ``ALERTS`` (every pending and firing alert with its ``alertstate``) and
   ``ALERTS_FOR_STATE`` (each one's ActiveAt);
3. runs promtool on it: promtool itself says whether the two agree, and its report of the
   difference is the failure message.

monitorkit adds a ``severity`` label to every alert (its header's, ``warning`` by default);
the PromQL rule gets the same label unless the case sets one, so the label sets compare.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from monitorkit.config import parse_duration
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.rules.backtest import Replay
from monitorkit.rules.loader import parse_rule
from monitorkit.rules.ruletests import load_series
from monitorkit.rules.schema import SCHEMA as RULES_SCHEMA
from monitorkit.rules.testcases import series_spec
from monitorkit.store.migrations import migrate
from monitorkit.store.schema import SCHEMA as STORE_SCHEMA

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
CASES = Path(__file__).with_name("promtool_cases")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # promtool's input series start at the Unix epoch
PROMTOOL_TIMEOUT = 60.0


class ParityCase(NamedTuple):
    """One alerting case, described once for both promtool and monitorkit."""

    family: str
    name: str
    alert: str
    expr: str
    sql: str
    series: list[tuple[str, str]]  # (promtool series, values)
    for_: str = "0s"
    keep_firing_for: str = "0s"
    labels: Mapping[str, str] = {}
    annotations: Mapping[str, str] = {}
    mk_annotations: Mapping[str, str] | None = None  # monitorkit's spelling, when it differs
    interval: str = "1m"
    evaluation_interval: str = "1m"
    until: str = "10m"

    @property
    def id(self) -> str:
        """Return ``family: name`` for test ids."""
        return f"{self.family}: {self.name}"


class Seen(NamedTuple):
    """One pending or firing alert at one evaluation, as monitorkit had it."""

    state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    since: float  # Unix seconds: promtool's ALERTS_FOR_STATE value


def load_cases(folder: Path = CASES) -> list[ParityCase]:
    """Return every case of ``folder/*.toml``; the file name is the case family."""
    out = []
    for path in sorted(folder.glob("*.toml")):
        for item in tomllib.loads(path.read_text()).get("case", []):
            fields = {"for_" if k == "for" else k: v for k, v in item.items()}
            fields["series"] = [tuple(s) for s in fields["series"]]
            out.append(ParityCase(family=path.stem, **fields))
    return out


def _labels(case: ParityCase) -> dict[str, str]:
    return {"severity": "warning", **case.labels}  # monitorkit's default severity, spelled out for Prometheus


def monitorkit_rule_text(case: ParityCase) -> str:
    """Return the case's rule as a monitorkit rule file (header, then the SQL)."""
    lines = [f"-- name: {case.alert}", "-- kind: resource", f"-- for: {case.for_}",
             f"-- keep_firing_for: {case.keep_firing_for}"]
    if case.labels:
        lines.append("-- labels: " + ", ".join(f"{k}={v}" for k, v in case.labels.items()))
    annotations = case.annotations if case.mk_annotations is None else case.mk_annotations
    for key, text in annotations.items():
        lines.append(f"-- {key}: {text}" if key in ("summary", "description") else f"-- annotations.{key}: {text}")
    return "\n".join(lines) + "\n" + case.sql.strip() + "\n"


def eval_times(case: ParityCase) -> list[timedelta]:
    """Return the evaluation offsets: 0, evaluation_interval, ... up to ``until``."""
    step, until = parse_duration(case.evaluation_interval), parse_duration(case.until)
    return [step * i for i in range(int(until / step) + 1)]


def run_monitorkit(case: ParityCase) -> dict[timedelta, list[Seen]]:
    """Replay the case through monitorkit; return the pending and firing alerts at every evaluation."""
    rule = parse_rule(monitorkit_rule_text(case), file=f"<{case.id}>")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        migrate(con, (STORE_SCHEMA, EXECUTIONS_SCHEMA, RULES_SCHEMA))
        series = [series_spec({"series": name, "values": values}, "") for name, values in case.series]
        load_series(con, series, EPOCH, parse_duration(case.interval))
        replay = Replay(rule)
        out: dict[timedelta, list[Seen]] = {}
        for offset in eval_times(case):
            replay.step(con, EPOCH + offset)
            out[offset] = sorted(
                (Seen(i.state, dict(i.labels), dict(i.annotations), (i.phase.since - EPOCH).total_seconds())
                 for i in replay.active() if i.phase.since is not None),
                key=lambda s: sorted(s.labels.items()))
        return out
    finally:
        con.close()


def _selector(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def _minutes(offset: timedelta) -> str:
    return f"{int(offset.total_seconds())}s"


def promtool_files(case: ParityCase, seen: Mapping[timedelta, Sequence[Seen]], folder: Path) -> Path:
    """Write the PromQL rule file and a promtool test expecting monitorkit's answers; return the test file."""
    folder.mkdir(parents=True, exist_ok=True)
    rule: dict[str, Any] = {"alert": case.alert, "expr": case.expr, "for": case.for_, "labels": _labels(case),
                            "annotations": dict(case.annotations)}
    if parse_duration(case.keep_firing_for):
        rule["keep_firing_for"] = case.keep_firing_for
    (folder / "rules.yml").write_text(json.dumps(
        {"groups": [{"name": "parity", "interval": case.evaluation_interval, "rules": [rule]}]}, indent=1))
    alert_tests, expr_tests = [], []
    for offset, alerts in seen.items():
        at = _minutes(offset)
        firing = [{"exp_labels": {k: v for k, v in a.labels.items() if k != "alertname"},
                   "exp_annotations": a.annotations} for a in alerts if a.state == "firing"]
        alert_tests.append({"eval_time": at, "alertname": case.alert, "exp_alerts": firing})
        # Prometheus builds ALERTS and ALERTS_FOR_STATE from the rule's labels as written, then the
        # alert's (rules/alerting.go, sample and forStateSample): a rule label whose template expands
        # to nothing is no label of the alert, but shows there unexpanded.
        expr_tests.append({"expr": "ALERTS", "eval_time": at, "exp_samples": [
            {"labels": _selector("ALERTS", {**rule["labels"], **a.labels, "alertstate": a.state}), "value": 1}
            for a in alerts]})
        expr_tests.append({"expr": "ALERTS_FOR_STATE", "eval_time": at, "exp_samples": [
            {"labels": _selector("ALERTS_FOR_STATE", {**rule["labels"], **a.labels}), "value": a.since}
            for a in alerts]})
    test = {"rule_files": ["rules.yml"], "evaluation_interval": case.evaluation_interval, "tests": [{
        "name": case.id, "interval": case.interval,
        "input_series": [{"series": s, "values": v} for s, v in case.series],
        "alert_rule_test": alert_tests, "promql_expr_test": expr_tests}]}
    path = folder / "test.yml"
    path.write_text(json.dumps(test, indent=1))
    return path


def run_promtool(test_file: Path) -> tuple[bool, str]:
    """Run ``promtool test rules`` on ``test_file``; return (passed, its output)."""
    done = subprocess.run([PROMTOOL, "test", "rules", test_file.name], cwd=test_file.parent, capture_output=True,
                          text=True, timeout=PROMTOOL_TIMEOUT)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def check(case: ParityCase, folder: Path) -> str | None:
    """Return None when promtool agrees with monitorkit at every evaluation, else a report of the difference."""
    seen = run_monitorkit(case)
    passed, output = run_promtool(promtool_files(case, seen, folder))
    if passed:
        return None
    lines = [f"{case.id}: promtool disagrees with monitorkit (whose answers are the 'exp' side)", output, "",
             "monitorkit, evaluation by evaluation:"]
    for offset, alerts in seen.items():
        shown = "; ".join(f"{a.state} {_selector('', a.labels)} {a.annotations or ''}" for a in alerts)
        lines.append(f"  {_minutes(offset)}: {shown or '-'}")
    return "\n".join(lines)
