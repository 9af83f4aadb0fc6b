"""Stale markers from OTLP: per resource + scope stream, as a scrape target's, sent as real OTLP/HTTP protobuf.

A series a stream's previous export had and its next one lacks ends at the next export's time;
points flagged "no recorded value" are markers; delta series, other streams, retries and the
second part of a split export end nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from rules_helpers import T0, FakeClock, engine_for, events, rule_settings, write_rule

from monitorkit.interop.receivers import OTLP_PATH, ReceiverService
from monitorkit.owner.api import OwnerApi
from monitorkit.owner.client import request
from monitorkit.owner.schema import SCHEMA
from monitorkit.rules.engine import Engine
from monitorkit.store import Store

CHECKOUT = {"service.name": "checkout", "service.instance.id": "pod-1"}
BILLING = {"service.name": "billing", "service.instance.id": "pod-9"}
DEEP_QUEUE = """
SELECT host, labels['queue'] AS queue, last AS value
FROM gauge_window('queue_depth', eval_time() - INTERVAL 5 MINUTE, eval_time())
WHERE last > 5
"""


@dataclass
class Stream:
    """One resource + scope's part of an export: gauge values by queue, and what else it carries."""

    resource: Mapping[str, str]
    depth: Mapping[str, float]
    scope: str = "app"
    flagged: tuple[str, ...] = ()  # queues whose point says "no recorded value"
    delta_orders: Mapping[str, int] | None = None  # a delta counter by queue


def body(seconds: float, *streams: Stream) -> bytes:
    """Return an ExportMetricsServiceRequest (protobuf) with every stream's points at T0 + ``seconds``."""
    at = int((T0 + timedelta(seconds=seconds)).timestamp() * 1e9)
    req = ExportMetricsServiceRequest()
    for stream in streams:
        rm = req.resource_metrics.add()
        for key, value in stream.resource.items():
            kv = rm.resource.attributes.add()
            kv.key, kv.value.string_value = key, value
        sm = rm.scope_metrics.add()
        sm.scope.name, sm.scope.version = stream.scope, "1.0"
        gauge = sm.metrics.add()
        gauge.name = "queue.depth"
        jobs = sm.metrics.add()
        jobs.name = "jobs"
        jobs.sum.is_monotonic, jobs.sum.aggregation_temporality = True, 2  # cumulative
        for queue, depth in stream.depth.items():
            for point, v in ((gauge.gauge.data_points.add(), depth), (jobs.sum.data_points.add(), depth * 10)):
                point.time_unix_nano, point.as_double = at, v
                attr = point.attributes.add()
                attr.key, attr.value.string_value = "queue", queue
                point.flags = 1 if queue in stream.flagged else 0
        if stream.delta_orders is not None:
            orders = sm.metrics.add()
            orders.name = "orders"
            orders.sum.is_monotonic, orders.sum.aggregation_temporality = True, 1  # delta
            for queue, n in stream.delta_orders.items():
                point = orders.sum.data_points.add()
                point.time_unix_nano, point.start_time_unix_nano, point.as_int = at, at - 10**10, n
                attr = point.attributes.add()
                attr.key, attr.value.string_value = "queue", queue
    return req.SerializeToString()


@dataclass
class Receiver:
    store: Store
    api: OwnerApi
    service: ReceiverService
    engine: Engine

    def send(self, seconds: float, *streams: Stream) -> datetime:
        """POST one export; check it was taken whole; evaluate the rules at its time."""
        answer = request(self.api.port, "POST", OTLP_PATH, self.api.token, "application/x-protobuf",
                         body(seconds, *streams), 30)
        assert answer.status == 200, answer.message
        reply = ExportMetricsServiceResponse()
        reply.ParseFromString(answer.message.encode("latin-1"))
        assert not reply.HasField("partial_success"), reply  # markers are no rejected points
        at = T0 + timedelta(seconds=seconds)
        self.store.flush()
        self.engine.run(at)
        return at

    def marked(self) -> list[tuple[datetime, str, str, str]]:
        """Return (time, metric, job, queue) of every stale marker."""
        return [tuple(r) for r in self.store.query(
            "SELECT m.time, s.name, s.labels['job'], coalesce(s.labels['queue'], '') FROM stale_markers m "
            "JOIN series s USING (series_id) ORDER BY ALL")]

    def latest(self, job: str = "checkout") -> list[str]:
        return [q for (q,) in self.store.query(
            "SELECT labels['queue'] FROM latest WHERE name = 'queue_depth' AND labels['job'] = ? ORDER BY 1", [job])]

    def deep(self, seconds: float) -> list[str]:
        at = f"TIMESTAMPTZ '{(T0 + timedelta(seconds=seconds)).isoformat()}'"
        return sorted(r[1] for r in self.store.query(DEEP_QUEUE.replace("eval_time()", at)))

    def active(self) -> list[str]:
        last = {alert_id: (state, labels) for alert_id, _, state, labels in events(self.store, "deep_queue")}
        return sorted(dict(labels)["queue"] for state, labels in last.values() if state in ("pending", "firing"))


