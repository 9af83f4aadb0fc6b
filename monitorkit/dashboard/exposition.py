"""The latest samples for ``/metrics``: Prometheus text (0.0.4), or OpenMetrics 1.0 when asked, clean for promtool.

Every family has ``# HELP`` and ``# TYPE`` from the metric catalog. Names follow Prometheus's base
units on this page only (stored series keep their names, so SQL, rules and dashboards are unchanged):
a gauge in percent is exposed as ``<name>_ratio`` (value / 100), ``net_speed_mbps`` as
``net_speed_bytes`` (bytes per second), and gauges ending in ``_count`` under the aliases of
``ALIASES`` (``cpu_count`` is ``cpus``), since ``_count`` belongs to histograms and summaries.
Series that came in through scraping, remote_write or OTLP (they carry ``job`` and ``instance``)
are not re-exposed: Prometheus should scrape those exporters itself.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from monitorkit.dashboard.records import SeriesInfo

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Gauges whose stored name ends in _count, and the name /metrics gives them.
ALIASES = {"cpu_count": "cpus", "processes_count": "processes_all"}
# Units the catalog uses that are not Prometheus base units: (name suffix, base suffix, factor).
BASE_UNITS = {"percent": ("_percent", "_ratio", 0.01), "megabits per second": ("_mbps", "_bytes", 125_000.0)}
EXTRA_HELP = {
    "monitorkit_dashboard_sessions": "Dashboard sessions open now.",
    "monitorkit_dashboard_views": "Live dashboard views open now.",
    "monitorkit_dashboard_polls_total": "Store polls the shared dashboard feed made.",
    "monitorkit_dashboard_ticks_total": "Ticks that triggered a dashboard feed poll.",
    "monitorkit_dashboard_store_queries_total": "Queries the dashboard ran on the store.",
}


class Extra(NamedTuple):
    """A sample the server adds about itself: ``Extra("monitorkit_dashboard_sessions", "gauge", {}, 3)``."""

    name: str
    kind: str
    labels: Mapping[str, str]
    value: float
    help: str = ""


class Exposed(NamedTuple):
    """How a stored metric appears on the page: name, family, type, help and the factor applied to values."""

    name: str
    family: str
    type: str
    help: str
    factor: float = 1.0


@functools.cache
def _catalog() -> dict[str, tuple[str, str, str]]:
    """Return name -> (kind, unit, help) of every catalogued metric (imported once: it loads the collectors)."""
    from monitorkit.catalog import all_metrics

    return {m.name: (m.kind, m.unit, m.help) for m in all_metrics()}


def wants_openmetrics(accept: str) -> bool:
    """Tell whether an Accept header prefers OpenMetrics (as Prometheus sends it) over the text format."""
    best, best_q = "", -1.0
    for part in accept.split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media in ("application/openmetrics-text", "text/plain") and q > best_q:
            best, best_q = media, q
    return best == "application/openmetrics-text"


def exposed(info: SeriesInfo, histograms: set[str], summaries: set[str]) -> Exposed:
    """Return how a series appears: catalog help and type, base-unit name, its histogram or summary family."""
    name = info.name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and (base in histograms or base in summaries):
            kind = "histogram" if base in histograms else "summary"
            return Exposed(name, base, kind, _help(base))
    if name in summaries:
        return Exposed(name, name, "summary", _help(name))
    known = _catalog().get(name)
    if known is None:
        kind = "counter" if name.endswith("_total") else ("gauge" if name.startswith("monitorkit_") else "untyped")
        return Exposed(name, name, kind, _help(name))
    kind, unit, text = known
    new, factor = ALIASES.get(name, name), 1.0
    if unit in BASE_UNITS and name.endswith(BASE_UNITS[unit][0]):
        old_suffix, new_suffix, factor = BASE_UNITS[unit]
        new = name[: -len(old_suffix)] + new_suffix
    if factor != 1.0:
        text = f"{text} Here in base units (x{factor:g}); stored as {name}, in {unit}."
    elif new != name:
        text = f"{text} Stored as {name}."
    return Exposed(new, new, kind, text, factor)


def _help(name: str) -> str:
    known = _catalog().get(name)
    return known[2] if known else EXTRA_HELP.get(name, f"{name} as stored by monitorkit (not in its catalog).")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help_text(value: str, openmetrics: bool) -> str:
    text = value.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


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


def _order(how: Exposed, info: SeriesInfo) -> tuple[object, ...]:
    """Sort key within a family: by label set, then buckets by bound (or quantiles), then _count and _sum."""
    bound = info.labels.get("le", info.labels.get("quantile"))
    rest = sorted((k, v) for k, v in info.labels.items() if k not in ("le", "quantile"))
    part = 1 if how.name.endswith("_count") else 2 if how.name.endswith("_sum") else 0
    try:
        number = float(bound) if bound is not None else 0.0
    except ValueError:
        number = math.inf
    return (info.host, rest, part, number, how.name)


def _foreign(info: SeriesInfo) -> bool:
    """Tell whether a series came from another Prometheus-speaking source (scrape, remote_write, OTLP)."""
    # Catalogued names too: `up`, `scrape_*` and node_exporter's series translated to monitorkit's names.
    return "job" in info.labels and "instance" in info.labels


def render(series: Mapping[int, SeriesInfo], latest: Mapping[int, tuple[float, float]], extra: Iterable[Extra] = (),
           *, openmetrics: bool = False) -> str:
    """Return the page: one family per metric with HELP and TYPE, the host as a label, sample times in ms (s in OM)."""
    own = {sid: info for sid, info in series.items() if sid in latest and not _foreign(info)}
    histograms = {i.name[:-7] for i in own.values() if i.name.endswith("_bucket") and "le" in i.labels}
    summaries = {i.name for i in own.values() if "quantile" in i.labels}
    families: dict[str, tuple[str, str, list[tuple[tuple[object, ...], str]]]] = {}
    for sid, info in own.items():
        t, v = latest[sid]
        how = exposed(info, histograms, summaries)
        stamp = f"{t / 1000:.3f}" if openmetrics else str(int(t))
        line = f"{how.name}{_labels({**info.labels, 'host': info.host})} {_value(v * how.factor)} {stamp}"
        families.setdefault(how.family, (how.type, how.help, []))[2].append((_order(how, info), line))
    for e in extra:
        text = e.help or EXTRA_HELP.get(e.name, e.name)
        families.setdefault(e.name, (e.kind, text, []))[2].append(((), f"{e.name}{_labels(e.labels)} {_value(e.value)}"))
    out = []
    for family in sorted(families):
        kind, text, lines = families[family]
        name = family
        if openmetrics:
            kind = "unknown" if kind == "untyped" else kind
            if kind == "counter":
                name = family.removesuffix("_total")  # OpenMetrics names the family without _total
        out.append(f"# HELP {name} {_help_text(text, openmetrics)}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(line for _, line in sorted(lines, key=lambda item: item[0]))
    if openmetrics:
        out.append("# EOF")
    return "\n".join(out) + "\n"
