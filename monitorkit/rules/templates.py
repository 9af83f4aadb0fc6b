"""Render annotation and label templates: ``{{ column }}``, and Prometheus's ``{{ $value }}`` and ``{{ $labels.name }}``.

``{{ column }}`` is any column of the rule's row (``_`` columns included), formatted for
people: at most two decimals. ``{{ $value }}`` and ``{{ $labels.name }}`` (also ``{{ .Value }}``,
``{{ .Labels.name }}``) render exactly as Prometheus renders them, so annotations copied from a
Prometheus rule read the same: ``$value`` is Go's ``%v`` of a float64 (``95.5``, ``1e+06``,
``+Inf``, ``NaN``) and ``$labels`` are the row's labels before the rule's own ``labels:``.

```python
render("{{ $labels.host }} at {{ $value }}", {"host": "web1", "value": 1e6}, {"host": "web1"})  # 'web1 at 1e+06'
```
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TEMPLATE_RE = re.compile(
    r"\{\{-?\s*(?:(?P<value>\$value|\.Value)|(?:\$labels|\.Labels)\.(?P<label>" + _NAME + r")|(?P<column>" + _NAME
    + r"))\s*-?\}\}"
)


def non_finite(value: float) -> str | None:
    """Return Prometheus's text of a non-finite float (``+Inf``, ``-Inf``, ``NaN``), or None if it is finite."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def go_float(value: float) -> str:
    """Format a float as Go's ``%v`` does (strconv 'g', shortest): ``95.5``, ``1e+06``, ``1.5e-05``, ``+Inf``."""
    special = non_finite(value)
    if special is not None:
        return special
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    parts = Decimal(repr(abs(value))).as_tuple()
    full = "".join(map(str, parts.digits))
    digits = full.rstrip("0") or "0"
    exponent = int(parts.exponent) + len(full) - len(digits)
    point = len(digits) + exponent  # the decimal point sits after this many digits
    minus = "-" if value < 0 else ""
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:  # Go uses %e here when the precision is the shortest (eprec = 6)
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{minus}{digits}{'0' * (point - len(digits))}"
    return f"{minus}{digits[:point]}.{digits[point:]}"


def format_value(value: Any) -> str:
    """Format a value for people: at most two decimals, no trailing zeros (95.0 → 95, 99.90 → 99.9, inf → +Inf)."""
    if isinstance(value, float):
        special = non_finite(value)
        if special is not None:
            return special
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return "" if value is None else str(value)


def render(template: str, row: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """Expand ``template`` for one row: ``{{ column }}`` from ``row``, ``$value`` and ``$labels.x`` as Prometheus does.

    Unknown columns and labels render empty (Prometheus's ``missingkey=zero``).
    """
    if "{{" not in template:
        return template
    shown = row if labels is None else labels

    def one(match: re.Match[str]) -> str:
        if match.group("value") is not None:
            value = row.get("value")
            return go_float(float(value)) if isinstance(value, (int, float)) else ""
        if match.group("label") is not None:
            return str(shown.get(match.group("label")) or "")
        return format_value(row.get(match.group("column")))

    return _TEMPLATE_RE.sub(one, template)


def label_value(value: Any) -> str:
    """Return a column value as a label string (maps and lists as their text form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return format_value(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)
