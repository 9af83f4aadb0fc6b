"""OTLP/HTTP metrics (``POST /v1/metrics``, protobuf or JSON) mapped the way Prometheus 3's OTLP receiver maps them.

- Resource: ``service.name`` (with ``service.namespace/`` before it) is ``job``, ``service.instance.id`` is
  ``instance``; the other resource attributes go to one ``target_info`` gauge (value 1) per resource, and
  those named in ``[receivers] otlp_promote`` onto every series. ``host.name`` sets the host column
  (else the host of ``instance``, else this machine).
- Sums: monotonic ones are counters (``_total``), others gauges. Delta sums and histograms are turned
  into running totals per series, as Prometheus does with ``--enable-feature=otlp-deltatocumulative``
  (totals start at the first point this owner sees).
- Histograms: ``_bucket{le}`` (cumulative), ``_sum``, ``_count``. Exponential histograms, which
  Prometheus stores as native histograms, become the same classic series with ``le`` at each bucket's
  upper bound (monitorkit has no native histogram type). Summaries: ``{quantile}``, ``_sum``, ``_count``.
- Stale markers (``otlp_stale.py``): a series a resource + scope's previous export had and its next one
  lacks ends there, and points flagged "no recorded value" are markers. Non-finite values are not
  stored; times are kept in ms.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

import numpy as np
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from monitorkit.errors import MonitorkitError
from monitorkit.interop.bulk import STALE_NAN, AppendRefused, ColumnWriter, CommitFailed, SeriesSpec
from monitorkit.interop.metadata import Metadata
from monitorkit.interop.otlp_names import bucket_bound, label_name, metric_name
from monitorkit.interop.otlp_stale import STALE, Export, Key, StreamKey, StreamTracker
from monitorkit.interop.remote_write import MAX_DECODED_BYTES
from monitorkit.interop.scrape import host_of
from monitorkit.owner.api import Request, Response
from monitorkit.samples import HOST, validate_labels, validate_name

DELTA, CUMULATIVE = 1, 2
NO_RECORDED_VALUE = 1
RESOURCE_LABELS = ("service.name", "service.namespace", "service.instance.id")


class OtlpError(MonitorkitError, ValueError):
    """A body that is not an OTLP ExportMetricsServiceRequest in protobuf or JSON (answered 400)."""


def decode_request(body: bytes, content_type: str, encoding: str = "") -> Any:
    """Return the ExportMetricsServiceRequest of a body (gzip-inflated if so encoded)."""
    if encoding.strip().lower() == "gzip":
        try:
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflate.decompress(body, MAX_DECODED_BYTES)
        except zlib.error as exc:
            raise OtlpError(f"body is not gzip (Content-Encoding: gzip): {exc}") from None
        if inflate.unconsumed_tail:
            raise OtlpError(f"body inflates past {MAX_DECODED_BYTES} bytes; send smaller batches")
    request = ExportMetricsServiceRequest()
    try:
        if content_type.split(";")[0].strip().lower() == "application/json":
            json_format.Parse(body.decode("utf-8"), request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (json_format.ParseError, UnicodeDecodeError, ValueError) as exc:
        raise OtlpError(f"body is not an OTLP metrics request ({content_type or 'no Content-Type'}): {exc}") from None
    except Exception as exc:  # protobuf's DecodeError has no stable import path across runtimes
        raise OtlpError(f"body is not an OTLP metrics request: {exc}") from None
    return request


def attribute_value(value: Any) -> str:
    """Return an AnyValue as a label string (lists and maps as JSON-like text, as Prometheus does)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "array_value":
        return "[" + ",".join(f'"{attribute_value(v)}"' for v in value.array_value.values) + "]"
    if kind == "kvlist_value":
        return "{" + ",".join(f'"{kv.key}":"{attribute_value(kv.value)}"' for kv in value.kvlist_value.values) + "}"
    return str(getattr(value, kind))


