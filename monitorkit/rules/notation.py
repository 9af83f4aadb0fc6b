"""promtool's series notation: ``metric{label="v"}`` names and ``'0 1+1x10 _x3 stale'`` values.

``expand_values`` follows Prometheus's unit-test docs: ``a+bxn`` is ``a, a+b, ..., a+n*b``
(n+1 values), ``a-bxn`` counts down, ``axn`` repeats ``a`` n+1 times, ``_`` is a missing
sample, ``_xn`` n missing samples and ``stale`` a staleness marker (the series ends there).
Numbers may be ``Inf``, ``-Inf`` and ``NaN``.

```python
expand_values("1 _x2 3+1x2 stale")  # [1.0, None, None, 3.0, 4.0, 5.0, 'stale']
parse_series('cpu_percent{host="web1", cpu="0"}')  # ('cpu_percent', {'host': 'web1', 'cpu': '0'})
```
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Literal

from monitorkit.rules.errors import RuleTestError

STALE: Final = "stale"
Point = float | None | Literal["stale"]
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|inf|NaN|nan)"
_EXPAND_RE = re.compile(rf"^({_NUMBER})(?:([+-])({_NUMBER}))?x(\d+)$")
_NAME_RE = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*(?:\{(.*)\})?\s*$", re.DOTALL)
_LABEL_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
MAX_POINTS = 1_000_000  # of one series: a typo such as 1x1e9 must not fill memory


def _number(text: str) -> float:
    return float(text.replace("Inf", "inf").replace("NaN", "nan"))


def expand_values(spec: str | Sequence[float | str | None]) -> list[Point]:
    """Expand promtool notation: ``"1 2 _ 5+5x2 7x1 _x2 stale"`` → ``[1, 2, None, 5, 10, 15, 7, 7, None, None, 'stale']``."""
    if not isinstance(spec, str):
        return [None if v is None else STALE if v == STALE else float(v) for v in spec]
    out: list[Point] = []
    for token in spec.split():
        if token == "_":
            out.append(None)
        elif token == STALE:
            out.append(STALE)
        elif token.startswith("_x") and token[2:].isdigit():
            out.extend([None] * int(token[2:]))
        elif (match := _EXPAND_RE.match(token)) is not None:
            base, sign, delta, times = match.groups()
            step = _number(delta or "0") * (-1 if sign == "-" else 1)
            out.extend(_number(base) + step * i for i in range(int(times) + 1))
        else:
            try:
                out.append(_number(token))
            except ValueError:
                raise RuleTestError(f"cannot read value {token!r}; write numbers, '_', 'stale', a+bxN, a-bxN, axN "
                                    "or _xN") from None
        if len(out) > MAX_POINTS:
            raise RuleTestError(f"a series expands to more than {MAX_POINTS} values; write a shorter one")
    return out


def parse_series(text: str) -> tuple[str, dict[str, str]]:
    """Parse ``name{a="1", b="2"}`` (or ``{__name__="name", ...}``) into the metric name and its labels."""
    match = _NAME_RE.match(text)
    if match is None:
        raise RuleTestError(f"cannot read series {text!r}; write name{{label=\"value\", ...}}")
    name, body = match.group(1) or "", match.group(2) or ""
    labels: dict[str, str] = {}
    pos = 0
    while body[pos:].strip():
        item = _LABEL_RE.match(body, pos)
        if item is None:
            raise RuleTestError(f"cannot read the labels of series {text!r} at {body[pos:]!r}")
        labels[item.group(1)] = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)),
                                       item.group(2))
        pos = item.end()
    name = labels.pop("__name__", name)
    if not name:
        raise RuleTestError(f"series {text!r} has no metric name")
    return name, labels
