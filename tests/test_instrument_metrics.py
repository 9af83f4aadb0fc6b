"""Counters, gauges and histograms: values, snapshots, refusals at the API and the cardinality guard."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest

from monitorkit.errors import CardinalityLimitError, InvalidLabelError, InvalidMetricNameError, InvalidValueError
from monitorkit.instrument import Counter, Gauge, Histogram, Registry, counter, gauge, histogram
from monitorkit.instrument.metrics import NOOP

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def reg() -> Registry:
    return Registry()


def by_key(reg: Registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in reg.collect(NOW)}


def test_counter_with_labels_counts_per_label_set(reg: Registry) -> None:
    c = Counter("jobs_processed_total", "Jobs done", labelnames=["queue"], registry=reg)
    c.labels(queue="a").inc()
    c.labels(queue="a").inc(2.5)
    c.labels("b").inc()
    assert by_key(reg) == {
        ("jobs_processed_total", (("queue", "a"),)): 3.5,
        ("jobs_processed_total", (("queue", "b"),)): 1.0,
    }
    assert all(s.time == NOW for s in reg.collect(NOW))


def test_unlabelled_metrics_are_their_own_series(reg: Registry) -> None:
    c = Counter("events_total", "Events", registry=reg)
    g = Gauge("queue_depth", "Depth", registry=reg)
    c.inc()
    g.set(10)
    g.inc(2)
    g.dec(5)
    assert by_key(reg) == {("events_total", ()): 1.0, ("queue_depth", ()): 7.0}
    g.set_to_current_time()
    assert g.get() > 1.7e9


def test_counter_refuses_going_down_and_non_numbers(reg: Registry) -> None:
    c = Counter("jobs_total", "Jobs", registry=reg)
    for bad in (-1, float("nan"), float("inf"), "3", None):
        with pytest.raises(InvalidValueError, match="jobs_total"):
            c.inc(bad)  # type: ignore[arg-type]
    assert c.get() == 0.0


def test_gauge_and_histogram_refuse_non_finite_values(reg: Registry) -> None:
    g = Gauge("temperature", "T", registry=reg)
    h = Histogram("latency_seconds", "L", registry=reg)
    for bad in (float("nan"), float("inf"), "1"):
        with pytest.raises(InvalidValueError, match="temperature"):
            g.set(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidValueError, match="latency_seconds"):
            h.observe(bad)  # type: ignore[arg-type]
    assert h.snapshot()[2] == 0


@pytest.mark.parametrize(
    ("cls", "name", "message"),
    [
        (Counter, "2fast_total", "invalid metric name"),
        (Counter, "jobs-done_total", "invalid metric name"),
        (Counter, "jobs_done", "must end in '_total'"),
        (Gauge, "jobs_total", "reserved for counters"),
        (Histogram, "latency_count", "must not end in '_count'"),
        (Histogram, "latency_bucket", "must not end in '_bucket'"),
    ],
)
def test_bad_metric_names_are_refused_with_a_message(reg: Registry, cls: type, name: str, message: str) -> None:
    with pytest.raises(InvalidMetricNameError, match=message):
        cls(name, "help", registry=reg)
    assert reg.metrics() == []


@pytest.mark.parametrize(
    ("labelnames", "message"),
    [
        (["1queue"], "invalid label name '1queue'"),
        (["__name"], "invalid label name '__name'"),
        (["queue", "queue"], "lists a label name twice"),
        ("queue", "not the string"),
    ],
)
def test_bad_label_names_are_refused(reg: Registry, labelnames: object, message: str) -> None:
    with pytest.raises(InvalidLabelError, match=message):
        Counter("jobs_total", "Jobs", labelnames=labelnames, registry=reg)  # type: ignore[arg-type]


def test_histogram_reserves_le(reg: Registry) -> None:
    with pytest.raises(InvalidLabelError, match="'le' is reserved"):
        Histogram("latency_seconds", "L", ["le"], registry=reg)


def test_bad_label_values_and_label_sets_are_refused(reg: Registry) -> None:
    c = Counter("requests_total", "R", ["method", "path"], registry=reg)
    with pytest.raises(InvalidLabelError, match=r"takes exactly the labels \['method', 'path'\]"):
        c.labels(method="GET")
    with pytest.raises(InvalidLabelError, match="takes exactly the labels"):
        c.labels(method="GET", route="/")
    with pytest.raises(InvalidLabelError, match="takes exactly the labels"):
        c.labels("GET")
    with pytest.raises(InvalidLabelError, match="has a int value 200"):
        c.labels(method="GET", path=200)  # type: ignore[arg-type]
    with pytest.raises(InvalidLabelError, match="must be strings"):
        c.labels("GET", ["/"])  # type: ignore[arg-type]
    with pytest.raises(InvalidLabelError, match="not both"):
        c.labels("GET", path="/")
    with pytest.raises(InvalidLabelError, match=r"call \.labels\(method=\.\.\., path=\.\.\.\) first"):
        c.inc()
    unlabelled = Counter("plain_total", "P", registry=reg)
    with pytest.raises(InvalidLabelError, match="has no labels"):
        unlabelled.labels("x")
    assert by_key(reg) == {("plain_total", ()): 0.0}


def test_registry_refuses_duplicate_and_clashing_names(reg: Registry) -> None:
    Histogram("latency", "L", registry=reg)
    with pytest.raises(InvalidMetricNameError, match="already used in this registry"):
        Histogram("latency", "L", registry=reg)
    with pytest.raises(InvalidMetricNameError, match="'latency_sum' is already used"):
        Gauge("latency_sum", "clash with the histogram's sum", registry=reg)


def test_factories_get_or_create_the_same_metric(reg: Registry) -> None:
    a = counter("hits_total", "Hits", ["page"], registry=reg)
    assert counter("hits_total", "Hits", ["page"], registry=reg) is a
    assert reg.get("hits_total") is a
    with pytest.raises(InvalidMetricNameError, match="already exists"):
        counter("hits_total", "Hits", ["route"], registry=reg)
    with pytest.raises(InvalidMetricNameError, match="already exists"):
        gauge("hits_total", "Hits", ["page"], registry=reg)
    h = histogram("size_bytes", "S", registry=reg, buckets=(1, 10))
    assert histogram("size_bytes", "S", registry=reg, buckets=(1, 10)) is h
    with pytest.raises(InvalidMetricNameError, match="buckets"):
        histogram("size_bytes", "S", registry=reg, buckets=(1, 100))


def test_factories_default_to_the_global_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitorkit.instrument import REGISTRY

    monkeypatch.setattr(REGISTRY, "on_first_register", None)  # no autostart of a sender from a test
    g = gauge("test_factory_default_depth", "Depth")
    try:
        assert REGISTRY.get("test_factory_default_depth") is g
        assert gauge("test_factory_default_depth", "Depth") is g
    finally:
        REGISTRY.unregister(g)


def test_histogram_writes_prometheus_style_series(reg: Registry) -> None:
    h = Histogram("job_seconds", "Job time", ["queue"], buckets=(0.1, 1, 10), registry=reg)
    for v in (0.05, 0.1, 0.5, 3, 30):
        h.labels(queue="a").observe(v)
    got = by_key(reg)
    q = (("queue", "a"),)
    assert got == {
        ("job_seconds_bucket", (("le", "0.1"), *q)): 2.0,
        ("job_seconds_bucket", (("le", "1.0"), *q)): 3.0,
        ("job_seconds_bucket", (("le", "10.0"), *q)): 4.0,
        ("job_seconds_bucket", (("le", "+Inf"), *q)): 5.0,
        ("job_seconds_sum", q): pytest.approx(33.65),
        ("job_seconds_count", q): 5.0,
    }


@pytest.mark.parametrize("buckets", [(), (1, 1), (2, 1), (1, float("nan")), ("a",)])
def test_bad_buckets_are_refused(reg: Registry, buckets: tuple[float, ...]) -> None:
    with pytest.raises(InvalidValueError, match="histogram 'h_seconds'"):
        Histogram("h_seconds", "H", buckets=buckets, registry=reg)


def test_histogram_timer_observes_the_block(reg: Registry) -> None:
    h = Histogram("block_seconds", "B", registry=reg)
    with h.time():
        pass
    buckets, total, count = h.snapshot()
    assert count == 1 and buckets[-1] == 1 and total >= 0


def test_concurrent_increments_are_not_lost(reg: Registry) -> None:
    c = Counter("hits_total", "Hits", ["t"], registry=reg)

    def work() -> None:
        child = c.labels(t="x")
        for _ in range(20_000):
            child.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.labels(t="x").get() == 80_000


def test_cardinality_limit_refuses_the_next_label_set_counts_and_logs_it(
    reg: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    c = Counter("user_requests_total", "Per user", ["user"], registry=reg, max_series=3)
    for user in ("a", "b", "c"):
        c.labels(user=user).inc()
    with caplog.at_level(logging.ERROR, logger="monitorkit.instrument"):
        refused = c.labels(user="d")
        refused.inc(5)
        c.labels(user="e").inc()
    assert refused is NOOP
    c.labels(user="a").inc(10)  # existing series keep working
    got = by_key(reg)
    assert got[("user_requests_total", (("user", "a"),))] == 11.0
    assert ("user_requests_total", (("user", "d"),)) not in got
    assert got[("monitorkit_cardinality_refused_total", (("metric", "user_requests_total"),))] == 2.0
    assert reg.guard.refused == {"user_requests_total": 2}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # logged once a minute per metric, counted every time
    assert "'user_requests_total'" in errors[0] and "3 label sets" in errors[0]


def test_cardinality_limit_comes_from_the_registry_and_is_freed_by_remove() -> None:
    reg = Registry(max_series=2)
    g = Gauge("temp", "T", ["room"], registry=reg)
    g.labels("a").set(1)
    g.labels("b").set(2)
    assert g.labels("c") is NOOP
    g.remove("a")
    g.labels("c").set(3)
    assert {s.labels["room"]: s.value for s in reg.collect(NOW) if s.name == "temp"} == {"b": 2.0, "c": 3.0}


def test_strict_registry_raises_cardinality_limit_error() -> None:
    reg = Registry(max_series=1, strict=True)
    c = Counter("x_total", "X", ["k"], registry=reg)
    c.labels("a").inc()
    with pytest.raises(CardinalityLimitError, match="'x_total' already has 1 label sets"):
        c.labels("b")
    assert by_key(reg)[("monitorkit_cardinality_refused_total", (("metric", "x_total"),))] == 1.0


def test_unregistered_metric_is_not_collected(reg: Registry) -> None:
    c = Counter("free_total", "F", registry=None)
    c.inc()
    assert c.get() == 1.0 and reg.collect(NOW) == []
    kept = Counter("kept_total", "K", registry=reg)
    reg.unregister(kept)
    assert reg.collect(NOW) == []


def test_importing_instrument_loads_neither_duckdb_nor_pyarrow() -> None:
    from store_helpers import run_python

    result = run_python(
        """
        import sys, tempfile
        from monitorkit import instrument
        instrument.Counter("x_total", "X", ["k"]).labels(k="a").inc()
        with instrument.track(protocol="p", method="m"):
            pass
        with instrument.tool_run("t"):
            pass
        # A delivery cycle with no owner: asks owner/local.py and the sidecar, both free of DuckDB.
        sender = instrument.Sender(tempfile.mkdtemp() + "/none.duckdb")
        assert sender.flush() is False and sender.queued > 0 and sender.queued_executions == 1
        assert "monitorkit.owner.local" in sys.modules
        heavy = sorted(m for m in ("duckdb", "pyarrow", "asyncio", "http.client") if m in sys.modules)
        import monitorkit
        print(heavy, callable(monitorkit.connect))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] True"
