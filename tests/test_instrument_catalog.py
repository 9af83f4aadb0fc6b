"""Every metric the instrumentation emits is in the metrics registry with the same kind, labels and help."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import invoke

from monitorkit.catalog import REGISTRY, all_metrics
from monitorkit.instrument import Counter, Registry, Sender, tool_run, track
from monitorkit.instrument.catalog import INGEST_EXECUTIONS, INGEST_REQUESTS, INGEST_SAMPLES


def test_emitted_metrics_match_their_registry_entries(tmp_path: Path) -> None:
    reg = Registry(max_series=1)
    Sender(tmp_path / "x.duckdb", registry=reg)
    with track(protocol="http", method="GET", registry=reg):
        pass
    with tool_run("t", registry=reg):
        pass
    c = Counter("app_total", "app metric: not registered globally", ["k"], registry=reg)
    c.labels("a").inc()
    c.labels("b").inc()  # refused: emits monitorkit_cardinality_refused_total
    emitted = [m for m in reg.metrics() if m.name != "app_total"]
    assert {m.name for m in emitted} == {
        "protocol_requests_total", "protocol_request_duration_seconds", "protocol_request_bytes_total",
        "protocol_response_bytes_total", "protocol_errors_total", "tool_runs_total", "tool_run_duration_seconds",
        "monitorkit_client_dropped_samples_total", "monitorkit_client_dropped_executions_total",
        "monitorkit_cardinality_refused_total",
    }
    for metric in emitted:
        info = REGISTRY[metric.name]
        assert (info.kind, info.labels, info.help) == (metric.kind, metric.labelnames, metric.documentation)
    assert "app_total" not in REGISTRY


def test_monitorkit_metrics_lists_the_instrumentation_and_ingest_metrics() -> None:
    names = {info.name for info in all_metrics()}
    assert {INGEST_REQUESTS.name, INGEST_SAMPLES.name, INGEST_EXECUTIONS.name, "tool_runs_total"} <= names
    result = invoke(["metrics", "--json"])
    listed = {row["name"]: row for row in json.loads(result.output)}
    assert listed["protocol_request_duration_seconds"]["kind"] == "histogram"
    assert listed["monitorkit_ingest_requests_total"]["labels"] == ["status"]