@contextmanager
def receiving(tmp_path: Path) -> Iterator[Receiver]:
    write_rule(tmp_path / "rules", "deep_queue", DEEP_QUEUE)
    clock = FakeClock(T0)
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules"), schema=SCHEMA) as store, \
            engine_for(store, clock=clock.monotonic, now=clock.utcnow) as engine:
        api = OwnerApi()
        api.start()
        service = ReceiverService()
        service.start_on(store, api, remote_write=False)
        try:
            yield Receiver(store, api, service, engine)
        finally:
            service.stop()
            api.stop()


def test_a_series_the_next_export_of_its_stream_lacks_is_marked_and_its_alert_resolves(tmp_path: Path) -> None:
    with receiving(tmp_path) as r:
        billing = Stream(BILLING, {"b": 1.0})
        r.send(0, Stream(CHECKOUT, {"a": 1.0, "b": 9.0}, delta_orders={"a": 1, "b": 2}), billing)
        r.send(10, Stream(CHECKOUT, {"a": 1.0, "b": 9.0}, delta_orders={"a": 1}), billing)
        assert r.active() == ["b"] and r.marked() == []  # a delta series with nothing new is not gone
        gone = r.send(20, Stream(CHECKOUT, {"a": 2.0}), billing)  # queue b went away
        assert r.marked() == [(gone, "jobs_total", "checkout", "b"), (gone, "queue_depth", "checkout", "b")]
        assert r.latest() == ["a"] and r.latest("billing") == ["b"]  # billing's own b is another stream's
        assert r.active() == []  # resolved at the first evaluation after b's stream lost it
        # Another stream's export, a resend of the last one and an older one end nothing of checkout's.
        r.send(30, billing)
        r.send(20, Stream(CHECKOUT, {"a": 2.0}))  # a resend: duplicates, dropped
        answer = request(r.api.port, "POST", OTLP_PATH, r.api.token, "application/x-protobuf",
                         body(10, Stream(CHECKOUT, {"a": 1.0, "b": 9.0})), 30)
        assert answer.status == 400 and "out of order sample" in answer.message  # refused whole, as remote write
        assert len(r.marked()) == 2 and r.latest() == ["a"]
        # Before markers, b's last 9 stayed in the rule's 5-minute window:
        r.store.submit(lambda con: con.execute("DELETE FROM stale_markers")).result()
        assert r.deep(20) == r.deep(300) == ["b"]
        assert r.deep(311) == []


def test_a_point_flagged_no_recorded_value_is_a_stale_marker(tmp_path: Path) -> None:
    with receiving(tmp_path) as r:
        r.send(0, Stream(CHECKOUT, {"a": 7.0, "b": 1.0}))
        assert r.active() == ["a"]
        ended = r.send(10, Stream(CHECKOUT, {"a": 7.0, "b": 1.0}, flagged=("a",)))
        assert r.marked() == [(ended, "jobs_total", "checkout", "a"), (ended, "queue_depth", "checkout", "a")]
        assert r.latest() == ["b"] and r.active() == []
        assert r.store.query("SELECT count(*) FROM samples WHERE epoch_ms(time) = ?",
                             [int(ended.timestamp() * 1000)]) == [(2,)]  # b's two; the markers are no samples
        r.send(20, Stream(CHECKOUT, {"b": 1.0}))  # a stays absent: not marked a second time
        assert len(r.marked()) == 2
        assert r.service.otlp.counts.get("nonfinite", 0) == 0


def test_the_second_part_of_a_split_export_takes_back_the_markers_of_the_first(tmp_path: Path) -> None:
    with receiving(tmp_path) as r:
        r.send(0, Stream(CHECKOUT, {"a": 1.0, "b": 9.0}))
        r.send(10, Stream(CHECKOUT, {"a": 1.0}))  # a batch processor split the export at T0 + 10 s in two
        assert [m[3] for m in r.marked()] == ["b", "b"]  # for now b looks gone
        r.send(10, Stream(CHECKOUT, {"b": 9.0}))
        assert r.marked() == [] and r.latest() == ["a", "b"] and r.active() == ["b"]
        gone = r.send(20, Stream(CHECKOUT, {"a": 1.0}))  # both parts were one export: b is compared with it
        assert [(m[0], m[3]) for m in r.marked()] == [(gone, "b"), (gone, "b")]


def test_the_real_sdk_drops_an_unobserved_gauge_series_and_the_receiver_ends_it(tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    rooms = {"lab": 21.0, "hall": 18.0}

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(v, {"room": room}) for room, v in rooms.items()]

    with receiving(tmp_path) as r:
        exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{r.api.port}{OTLP_PATH}",
                                      headers={"Authorization": f"Bearer {r.api.token}"})
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(resource=Resource.create(CHECKOUT), metric_readers=[reader])
        provider.get_meter("tests", "1.0").create_observable_gauge("room.temperature", [observe], unit="Cel")
        try:
            assert reader.force_flush()
            rooms.pop("hall")  # the sensor is gone: the SDK's next export leaves the series out
            assert reader.force_flush()
        finally:
            provider.shutdown()
        r.store.flush()
        [(name, room)] = r.store.query("SELECT s.name, s.labels['room'] FROM stale_markers JOIN series s USING (series_id)")
        assert (name, room) == ("room_temperature_celsius", "hall")
        live = r.store.query("SELECT labels['room'] FROM latest WHERE name = 'room_temperature_celsius'")
        assert live == [("lab",)]
