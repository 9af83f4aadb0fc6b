"""The metrics monitorkit's instrumentation helpers, sender and ingest endpoint emit, in the metrics registry.

Application-defined metrics are not listed here; these are the ones monitorkit names itself.
"""

from __future__ import annotations

from monitorkit.catalog.registry import MetricInfo, register

PM = ("protocol", "method")


def spec(info: MetricInfo) -> tuple[str, str, tuple[str, ...]]:
    """Return (name, help, labels) of ``info``, the arguments ``counter()`` and friends take."""
    return info.name, info.help, info.labels


PROTOCOL_REQUESTS = register(MetricInfo(
    "protocol_requests_total", "counter", "requests",
    "Requests handled or sent, by protocol, method and status (ok, error, timeout, cancelled or the status set).",
    (*PM, "status")))
PROTOCOL_DURATION = register(MetricInfo(
    "protocol_request_duration_seconds", "histogram", "seconds", "Wall time of requests.", PM))
PROTOCOL_REQUEST_BYTES = register(MetricInfo(
    "protocol_request_bytes_total", "counter", "bytes", "Bytes of requests, as set in the tracked block.", PM))
PROTOCOL_RESPONSE_BYTES = register(MetricInfo(
    "protocol_response_bytes_total", "counter", "bytes", "Bytes of responses, as set in the tracked block.", PM))
PROTOCOL_ERRORS = register(MetricInfo(
    "protocol_errors_total", "counter", "errors", "Requests that failed, by error type (exception class).",
    (*PM, "error_type")))

TOOL_RUNS = register(MetricInfo(
    "tool_runs_total", "counter", "runs", "Tool runs, by tool and outcome (ok, error, timeout, cancelled).",
    ("tool", "outcome")))
TOOL_DURATION = register(MetricInfo(
    "tool_run_duration_seconds", "histogram", "seconds", "Wall time of tool runs.", ("tool",)))

CARDINALITY_REFUSED = register(MetricInfo(
    "monitorkit_cardinality_refused_total", "counter", "label sets",
    "Label sets refused because their metric reached its max_series, by metric.", ("metric",)))
CLIENT_DROPPED_SAMPLES = register(MetricInfo(
    "monitorkit_client_dropped_samples_total", "counter", "samples",
    "Samples an instrumented application dropped because its send queue was full (no owner running)."))
CLIENT_DROPPED_EXECUTIONS = register(MetricInfo(
    "monitorkit_client_dropped_executions_total", "counter", "runs",
    "Tool runs an instrumented application dropped because its send queue was full (no owner running)."))

INGEST_REQUESTS = register(MetricInfo(
    "monitorkit_ingest_requests_total", "counter", "requests",
    "Batches POSTed to the owner's ingest endpoint, by HTTP status.", ("status",)))
INGEST_SAMPLES = register(MetricInfo(
    "monitorkit_ingest_samples_total", "counter", "samples",
    "Samples from instrumented applications accepted by the owner."))
INGEST_EXECUTIONS = register(MetricInfo(
    "monitorkit_ingest_executions_total", "counter", "runs",
    "Tool runs from instrumented applications accepted by the owner."))
