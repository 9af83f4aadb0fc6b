"""Unit tests for rules, promtool style, written in TOML: input series, evaluation times, expected alerts.

```toml
rule_files = ["cpu.sql"]            # relative to this file; default: the shipped rules
evaluation_interval = "1m"

[[tests]]
name = "cpu saturation fires after 2 minutes"
interval = "10s"                    # spacing of the input values (default: evaluation_interval)

[[tests.series]]
metric = "cpu_percent"
host = "web1"
labels = {}
values = "20x5 95x30 20x10"         # a+bxN expands to a, a+b, ... (N+1 values); "_" is a gap

[[tests.alerts]]
at = "5m"
rule = "cpu_saturation"
expected = [{ labels = { host = "web1" }, state = "firing" }]

[[tests.health]]
at = "5m"
expected = [{ component = "writer", status = "ok" }]
```
Expected labels are compared exactly, ignoring ``alertname`` and (unless given) ``severity``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from monitorkit.config import parse_duration
from monitorkit.errors import ConfigError
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.rules.backtest import Replay
from monitorkit.rules.errors import RuleEvalError, RuleTestError
from monitorkit.rules.loader import Rule, default_rules_dir, load_rules
from monitorkit.rules.runner import evaluate_rule
from monitorkit.rules.schema import SCHEMA as RULES_SCHEMA
from monitorkit.store.migrations import migrate
from monitorkit.store.schema import SCHEMA as STORE_SCHEMA

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOKEN_RE = re.compile(r"^(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?:([+-])(\d+(?:\.\d+)?(?:e[+-]?\d+)?))?x(\d+)$")


class RuleTestFailure(NamedTuple):
    """One expectation that did not hold."""

    test: str
    at: str
    rule: str
    message: str


class RuleTestReport(NamedTuple):
    """How a test file went."""

    tests: int
    checks: int
    failures: list[RuleTestFailure]

    @property
    def ok(self) -> bool:
        """Tell whether every check passed."""
        return not self.failures


def expand_values(spec: str | Sequence[float | None]) -> list[float | None]:
    """Expand promtool notation: ``"1 2 _ 5+5x2 7x1"`` → ``[1, 2, None, 5, 10, 15, 7, 7]``."""
    if not isinstance(spec, str):
        return [None if v is None else float(v) for v in spec]
    out: list[float | None] = []
    for token in spec.split():
        if token == "_":
            out.append(None)
            continue
        match = _TOKEN_RE.match(token)
        if match:
            base, sign, delta, times = match.groups()
            step = float(delta or 0) * (-1 if sign == "-" else 1)
            out.extend(float(base) + step * i for i in range(int(times) + 1))
            continue
        try:
            out.append(float(token))
        except ValueError:
            raise RuleTestError(f"cannot read value {token!r}; write numbers, '_' or a+bxN / axN") from None
    return out


def _duration(value: Any, where: str) -> timedelta:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise RuleTestError(f"{where}: {exc}") from None


def load_series(con: duckdb.DuckDBPyConnection, series: Iterable[Mapping[str, Any]], start: datetime,
                interval: timedelta) -> None:
    """Write test series into a fresh database (series and samples_raw)."""
    times: list[datetime] = []
    ids: list[int] = []
    values: list[float] = []
    for sid, spec in enumerate(series, start=1):
        metric, host = spec.get("metric") or spec.get("name"), str(spec.get("host", "test"))
        if not metric:
            raise RuleTestError("every [[tests.series]] needs metric = \"name\"")
        labels = {str(k): str(v) for k, v in dict(spec.get("labels", {})).items()}
        key = json.dumps([host, metric, sorted(labels.items())])
        con.execute("INSERT INTO series VALUES (?, ?, ?, MAP(?, ?), ?, ?)",
                    [sid, host, metric, list(labels), list(labels.values()), key, start])
        for i, v in enumerate(expand_values(spec.get("values", ""))):
            if v is not None:
                times.append(start + interval * i)
                ids.append(sid)
                values.append(v)
    table = pa.table({"time": pa.array(times, pa.timestamp("us", tz="UTC")), "series_id": pa.array(ids, pa.int32()),
                      "value": pa.array(values, pa.float64())})
    con.register("_mk_test", table)
    con.execute("INSERT INTO samples_raw SELECT * FROM _mk_test")
    con.unregister("_mk_test")


def _compare_alerts(replay: Replay, expected: Sequence[Mapping[str, Any]]) -> str | None:
    def norm(labels: Mapping[str, str], keep_severity: bool) -> dict[str, str]:
        return {k: v for k, v in labels.items() if k != "alertname" and (keep_severity or k != "severity")}

    got = [(t.labels, t.phase.state, t.value) for t in replay.active()]
    want = [({str(k): str(v) for k, v in dict(e.get("labels", {})).items()}, str(e.get("state", "firing")),
             e.get("value")) for e in expected]
    unmatched = list(got)
    missing = []
    for labels, state, value in want:
        hit = next((g for g in unmatched if norm(g[0], "severity" in labels) == labels and g[1] == state
                    and (value is None or (g[2] is not None and abs(g[2] - float(value)) < 1e-9))), None)
        if hit is None:
            missing.append(f"{state} {labels}" + (f" value {value}" if value is not None else ""))
        else:
            unmatched.remove(hit)
    if not missing and not unmatched:
        return None
    parts = []
    if missing:
        parts.append("expected but missing: " + "; ".join(missing))
    if unmatched:
        parts.append("got but not expected: " + "; ".join(f"{s} {norm(lab, False)} value {v}" for lab, s, v in unmatched))
    return " | ".join(parts)


def run_rule_tests(path: str | Path, *, rule_dirs: Sequence[Path] | None = None) -> RuleTestReport:
    """Run every test of a TOML file and return the report (failures say what differed)."""
    path = Path(path)
    try:
        spec = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RuleTestError(f"cannot read rule test file {path}: {exc}") from None
    files = [path.parent / f for f in spec.get("rule_files", [])]
    dirs = files or list(rule_dirs or [default_rules_dir()])
    loaded = load_rules(dirs)
    if loaded.broken:
        raise RuleTestError("rule files do not load: " + "; ".join(e for _, e in loaded.broken.values()))
    rules: dict[str, Rule] = loaded.rules
    eval_every = _duration(spec.get("evaluation_interval", "1m"), "evaluation_interval")
    start = datetime.fromisoformat(spec["start"]) if spec.get("start") else EPOCH
    failures: list[RuleTestFailure] = []
    checks = 0
    tests = spec.get("tests", [])
    for n, test in enumerate(tests):
        name = str(test.get("name", f"test {n + 1}"))
        f, c = _run_one(name, test, rules, start, eval_every)
        failures.extend(f)
        checks += c
    return RuleTestReport(len(tests), checks, failures)


def _run_one(name: str, test: Mapping[str, Any], rules: Mapping[str, Rule], start: datetime,
             eval_every: timedelta) -> tuple[list[RuleTestFailure], int]:
    interval = _duration(test.get("interval", eval_every), f"{name}: interval")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        migrate(con, (STORE_SCHEMA, EXECUTIONS_SCHEMA, RULES_SCHEMA))
        load_series(con, test.get("series", []), start, interval)
        checks: dict[timedelta, list[tuple[str, Mapping[str, Any]]]] = {}
        for kind in ("alerts", "health"):
            for item in test.get(kind, []):
                offset = _duration(item.get("at", "0s"), f"{name}: at")
                if offset % eval_every:
                    raise RuleTestError(f"{name}: at = {item.get('at')} is not a multiple of evaluation_interval")
                checks.setdefault(offset, []).append((kind, item))
        needed = {str(item["rule"]) for items in checks.values() for kind, item in items if kind == "alerts"}
        unknown = needed - set(rules)
        if unknown:
            raise RuleTestError(f"{name}: unknown rule(s) {sorted(unknown)}; loaded: {sorted(rules)}")
        replays = {r: Replay(rules[r]) for r in needed}
        failures: list[RuleTestFailure] = []
        count = 0
        last = max(checks, default=timedelta(0))
        step = timedelta(0)
        while step <= last:
            at = start + step
            for rule, replay in replays.items():
                try:
                    replay.step(con, at)
                except RuleEvalError as exc:
                    failures.append(RuleTestFailure(name, str(step), rule, f"rule errored: {exc}"))
            for kind, item in checks.get(step, []):
                count += 1
                problem = (_compare_alerts(replays[str(item["rule"])], item.get("expected", [])) if kind == "alerts"
                           else _check_health(con, rules, at, item.get("expected", [])))
                if problem:
                    failures.append(RuleTestFailure(name, str(step), str(item.get("rule", "health")), problem))
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