def labels_of(attributes: Iterable[Any]) -> dict[str, str]:
    """Return attributes as Prometheus labels; keys that collide once sanitized join their values with ``;``."""
    out: dict[str, str] = {}
    for key, value in sorted(((kv.key, kv.value) for kv in attributes), key=itemgetter(0)):
        name = label_name(key)
        text = value.string_value if value.WhichOneof("value") == "string_value" else attribute_value(value)
        out[name] = f"{out[name]};{text}" if name in out else text
    return out


class Batch:
    """Samples gathered from one request: series keys and, per sample, its series, time (ms) and value."""

    def __init__(self) -> None:
        self.series: dict[Key, int] = {}
        self.index: list[int] = []
        self.ts: list[int] = []
        self.values: list[float] = []
        self.metadata: list[Metadata] = []
        self.exports: dict[StreamKey, Export] = {}  # each resource + scope's part of the request
        self.export: Export | None = None  # the stream whose series are being added, if they are compared

    def add(self, host: str, name: str, labels: dict[str, str], ts_ns: int, value: float) -> None:
        """Add one sample (the stream's ranges of samples say which series it reported, see ``seal``)."""
        key = (host, name, tuple(sorted(labels.items())))
        pos = self.series.get(key)
        if pos is None:
            pos = self.series[key] = len(self.series)
        self.index.append(pos)
        self.ts.append(ts_ns // 1_000_000)
        self.values.append(value)

    def end(self, key: Key, ts_ns: int) -> None:
        """Add a stale marker for the series ``key`` at ``ts_ns``."""
        host, name, labels = key
        self.add(host, name, dict(labels), ts_ns, STALE)
        if self.export is not None:
            self.export.ended.add(key)
            self.export.newest = max(self.export.newest, ts_ns)



class Translator:
    """Turn OTLP requests into Batches; keeps the running totals that make delta points cumulative."""

    def __init__(self, promote: Iterable[str] = ()) -> None:
        self.promote = tuple(promote)
        self._totals: dict[Key, list[float]] = {}
        self._lock = threading.Lock()

    def translate(self, request: Any) -> Batch:
        """Return the samples of every resource, scope and metric of ``request``."""
        batch = Batch()
        with self._lock:
            for rm in request.resource_metrics:
                resource = {kv.key: attribute_value(kv.value) for kv in rm.resource.attributes}
                base, host = self._resource_labels(resource)
                newest = 0
                for sm in rm.scope_metrics:
                    stream = (tuple(sorted(resource.items())), sm.scope.name, sm.scope.version)
                    batch.export = batch.exports.setdefault(stream, Export())
                    for metric in sm.metrics:
                        newest = max(newest, self._metric(batch, metric, base, host))
                batch.export = None  # target_info is the resource's, not a scope's: never compared
                info = {label_name(k): v for k, v in sorted(resource.items()) if k not in RESOURCE_LABELS}
                if info and newest:
                    batch.add(host, "target_info", {**info, **base}, newest, 1.0)
        return batch

    def _resource_labels(self, resource: dict[str, str]) -> tuple[dict[str, str], str]:
        labels: dict[str, str] = {}
        name, namespace = resource.get("service.name"), resource.get("service.namespace")
        if name:
            labels["job"] = f"{namespace}/{name}" if namespace else name
        if resource.get("service.instance.id"):
            labels["instance"] = resource["service.instance.id"]
        for key in self.promote:
            if key in resource:
                labels[label_name(key)] = resource[key]
        host = resource.get("host.name") or (host_of(labels["instance"]) if "instance" in labels else HOST)
        return labels, host

    def _metric(self, batch: Batch, metric: Any, base: dict[str, str], host: str) -> int:
        """Add one metric's points; return the newest point time (ns)."""
        kind = metric.WhichOneof("data")
        if kind is None:
            return 0
        data = getattr(metric, kind)
        monotonic = bool(kind == "sum" and data.is_monotonic)
        name = metric_name(metric.name, metric.unit, kind=kind, monotonic=monotonic)
        delta = getattr(data, "aggregation_temporality", CUMULATIVE) == DELTA
        prom_type = {"gauge": "gauge", "sum": "counter" if monotonic else "gauge", "histogram": "histogram",
                     "exponential_histogram": "histogram", "summary": "summary"}[kind]
        batch.metadata.append(Metadata(name, prom_type, metric.description, metric.unit))
        newest = 0
        start = len(batch.index)
        for point in data.data_points:
            labels = {**labels_of(point.attributes), **base}
            at = point.time_unix_nano
            if point.flags & NO_RECORDED_VALUE:
                _end(batch, kind, name, labels, host, point)
                continue
            newest = max(newest, at)
            if kind in ("gauge", "sum"):
                value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
                if delta and kind == "sum":
                    value = self._accumulate((host, name, tuple(sorted(labels.items()))), [value])[0]
                batch.add(host, name, labels, at, value)
            elif kind == "summary":
                for q in point.quantile_values:
                    batch.add(host, name, {**labels, "quantile": bucket_bound(q.quantile)}, at, q.value)
                batch.add(host, f"{name}_sum", labels, at, point.sum)
                batch.add(host, f"{name}_count", labels, at, float(point.count))
            else:
                bounds, counts = _buckets(point) if kind == "histogram" else _exponential_buckets(point)
                totals = [float(point.sum), float(point.count), *counts]
                if delta:
                    totals = self._accumulate((host, name, tuple(sorted(labels.items()))), totals)
                running = 0.0
                for bound, count in zip(bounds, totals[2:], strict=True):
                    running += count
                    batch.add(host, f"{name}_bucket", {**labels, "le": bucket_bound(bound)}, at, running)
                batch.add(host, f"{name}_bucket", {**labels, "le": "+Inf"}, at, totals[1])
                batch.add(host, f"{name}_sum", labels, at, totals[0])
                batch.add(host, f"{name}_count", labels, at, totals[1])
        if batch.export is not None:
            batch.export.newest = max(batch.export.newest, newest)
            if not delta:  # a delta series with nothing new is left out of an export: that is no vanishing
                batch.export.ranges.append((start, len(batch.index)))
        return newest

    def _accumulate(self, key: Key, values: list[float]) -> list[float]:
        known = self._totals.get(key)
        if known is None or len(known) != len(values):  # first point, or the bucket layout changed: start again
            known = self._totals[key] = [0.0] * len(values)
        for i, v in enumerate(values):
            known[i] += v
        return list(known)


def _end(batch: Batch, kind: str, name: str, labels: dict[str, str], host: str, point: Any) -> None:
    """Add stale markers for the series of a point flagged "no recorded value" (Prometheus: StaleNaN)."""
    at = point.time_unix_nano
    if kind in ("gauge", "sum"):
        batch.end((host, name, tuple(sorted(labels.items()))), at)
        return
    if kind == "summary":
        parts = [(name, {"quantile": bucket_bound(q.quantile)}) for q in point.quantile_values]
    else:  # the buckets the point names, if any (the other ones end when the stream's next export lacks them)
        bounds = [*getattr(point, "explicit_bounds", ()), float("inf")]
        parts = [(f"{name}_bucket", {"le": bucket_bound(b)}) for b in bounds]
    for series, more in [*parts, (f"{name}_sum", {}), (f"{name}_count", {})]:
        batch.end((host, series, tuple(sorted({**labels, **more}.items()))), at)


def _buckets(point: Any) -> tuple[list[float], list[float]]:
    """Explicit buckets: each finite bound and the count in it (the last, overflow, count is in _count)."""
    bounds = list(point.explicit_bounds)
    counts = [float(c) for c in point.bucket_counts][: len(bounds)]
    counts += [0.0] * (len(bounds) - len(counts))
    return bounds, counts


def _exponential_buckets(point: Any) -> tuple[list[float], list[float]]:
    """Exponential buckets as (upper bound, count): negative ones, the zero bucket, then positive ones."""
    base = 2.0 ** (2.0 ** -point.scale)
    bounds: list[float] = []
    counts: list[float] = []
    negative = point.negative
    for i in reversed(range(len(negative.bucket_counts))):  # bucket k holds (-base^(k+1), -base^k]
        bounds.append(-(base ** (negative.offset + i)))
        counts.append(float(negative.bucket_counts[i]))
    bounds.append(point.zero_threshold)
    counts.append(float(point.zero_count))
    positive = point.positive
    for i, count in enumerate(positive.bucket_counts):  # bucket k holds (base^k, base^(k+1)]
        bounds.append(base ** (positive.offset + i + 1))
        counts.append(float(count))
    return bounds, counts


class OtlpReceiver:
    """Answer ``POST /v1/metrics``: decode, translate, append through the ColumnWriter, reply in the request's encoding."""

    def __init__(self, writer: ColumnWriter, on_metadata: Callable[[list[Metadata], str], None] | None = None,
                 promote: Iterable[str] = ()) -> None:
        self.writer = writer
        self.on_metadata = on_metadata
        self.translator = Translator(promote)
        self.streams = StreamTracker()
        self.counts: dict[str, int] = {}
        self._ids: dict[Key, int] = {}
        self._lock = threading.Lock()

    def _count(self, **counts: int) -> None:
        with self._lock:
            for key, n in counts.items():
                self.counts[key] = self.counts.get(key, 0) + n

    def handle(self, request: Request) -> Response:
        """Answer one export request."""
        as_json = request.content_type.split(";")[0].strip().lower() == "application/json"
        try:
            decoded = decode_request(request.body, request.content_type, request.headers.get("Content-Encoding", ""))
        except OtlpError as exc:
            self._count(bad_requests=1)
            return Response.text(400, str(exc))
        batch = self.translator.translate(decoded)
        if batch.metadata and self.on_metadata is not None:
            self.on_metadata(batch.metadata, "otlp")
        keys = list(batch.series)
        ids = np.array([self._ids.get(k, -1) for k in keys], np.int64)
        specs: dict[int, SeriesSpec | None] = {}
        for i in np.flatnonzero(ids == -1).tolist():
            host, name, labels = keys[i]
            specs[i] = _spec(host, name, dict(labels))
        values = np.array(batch.values, np.float64)
        index = np.array(batch.index, np.int64)
        try:
            result = self.writer.write(ids, specs, index, np.array(batch.ts, np.int64), values)
        except AppendRefused as exc:
            self._count(refused_requests=1)
            return Response.text(400, str(exc))
        except CommitFailed as exc:
            self._count(failed_requests=1)
            return Response.text(503, str(exc))
        for i in specs:
            self._ids[keys[i]] = int(result.ids[i])
        self.streams.settle(self.writer, batch.exports, index, result.ids, lambda key: self._ids.get(key, 0))
        nonfinite = result.nonfinite - int((values.view(np.uint64) == STALE_NAN).sum())  # markers are no rejects
        rejected = result.refused + nonfinite + result.out_of_order
        self._count(requests=1, samples=result.written, rejected=rejected, duplicates=result.duplicates,
                    out_of_order=result.out_of_order, refused=result.refused, nonfinite=nonfinite)
        answer = ExportMetricsServiceResponse()
        if rejected:
            answer.partial_success.rejected_data_points = rejected
            answer.partial_success.error_message = (
                f"{result.refused} samples of series with invalid names or labels, {nonfinite} non-finite, "
                f"{result.out_of_order} out of order within the request were not stored")
        if as_json:
            return Response(200, json_format.MessageToJson(answer).encode(), "application/json")
        return Response(200, answer.SerializeToString(), "application/x-protobuf")


def _spec(host: str, name: str, labels: dict[str, str]) -> SeriesSpec | None:
    try:
        return SeriesSpec(host, validate_name(name), validate_labels(labels, metric=name))
    except MonitorkitError:
        return None

