"""Property: any page prometheus_client generates parses to the same samples by the fast path and by its parser."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
    SummaryMetricFamily,
    UnknownMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from monitorkit.interop.exposition import PageCache, ParsedSample, parse_fallback, parse_fast

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda n: not n.startswith("_"))
LABEL_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
# Label values with everything that needs escaping or confuses a naive splitter.
VALUES_TEXT = st.text(alphabet=st.sampled_from('ab ,="}{\\\n#é☃\t'), max_size=12)
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64) | st.integers(-10**6, 10**6)
ANY_FLOAT = st.floats(width=64) | FINITE
TIMESTAMPS = st.none() | st.integers(0, 4_000_000_000).map(float) | st.floats(0, 4e9).map(lambda f: round(f, 3))


def key(s: ParsedSample) -> tuple[Any, ...]:
    """Compare NaN as equal to itself; labels as sorted pairs."""
    value = "nan" if math.isnan(s.value) else s.value
    return (s.name, tuple(sorted(s.labels.items())), value, s.timestamp_ms)


def same(page: str, *, openmetrics: bool) -> None:
    fast = parse_fast(page, openmetrics=openmetrics, cache=PageCache())
    slow = parse_fallback(page, openmetrics=openmetrics)
    assert sorted(map(key, fast.samples), key=repr) == sorted(map(key, slow.samples), key=repr), page
    assert fast.fast and not slow.fast


@st.composite
def families(draw: st.DrawFn) -> list[Any]:
    """Draw custom-collector metric families of every type, with labels, timestamps and odd values."""
    out: list[Any] = []
    used: set[str] = set()
    for _ in range(draw(st.integers(1, 5))):
        base = draw(NAMES.filter(lambda n: n not in used))
        used.add(base)
        labels = draw(st.lists(LABEL_NAMES.filter(lambda n: n not in ("le", "quantile")), max_size=3, unique=True))
        kind = draw(st.sampled_from(["counter", "gauge", "histogram", "summary", "info", "stateset",
                                     "gaugehistogram", "unknown"]))
        doc = draw(VALUES_TEXT)
        # OpenMetrics wants a timestamp on every sample of a family or on none.
        stamps = st.none() if draw(st.booleans()) else TIMESTAMPS.filter(lambda t: t is not None)
        rows = draw(st.lists(st.tuples(st.lists(VALUES_TEXT, min_size=len(labels), max_size=len(labels)), stamps),
                             max_size=3, unique_by=lambda r: tuple(r[0])))
        if kind == "counter":
            fam: Any = CounterMetricFamily(base, doc, labels=labels)
            for values, ts in rows:
                fam.add_metric(values, draw(FINITE.map(abs)), timestamp=ts)
        elif kind == "gauge":
            fam = GaugeMetricFamily(base, doc, labels=labels)
            for values, ts in rows:
                fam.add_metric(values, draw(ANY_FLOAT), timestamp=ts)
        elif kind == "unknown":
            fam = UnknownMetricFamily(base, doc, labels=labels)
            for values, ts in rows:
                fam.add_metric(values, draw(ANY_FLOAT), timestamp=ts)
        elif kind in ("histogram", "gaugehistogram"):
            cls = HistogramMetricFamily if kind == "histogram" else GaugeHistogramMetricFamily
            fam = cls(base, doc, labels=labels)
            for values, ts in rows:
                counts = sorted(draw(st.lists(st.integers(0, 1000), min_size=1, max_size=4)))
                bounds = sorted(set(draw(st.lists(FINITE, min_size=len(counts) - 1, max_size=len(counts) - 1))))
                buckets = [(repr(float(b)), c) for b, c in zip(bounds, counts, strict=False)] + [("+Inf", counts[-1])]
                if kind == "histogram":
                    fam.add_metric(values, buckets, sum_value=draw(FINITE.map(abs)), timestamp=ts)
                else:
                    fam.add_metric(values, buckets, gsum_value=draw(FINITE.map(abs)), timestamp=ts)
        elif kind == "summary":
            fam = SummaryMetricFamily(base, doc, labels=labels)
            for values, ts in rows:
                fam.add_metric(values, count_value=draw(st.integers(0, 1000)), sum_value=draw(FINITE.map(abs)),
                               timestamp=ts)
        elif kind == "info":
            fam = InfoMetricFamily(base, doc, labels=labels)
            for values, ts in rows:
                fam.add_metric(values, {"version": draw(VALUES_TEXT)}, timestamp=ts)
        else:
            fam = StateSetMetricFamily(base, doc, labels=labels)
            for values, ts in rows:
                fam.add_metric(values, {"s_" + draw(LABEL_NAMES): draw(st.booleans())}, timestamp=ts)
        out.append(fam)
    return out


class _Fixed:
    def __init__(self, fams: list[Any]) -> None:
        self.fams = fams

    def collect(self) -> list[Any]:
        return self.fams


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(families())
def test_custom_collector_pages_parse_the_same(fams: list[Any]) -> None:
    registry = CollectorRegistry()
    registry.register(_Fixed(fams))
    same(generate_latest(registry).decode(), openmetrics=False)
    same(generate_openmetrics(registry).decode(), openmetrics=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(LABEL_NAMES, VALUES_TEXT, st.floats(0, 1e6)), min_size=1, max_size=6))
def test_instrumented_pages_with_exemplars_parse_the_same(rows: list[tuple[str, str, float]]) -> None:
    registry = CollectorRegistry()
    counter = Counter("requests", "Requests.", ["path"], registry=registry)
    gauge = Gauge("depth", "Depth.", ["path"], registry=registry)
    hist = Histogram("latency_seconds", "Latency.", ["path"], registry=registry)
    summ = Summary("size_bytes", "Size.", ["path"], registry=registry)
    for name, value, amount in rows:
        counter.labels(value).inc(amount, exemplar={name: "x"})
        gauge.labels(value).set(amount)
        # No quote in exemplar labels: prometheus_client's OpenMetrics parser toggles on every '"',
        # escaped or not, and fails on pages its own exposition writes (the fast path reads them).
        hist.labels(value).observe(amount, exemplar={"trace_id": value[:8].replace('"', "")})
        summ.labels(value).observe(amount)
    same(generate_latest(registry).decode(), openmetrics=False)
    same(generate_openmetrics(registry).decode(), openmetrics=True)
