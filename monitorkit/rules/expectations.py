"""What a rule test expects of the alerts at one evaluation, and the diff when they differ.

Two dialects read the same way: monitorkit's TOML (``labels`` without ``alertname``, and
without ``severity`` unless given; ``state`` pending or firing; ``value``; ``annotations``
compared exactly when given, or ``summary`` / ``description`` alone) and promtool's
``exp_alerts`` (firing alerts only; ``exp_labels`` every label but ``alertname``,
``exp_annotations`` exactly, missing meaning none), as ``promtool test rules`` compares them.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol

from monitorkit.rules.errors import RuleTestError

Dialect = Literal["toml", "promtool"]
EXPECTED_KEYS = frozenset({"labels", "state", "value", "annotations", "summary", "description"})
STATES = ("pending", "firing")


class Alerting(Protocol):
    """What an alert instance shows a test: labels, state, value, annotations."""

    labels: dict[str, str]
    value: float | None
    annotations: dict[str, str]

    @property
    def state(self) -> str: ...


class Expected(NamedTuple):
    """One expected alert: labels (as compared), state, and optionally its value and annotations."""

    labels: dict[str, str]
    state: str = "firing"
    value: float | None = None
    annotations: dict[str, str] | None = None  # None: not compared
    some_annotations: Mapping[str, str] = MappingProxyType({})  # summary = "..." alone: only these keys compared


def _strings(table: Any, where: str) -> dict[str, str]:
    if not isinstance(table, Mapping):
        raise RuleTestError(f"{where} must be a table of strings, e.g. {{ host = \"web1\" }}; got {table!r}")
    return {str(k): str(v) for k, v in table.items()}


def expected_from_toml(items: Iterable[Any], where: str) -> list[Expected]:
    """Read TOML ``expected = [...]`` entries; an unknown key is an error (a typo must not pass silently)."""
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise RuleTestError(f"{where}: each expected alert is a table, got {item!r}")
        unknown = set(item) - EXPECTED_KEYS
        if unknown:
            raise RuleTestError(f"{where}: unknown key(s) {sorted(unknown)} in an expected alert; use "
                                f"{', '.join(sorted(EXPECTED_KEYS))}")
        state = str(item.get("state", "firing"))
        if state not in STATES:
            raise RuleTestError(f"{where}: state must be pending or firing, got {state!r}")
        value = item.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise RuleTestError(f"{where}: value must be a number (inf and nan included), got {value!r}")
        annotations = _strings(item["annotations"], f"{where}: annotations") if "annotations" in item else None
        some = {k: str(item[k]) for k in ("summary", "description") if k in item}
        out.append(Expected(_strings(item.get("labels", {}), f"{where}: labels"), state,
                            None if value is None else float(value), annotations, some))
    return out


def expected_from_promtool(items: Iterable[Any], where: str) -> list[Expected]:
    """Read promtool ``exp_alerts`` entries (``exp_labels``, ``exp_annotations``): firing, annotations exact."""
    out = []
    for item in items or []:
        if not isinstance(item, Mapping):
            raise RuleTestError(f"{where}: each of exp_alerts is a map, got {item!r}")
        labels = _strings(item.get("exp_labels") or {}, f"{where}: exp_labels")
        annotations = _strings(item.get("exp_annotations") or {}, f"{where}: exp_annotations")
        out.append(Expected(labels, "firing", None, annotations))
    return out


def _shown(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _same_value(want: float, got: float | None) -> bool:
    if got is None:
        return False
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return want == got or abs(want - got) < 1e-9 * max(1.0, abs(want))


class _Seen(NamedTuple):
    labels: dict[str, str]
    state: str
    value: float | None
    annotations: dict[str, str]


def _as_seen(alert: Alerting, expected: Expected | None, dialect: Dialect) -> _Seen:
    """Return what of ``alert`` the comparison looks at, given what the matching expectation asks for."""
    keep_severity = dialect == "promtool" or (expected is not None and "severity" in expected.labels)
    labels = {k: v for k, v in alert.labels.items() if k != "alertname" and (keep_severity or k != "severity")}
    if expected is None or expected.annotations is not None:
        annotations = dict(alert.annotations)
    else:
        annotations = {k: alert.annotations.get(k, "") for k in expected.some_annotations}
    value = alert.value if expected is None or expected.value is not None else None
    return _Seen(labels, alert.state, value, annotations)


def _line(seen: _Seen) -> str:
    text = f"{seen.state} {_shown(seen.labels)}"
    if seen.annotations:
        text += f" annotations {_shown(seen.annotations)}"
    if seen.value is not None:
        text += f" value {seen.value!r}"
    return text


def _matches(alert: Alerting, want: Expected, dialect: Dialect) -> bool:
    seen = _as_seen(alert, want, dialect)
    if seen.labels != want.labels or seen.state != want.state:
        return False
    if want.value is not None and not _same_value(want.value, alert.value):
        return False
    if want.annotations is not None and seen.annotations != want.annotations:
        return False
    return all(alert.annotations.get(k, "") == v for k, v in want.some_annotations.items())


def compare(got: Sequence[Alerting], expected: Sequence[Expected], dialect: Dialect = "toml") -> str | None:
    """Return None when ``got`` (the pending and firing alerts) is exactly ``expected``, else the exp/got diff."""
    if dialect == "promtool":
        got = [a for a in got if a.state == "firing"]  # promtool's exp_alerts lists firing alerts only
    left = list(got)
    pairs: list[tuple[Expected, Alerting | None]] = []
    for want in expected:
        hit = next((a for a in left if _matches(a, want, dialect)), None)
        if hit is not None:
            left.remove(hit)
        pairs.append((want, hit))
    if all(hit is not None for _, hit in pairs) and not left:
        return None
    exp_lines = sorted(_line(_Seen(w.labels, w.state, w.value, w.annotations if w.annotations is not None
                                   else dict(w.some_annotations))) for w, _ in pairs)
    # Show each unmatched alert as the expectation it comes closest to would see it.
    got_lines = sorted([_line(_as_seen(hit, want, dialect)) for want, hit in pairs if hit is not None]
                       + [_line(_as_seen(a, _closest(a, expected), dialect)) for a in left])
    diff = [d for d in difflib.unified_diff(exp_lines, got_lines, "expected", "got", lineterm="", n=0)
            if not d.startswith("@@")]
    return "\n".join(["exp: " + ("; ".join(exp_lines) or "none"), "got: " + ("; ".join(got_lines) or "none"), *diff])


def _closest(alert: Alerting, expected: Sequence[Expected]) -> Expected | None:
    """Return the expectation with the same labels (so the diff shows only what differs), if any."""
    return next((w for w in expected if {k: v for k, v in alert.labels.items() if k in w.labels} == w.labels), None)
