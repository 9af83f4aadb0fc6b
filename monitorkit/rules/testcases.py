"""The cases of rule unit tests, whichever file they come from: input series, checks by offset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from monitorkit.config import parse_duration
from monitorkit.errors import ConfigError
from monitorkit.rules.errors import RuleTestError
from monitorkit.rules.expectations import Dialect
from monitorkit.rules.notation import Point, expand_values, parse_series

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # where test series start unless the file says otherwise


class SeriesSpec(NamedTuple):
    """One input series: where it comes from, its labels and its values (one per interval)."""

    host: str
    name: str
    labels: dict[str, str]
    values: list[Point]


class Check(NamedTuple):
    """One thing to check at one evaluation: the alerts of a rule, or health components."""

    kind: Literal["alerts", "health"]
    rule: str
    expected: Sequence[Any]  # Expected for alerts, {component, status, reason} tables for health
    dialect: Dialect = "toml"


class Case(NamedTuple):
    """One test: input series, their spacing and the checks by offset from the start."""

    name: str
    interval: timedelta
    series: list[SeriesSpec]
    checks: dict[timedelta, list[Check]]


def duration(value: Any, where: str) -> timedelta:
    """Parse a duration of a test file, as a RuleTestError that names where it is."""
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise RuleTestError(f"{where}: {exc}") from None


def series_spec(item: Mapping[str, Any], default_host: str) -> SeriesSpec:
    """Read ``{ metric, host, labels, values }`` or ``{ series = 'name{...}', values }``; a ``host`` label is the host."""
    labels = {str(k): str(v) for k, v in dict(item.get("labels", {})).items()}
    if "series" in item:
        name, more = parse_series(str(item["series"]))
        labels.update(more)
    else:
        name = str(item.get("metric") or item.get("name") or "")
    if not name:
        raise RuleTestError("every input series needs metric = \"name\" or series = 'name{label=\"value\"}'")
    host = str(item["host"]) if "host" in item else labels.pop("host", default_host)
    labels.pop("host", None)
    return SeriesSpec(host, name, labels, expand_values(item.get("values", "")))


