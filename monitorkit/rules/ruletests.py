"""Unit tests for rules, promtool style: input series, evaluation times, expected alerts and annotations.

A TOML file (monitorkit's dialect) or a promtool YAML file (``promtool_tests.py``, for the parts
that map):

```toml
rule_files = ["cpu.sql"]            # relative to this file; default: the shipped rules
evaluation_interval = "1m"

[[tests]]
name = "cpu saturation fires after 2 minutes"
interval = "10s"                    # spacing of the input values (default: evaluation_interval)
series = [{ metric = "cpu_percent", host = "web1", values = "20x5 95x30 20x10" },
          { series = 'cpu_percent{host="web2", cpu="0"}', values = "0+1x10 _x3 stale" }]

[[tests.alerts]]
at = "5m"
rule = "cpu_saturation"
expected = [{ labels = { host = "web1" }, state = "firing", summary = "CPU on web1 at 95%" }]

[[tests.health]]
at = "5m"
expected = [{ component = "writer", status = "ok" }]
```
Values use promtool's notation (``notation.py``); ``stale`` writes a stale marker. At each
``at`` the rule's pending and firing alerts must be exactly the expected ones: labels compared
without ``alertname`` (and ``severity`` unless given), ``value`` when given, ``annotations``
exactly when given (or ``summary`` / ``description`` alone). A failure shows both sides and a diff.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.rules.backtest import Replay
from monitorkit.rules.errors import RuleEvalError, RuleTestError
from monitorkit.rules.expectations import Expected, compare, expected_from_toml
from monitorkit.rules.loader import Rule, default_rules_dir, load_rules
from monitorkit.rules.notation import STALE, expand_values
from monitorkit.rules.promtool_tests import read_promtool_file
from monitorkit.rules.runner import evaluate_rule
from monitorkit.rules.schema import SCHEMA as RULES_SCHEMA
from monitorkit.rules.testcases import EPOCH, Case, Check, SeriesSpec, duration, series_spec
from monitorkit.store.migrations import migrate
from monitorkit.store.schema import SCHEMA as STORE_SCHEMA

__all__ = ["RuleTestFailure", "RuleTestReport", "expand_values", "load_series", "run_rule_tests"]


class RuleTestFailure(NamedTuple):
    """One expectation that did not hold."""

    test: str
    at: str
    rule: str
    message: str


class RuleTestReport(NamedTuple):
    """How a test file went; ``skipped`` names the parts of a promtool file that do not map to monitorkit."""

    tests: int
    checks: int
    failures: list[RuleTestFailure]
    skipped: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Tell whether every check passed."""
        return not self.failures


def load_series(con: duckdb.DuckDBPyConnection, series: Iterable[SeriesSpec | Mapping[str, Any]], start: datetime,
                interval: timedelta) -> None:
    """Write test series into a fresh database: series, samples_raw and stale_markers."""
    times: list[datetime] = []
    ids: list[int] = []
    values: list[float] = []
    stale: list[tuple[datetime, int]] = []
    for sid, spec in enumerate(series, start=1):
        if not isinstance(spec, SeriesSpec):
            spec = series_spec(spec, "test")
        key = json.dumps([spec.host, spec.name, sorted(spec.labels.items())])
        con.execute("INSERT INTO series VALUES (?, ?, ?, MAP(?, ?), ?, ?)",
                    [sid, spec.host, spec.name, list(spec.labels), list(spec.labels.values()), key, start])
        for i, v in enumerate(spec.values):
            if v == STALE:
                stale.append((start + interval * i, sid))
            elif v is not None:
                times.append(start + interval * i)
                ids.append(sid)
                values.append(float(v))
    table = pa.table({"time": pa.array(times, pa.timestamp("us", tz="UTC")), "series_id": pa.array(ids, pa.int32()),
                      "value": pa.array(values, pa.float64())})
    con.register("_mk_test", table)
    con.execute("INSERT INTO samples_raw SELECT * FROM _mk_test")
    con.unregister("_mk_test")
    if stale:
        markers = pa.table({"time": pa.array([t for t, _ in stale], pa.timestamp("us", tz="UTC")),
                            "series_id": pa.array([i for _, i in stale], pa.int32())})
        con.register("_mk_stale", markers)
        con.execute("INSERT INTO stale_markers SELECT * FROM _mk_stale")
        con.unregister("_mk_stale")


def _case_from_toml(n: int, test: Mapping[str, Any], eval_every: timedelta) -> Case:
    name = str(test.get("name", f"test {n + 1}"))
    interval = duration(test.get("interval", eval_every), f"{name}: interval")
    series = [series_spec(item, "test") for item in test.get("series", [])]
    checks: dict[timedelta, list[Check]] = {}
    for kind in ("alerts", "health"):
        for item in test.get(kind, []):
            offset = duration(item.get("at", "0s"), f"{name}: at")
            where = f"{name} at {item.get('at')}"
            if kind == "alerts":
                if "rule" not in item:
                    raise RuleTestError(f"{where}: [[tests.alerts]] needs rule = \"name\"")
                check = Check("alerts", str(item["rule"]), expected_from_toml(item.get("expected", []), where))
            else:
                check = Check("health", "health", list(item.get("expected", [])))
            checks.setdefault(offset, []).append(check)
    return Case(name, interval, series, checks)


