"""The latest samples in Prometheus text exposition format (version 0.0.4), for ``/metrics``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from monitorkit.dashboard.records import SeriesInfo

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Extra(NamedTuple):
    """A sample the server adds about itself: ``Extra("monitorkit_dashboard_sessions", "gauge", {}, 3)``."""

    name: str
    kind: str
    labels: Mapping[str, str]
    value: float


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items())) + "}"


def _value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def family_of(info: SeriesInfo, histograms: set[str]) -> tuple[str, str]:
    """Return (family name, type) of a series: histogram parts share their base name."""
    name = info.name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)], "histogram"
    return name, "counter" if name.endswith("_total") else "gauge"


def render(series: Mapping[int, SeriesInfo], latest: Mapping[int, tuple[float, float]], extra: Iterable[Extra] = ()) -> str:
    """Return the text page: one family per metric (``# TYPE`` first), the host as a label, times in ms."""
    histograms = {i.name[:-7] for i in series.values() if i.name.endswith("_bucket") and "le" in i.labels}
    families: dict[str, tuple[str, list[str]]] = {}
    for sid, info in sorted(series.items(), key=lambda kv: (kv[1].name, sorted(kv[1].labels.items()))):
        if sid not in latest:
            continue
        t, v = latest[sid]
        family, kind = family_of(info, histograms)
        lines = families.setdefault(family, (kind, []))[1]
        lines.append(f"{info.name}{_labels({**info.labels, 'host': info.host})} {_value(v)} {int(t)}")
    for e in extra:
        families.setdefault(e.name, (e.kind, []))[1].append(f"{e.name}{_labels(e.labels)} {_value(e.value)}")
    out = []
    for family in sorted(families):
        kind, lines = families[family]
        out.append(f"# TYPE {family} {kind}")
        out.extend(lines)
    return "\n".join(out) + "\n"
