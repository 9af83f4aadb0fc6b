"""Run a ``promtool test rules`` YAML file against monitorkit's SQL rules, for the parts that map.

What maps: ``evaluation_interval``, each test's ``interval``, ``name`` and ``input_series``
(promtool's series notation, ``stale`` included; a ``host`` label is monitorkit's host), and
``alert_rule_test`` (``eval_time``, ``alertname``, ``exp_alerts`` with ``exp_labels`` and
``exp_annotations``, compared as promtool compares them: the firing alerts, every label but
``alertname``, annotations exactly). ``alertname`` names the monitorkit rule (``HighCpu`` also
finds ``high_cpu``); ``rule_files`` that end in ``.sql`` are loaded, the PromQL ones are not.

What does not map, and is listed in the report's ``skipped``: ``promql_expr_test`` (PromQL),
PromQL ``rule_files``, ``external_labels`` / ``external_url``, ``group_eval_order``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from monitorkit.rules.errors import RuleTestError
from monitorkit.rules.expectations import expected_from_promtool
from monitorkit.rules.loader import Rule
from monitorkit.rules.testcases import EPOCH, Case, Check, series_spec

_PART_RE = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class PromtoolFile(NamedTuple):
    """A promtool test file read for monitorkit: its cases, the SQL rule files it names and what was skipped."""

    rule_files: list[Path]
    evaluation_interval: timedelta
    start: datetime
    cases: list[Case]
    skipped: tuple[str, ...]

    @staticmethod
    def rule_name(alertname: str, rules: Mapping[str, Rule]) -> str:
        """Return the monitorkit rule ``alertname`` stands for: the same name, lower case, or snake_case."""
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", alertname).lower()
        for name in (alertname, alertname.lower(), snake):
            if name in rules:
                return name
        raise RuleTestError(f"alertname {alertname!r} matches no monitorkit rule (tried {alertname}, "
                            f"{alertname.lower()}, {snake}); loaded: {sorted(rules)}")


def prom_duration(value: Any, where: str) -> timedelta:
    """Parse a Prometheus duration (``90s``, ``1h30m``, ``1d``, ``500ms``); a bare number is seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    text = str(value).strip()
    parts = _PART_RE.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise RuleTestError(f"{where}: invalid duration {value!r}; write e.g. 1m, 90s or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def read_promtool_file(path: Path) -> PromtoolFile:
    """Read a promtool unit-test YAML file into monitorkit's test cases."""
    import yaml  # PyYAML: only promtool files need it

    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RuleTestError(f"cannot read promtool test file {path}: {exc}") from None
    if not isinstance(spec, Mapping):
        raise RuleTestError(f"{path}: a promtool test file is a map with rule_files, evaluation_interval and tests")
    skipped: list[str] = []
    files = [str(f) for f in spec.get("rule_files") or []]
    sql = [path.parent / f for f in files if f.endswith(".sql")]
    skipped += [f"rule_files {f} (PromQL: monitorkit runs its SQL rules of the same names)"
                for f in files if not f.endswith(".sql")]
    if spec.get("group_eval_order"):
        skipped.append("group_eval_order (every monitorkit rule is evaluated on its own)")
    eval_every = prom_duration(spec.get("evaluation_interval", "1m"), "evaluation_interval")
    cases = []
    for n, test in enumerate(spec.get("tests") or []):
        name = str(test.get("name") or f"test {n + 1}")
        interval = prom_duration(test.get("interval", eval_every), f"{name}: interval")
        series = [series_spec(item, "") for item in test.get("input_series") or []]
        checks: dict[timedelta, list[Check]] = {}
        for item in test.get("alert_rule_test") or []:
            at = prom_duration(item.get("eval_time", 0), f"{name}: eval_time")
            at -= at % eval_every  # promtool compares with the last evaluation at or before eval_time
            where = f"{name} at {item.get('eval_time')}"
            if "alertname" not in item:
                raise RuleTestError(f"{where}: alert_rule_test needs alertname")
            expected = expected_from_promtool(item.get("exp_alerts") or [], where)
            checks.setdefault(at, []).append(Check("alerts", str(item["alertname"]), expected, "promtool"))
        for item in test.get("promql_expr_test") or []:
            skipped.append(f"{name}: promql_expr_test {item.get('expr')!r} at {item.get('eval_time')} (PromQL)")
        for key in ("external_labels", "external_url"):
            if test.get(key):
                skipped.append(f"{name}: {key} (templates see no external labels or URL)")
        cases.append(Case(name, interval, series, checks))
    return PromtoolFile(sql, eval_every, EPOCH, cases, tuple(skipped))