def run_rule_tests(path: str | Path, *, rule_dirs: Sequence[Path] | None = None) -> RuleTestReport:
    """Run every test of a TOML file, or of a promtool YAML file (``.yml``/``.yaml``); failures say what differed."""
    path = Path(path)
    if path.suffix in (".yml", ".yaml"):
        promtool = read_promtool_file(path)
        rules = _rules(promtool.rule_files or list(rule_dirs or [default_rules_dir()]))
        names = {c.rule: promtool.rule_name(c.rule, rules) for case in promtool.cases
                 for checks in case.checks.values() for c in checks}
        cases = [case._replace(checks={t: [c._replace(rule=names[c.rule]) for c in cs]
                                       for t, cs in case.checks.items()}) for case in promtool.cases]
        return _run(cases, rules, promtool.start, promtool.evaluation_interval, promtool.skipped)
    try:
        spec = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleTestError(f"cannot read rule test file {path}: {exc}") from None
    files = [path.parent / f for f in spec.get("rule_files", [])]
    rules = _rules(files or list(rule_dirs or [default_rules_dir()]))
    eval_every = duration(spec.get("evaluation_interval", "1m"), "evaluation_interval")
    start = datetime.fromisoformat(spec["start"]) if spec.get("start") else EPOCH
    cases = [_case_from_toml(n, test, eval_every) for n, test in enumerate(spec.get("tests", []))]
    return _run(cases, rules, start, eval_every, ())


def _rules(dirs: Sequence[Path]) -> dict[str, Rule]:
    loaded = load_rules(dirs)
    if loaded.broken:
        raise RuleTestError("rule files do not load: " + "; ".join(e for _, e in loaded.broken.values()))
    return loaded.rules


def _run(cases: Sequence[Case], rules: Mapping[str, Rule], start: datetime, eval_every: timedelta,
         skipped: tuple[str, ...]) -> RuleTestReport:
    failures: list[RuleTestFailure] = []
    checks = 0
    for case in cases:
        f, c = run_case(case, rules, start, eval_every)
        failures.extend(f)
        checks += c
    return RuleTestReport(len(cases), checks, failures, skipped)


def run_case(case: Case, rules: Mapping[str, Rule], start: datetime,
             eval_every: timedelta) -> tuple[list[RuleTestFailure], int]:
    """Load one case's series into a fresh database, evaluate every ``eval_every`` and run its checks."""
    for offset in case.checks:
        if offset % eval_every:
            raise RuleTestError(f"{case.name}: at = {offset} is not a multiple of evaluation_interval {eval_every}")
    needed = {c.rule for checks in case.checks.values() for c in checks if c.kind == "alerts"}
    unknown = needed - set(rules)
    if unknown:
        raise RuleTestError(f"{case.name}: unknown rule(s) {sorted(unknown)}; loaded: {sorted(rules)}")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        migrate(con, (STORE_SCHEMA, EXECUTIONS_SCHEMA, RULES_SCHEMA))
        load_series(con, case.series, start, case.interval)
        replays = {r: Replay(rules[r]) for r in needed}
        failures: list[RuleTestFailure] = []
        count = 0
        last = max(case.checks, default=timedelta(0))
        step = timedelta(0)
        while step <= last:
            at = start + step
            for rule, replay in replays.items():
                try:
                    replay.step(con, at)
                except RuleEvalError as exc:
                    failures.append(RuleTestFailure(case.name, str(step), rule, f"rule errored: {exc}"))
            for check in case.checks.get(step, []):
                count += 1
                if check.kind == "alerts":
                    problem = compare(replays[check.rule].active(), [e for e in check.expected
                                                                     if isinstance(e, Expected)], check.dialect)
                else:
                    problem = _check_health(con, rules, at, check.expected)
                if problem:
                    failures.append(RuleTestFailure(case.name, str(step), check.rule, problem))
            step += eval_every
        return failures, count
    finally:
        con.close()


def _check_health(con: duckdb.DuckDBPyConnection, rules: Mapping[str, Rule], at: datetime,
                  expected: Sequence[Mapping[str, Any]]) -> str | None:
    rows: dict[str, tuple[str, str]] = {}
    for rule in rules.values():
        if rule.type != "health":
            continue
        try:
            for row in evaluate_rule(con, rule, at).health:
                rows[row.component] = (row.status, row.reason)
        except RuleEvalError as exc:
            return f"health check {rule.name} errored: {exc}"
    problems = []
    for e in expected:
        got = rows.get(str(e.get("component")))
        if got is None:
            problems.append(f"component {e.get('component')!r} not reported (have {sorted(rows)})")
        elif got[0] != e.get("status", "ok") or ("reason" in e and got[1] != e["reason"]):
            problems.append(f"component {e.get('component')!r} is {got[0]} ({got[1]}), expected {e.get('status', 'ok')}"
                            + (f" ({e['reason']})" if "reason" in e else ""))
    return "; ".join(problems) or None
