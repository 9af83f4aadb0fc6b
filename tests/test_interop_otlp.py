"""OTLP/HTTP metrics: Prometheus 3's name translation, and the real OpenTelemetry SDK + OTLP/HTTP exporter feeding the owner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from monitorkit.interop.otlp_names import bucket_bound, label_name, metric_name
from monitorkit.interop.receivers import OTLP_PATH, ReceiverService
from monitorkit.owner.api import OwnerApi
from monitorkit.owner.client import request
from monitorkit.owner.schema import SCHEMA
from monitorkit.store import Store


@pytest.mark.parametrize("name, unit, kind, monotonic, expected", [
    ("http.server.request.duration", "s", "histogram", False, "http_server_request_duration_seconds"),
    ("system.memory.usage", "By", "sum", False, "system_memory_usage_bytes"),
    ("requests", "{request}", "sum", True, "requests_total"),
    ("requests_total", "1", "sum", True, "requests_total"),
    ("cpu.utilization", "1", "gauge", False, "cpu_utilization_ratio"),
    ("throughput", "By/s", "gauge", False, "throughput_bytes_per_second"),
    ("latency_seconds", "s", "histogram", False, "latency_seconds"),
    ("2xx.responses", "", "sum", True, "_2xx_responses_total"),
    ("temperature", "Cel", "gauge", False, "temperature_celsius"),
    ("queue..depth--now", "%", "gauge", False, "queue_depth_now_percent"),
])
def test_metric_names_follow_prometheus_3(name: str, unit: str, kind: str, monotonic: bool, expected: str) -> None:
    assert metric_name(name, unit, kind=kind, monotonic=monotonic) == expected


def test_label_names_and_bucket_bounds() -> None:
    assert label_name("service.name") == "service_name"
    assert label_name("2fa") == "key_2fa" and label_name("_private") == "key_private" and label_name("__x") == "__x"
    assert [bucket_bound(v) for v in (0.005, 10.0, 1e-9, 2.5e21, float("inf"))] == [
        "0.005", "10", "0.000000001", "2500000000000000000000", "+Inf"]


class Capturing(OTLPMetricExporter):
    """The real OTLP/HTTP exporter, keeping a copy of every request it sends."""

    sent: list[Any]

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:  # type: ignore[override]
        self.sent.append(encode_metrics(metrics_data))
        result = super().export(metrics_data, timeout_millis, **kwargs)
        self.results.append(result)  # type: ignore[attr-defined]
        return result


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[Store, OwnerApi, ReceiverService]]:
    with Store(tmp_path / "m.duckdb", schema=SCHEMA) as store:
        api = OwnerApi()
        api.start()
        service = ReceiverService()
        service.start_on(store, api, remote_write=False, promote=["deployment.environment"])
        try:
            yield store, api, service
        finally:
            service.stop()
            api.stop()


def run_sdk(api: OwnerApi, *, delta: bool = False) -> Capturing:
    """Record a counter, an up-down counter, two histograms and an observable gauge; export twice."""
    temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
    exporter = Capturing(endpoint=f"http://127.0.0.1:{api.port}{OTLP_PATH}",
                         headers={"Authorization": f"Bearer {api.token}"},
                         preferred_temporality={Counter: temporality, Histogram: temporality,
                                                UpDownCounter: AggregationTemporality.CUMULATIVE})
    exporter.sent, exporter.results = [], []  # type: ignore[attr-defined]
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "checkout", "service.namespace": "shop",
                                "service.instance.id": "pod-7", "host.name": "web-3",
                                "deployment.environment": "test", "k8s.pod.uid": "abc"})
    provider = MeterProvider(resource=resource, metric_readers=[reader],
                             views=[View(instrument_name="payload.size",
                                         aggregation=ExponentialBucketHistogramAggregation(max_size=20))])
    meter = provider.get_meter("tests", "1.0")
    orders = meter.create_counter("orders", unit="{order}", description="Orders placed.")
    queue = meter.create_up_down_counter("queue.depth", unit="{item}")
    latency = meter.create_histogram("checkout.duration", unit="s")
    size = meter.create_histogram("payload.size", unit="By")
    temperature = [21.5]
    meter.create_observable_gauge("room.temperature", [lambda options: [_observation(temperature[0])]], unit="Cel")
    for round_ in range(2):
        orders.add(3, {"payment": "card"})
        orders.add(1 + round_, {"payment": "cash"})
        queue.add(5)
        queue.add(-2 - round_)
        for v in (0.003, 0.2, 0.2, 7.0):
            latency.record(v * (round_ + 1), {"route": "/pay"})
        for v in (10, 300, 4096, 70_000):
            size.record(v)
        temperature[0] += round_
        assert reader.force_flush()
    provider.shutdown()
    assert exporter.results == [MetricExportResult.SUCCESS] * len(exporter.results) and exporter.sent  # type: ignore[attr-defined]
    return exporter


def _observation(value: float) -> Any:
    from opentelemetry.metrics import Observation

    return Observation(value, {"room": "lab"})


def stored(store: Store, name: str, **labels: str) -> list[tuple[int, float]]:
    where = "".join(f" AND labels['{k}'] = '{v}'" for k, v in labels.items())
    return [(int(t), float(v)) for t, v in store.query(
        f"SELECT epoch_ms(time), value FROM samples WHERE name = ? {where} ORDER BY time", [name])]


def expected_points(sent: list[Any], metric: str, **attrs: str) -> list[tuple[int, Any]]:
    """Return (ms, point) of every exported point of ``metric`` whose attributes include ``attrs``."""
    out = []
    for req in sent:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != metric:
                        continue
                    data = getattr(m, m.WhichOneof("data"))
                    for p in data.data_points:
                        have = {kv.key: kv.value.string_value for kv in p.attributes}
                        if all(have.get(k) == v for k, v in attrs.items()):
                            out.append((p.time_unix_nano // 1_000_000, p))
    return out


def number(point: Any) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)


def test_the_real_sdk_counter_updown_histogram_and_gauge_arrive_as_exported(owner: tuple) -> None:
    store, api, service = owner
    exporter = run_sdk(api)
    base = {"job": "shop/checkout", "instance": "pod-7", "deployment_environment": "test"}
    card = expected_points(exporter.sent, "orders", payment="card")
    assert len(card) >= 2  # two flushes, and shutdown's export
    assert stored(store, "orders_total", payment="card", **base) == [(t, number(p)) for t, p in card]
    assert [number(p) for _, p in card][:2] == [3, 6]
    depth = expected_points(exporter.sent, "queue.depth")
    assert stored(store, "queue_depth", **base) == [(t, number(p)) for t, p in depth]
    assert [number(p) for _, p in depth][:2] == [3, 5]
    gauge = expected_points(exporter.sent, "room.temperature", room="lab")
    assert stored(store, "room_temperature_celsius", room="lab", **base) == [(t, number(p)) for t, p in gauge]
    for t, p in expected_points(exporter.sent, "checkout.duration", route="/pay"):
        running = 0.0
        for bound, count in zip(p.explicit_bounds, p.bucket_counts, strict=False):
            running += count
            rows = dict(stored(store, "checkout_duration_seconds_bucket", route="/pay", le=bucket_bound(bound)))
            assert rows[t] == running
        assert dict(stored(store, "checkout_duration_seconds_bucket", route="/pay", le="+Inf"))[t] == p.count
        assert dict(stored(store, "checkout_duration_seconds_sum", route="/pay"))[t] == pytest.approx(p.sum)
        assert dict(stored(store, "checkout_duration_seconds_count", route="/pay"))[t] == p.count
    (t, p), *_ = expected_points(exporter.sent, "payload.size")
    buckets = dict(store.query(
        "SELECT labels['le'], value FROM samples WHERE name = 'payload_size_bytes_bucket' AND epoch_ms(time) = ?", [t]))
    assert buckets["+Inf"] == p.count == 4
    assert max(v for k, v in buckets.items() if k != "+Inf" and float(k) < 10) == 0
    assert min(v for k, v in buckets.items() if k != "+Inf" and float(k) >= 70_000) == 4
    # host.name sets the host; other resource attributes are in target_info; promoted ones on every series.
    assert {h for (h,) in store.query("SELECT DISTINCT host FROM series WHERE name LIKE 'orders%'")} == {"web-3"}
    info = store.query("SELECT labels FROM samples WHERE name = 'target_info'")[0][0]
    assert info["k8s_pod_uid"] == "abc" and info["host_name"] == "web-3" and info["job"] == "shop/checkout"
    meta = store.query("SELECT type, help FROM metric_metadata WHERE name = 'orders_total'")
    assert meta == [("counter", "Orders placed.")]
    assert service.otlp.counts["requests"] == len(exporter.sent)


def test_delta_counters_and_histograms_become_running_totals(owner: tuple) -> None:
    store, api, _ = owner
    exporter = run_sdk(api, delta=True)
    cash = expected_points(exporter.sent, "orders", payment="cash")
    assert [number(p) for _, p in cash] == [1, 2]  # deltas as sent (shutdown's export has no new point)
    assert [v for _, v in stored(store, "orders_total", payment="cash")] == [1.0, 3.0]
    counts = [v for _, v in stored(store, "checkout_duration_seconds_count", route="/pay")]
    assert counts == [4.0, 8.0]


def test_json_encoding_gives_the_same_series(owner: tuple, tmp_path: Path) -> None:
    store, api, _ = owner
    exporter = run_sdk(api)
    rows = store.query("SELECT name, labels, epoch_ms(time), value FROM samples ORDER BY ALL")
    with Store(tmp_path / "json.duckdb", schema=SCHEMA) as other:
        api2 = OwnerApi()
        api2.start()
        service = ReceiverService()
        service.start_on(other, api2, remote_write=False, promote=["deployment.environment"])
        try:
            for req in exporter.sent:
                body = json_format.MessageToJson(req).encode()
                answer = request(api2.port, "POST", OTLP_PATH, api2.token, "application/json", body, 30)
                assert answer.status == 200 and answer.message.startswith("{")
            assert other.query("SELECT name, labels, epoch_ms(time), value FROM samples ORDER BY ALL") == rows
        finally:
            service.stop()
            api2.stop()


def test_bad_bodies_are_refused(owner: tuple) -> None:
    _, api, _ = owner
    for content_type, body in (("application/x-protobuf", b"\xff\xff\xff"), ("application/json", b"{not json")):
        answer = request(api.port, "POST", OTLP_PATH, api.token, content_type, body, 10)
        assert answer.status == 400 and "not an OTLP metrics request" in answer.message
    assert request(api.port, "POST", OTLP_PATH, "wrong", "application/json", b"{}", 10).status == 401
