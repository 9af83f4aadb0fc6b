"""Property tests of histograms: cumulative buckets, +Inf equals count, sum and count match the observations."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from monitorkit.instrument import Histogram, Registry
from monitorkit.instrument.metrics import format_le

NOW = datetime(2026, 1, 1, tzinfo=UTC)
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
bucket_sets = st.lists(finite, min_size=1, max_size=12, unique=True).map(sorted)


@settings(max_examples=150, deadline=None)
@given(buckets=bucket_sets, observations=st.lists(finite, max_size=80))
def test_histogram_series_follow_the_prometheus_rules(buckets: list[float], observations: list[float]) -> None:
    reg = Registry()
    h = Histogram("prop_seconds", "P", ["k"], buckets=buckets, registry=reg)
    child = h.labels(k="x")
    for v in observations:
        child.observe(v)
    samples = reg.collect(NOW)
    if not observations:
        # a child exists once .labels() was called: it writes zero counts
        assert {s.value for s in samples if s.name != "prop_seconds_sum"} == {0.0}
    bucket_values = [s.value for s in samples if s.name == "prop_seconds_bucket"]
    les = [s.labels["le"] for s in samples if s.name == "prop_seconds_bucket"]
    count = next(s.value for s in samples if s.name == "prop_seconds_count")
    total = next(s.value for s in samples if s.name == "prop_seconds_sum")

    assert les == [format_le(b) for b in buckets] + ["+Inf"]
    assert all(a <= b for a, b in pairwise(bucket_values)), "buckets are cumulative"
    assert bucket_values[-1] == count == len(observations)
    assert math.isclose(total, math.fsum(observations), rel_tol=1e-9, abs_tol=1e-6 * max(1, len(observations)))
    for bound, value in zip(buckets, bucket_values, strict=False):
        assert value == sum(1 for v in observations if v <= bound), f"le={bound} counts observations <= bound"
    assert all(s.labels["k"] == "x" for s in samples)


@settings(max_examples=50, deadline=None)
@given(observations=st.lists(st.floats(min_value=0, max_value=20), min_size=1, max_size=50))
def test_default_buckets_count_every_observation_once(observations: list[float]) -> None:
    h = Histogram("default_seconds", "D", registry=None)
    for v in observations:
        h.observe(v)
    cumulative, total, count = h.snapshot()
    assert count == len(observations) == cumulative[-1]
    assert cumulative == sorted(cumulative)
    assert math.isclose(total, math.fsum(observations), rel_tol=1e-9, abs_tol=1e-9)
