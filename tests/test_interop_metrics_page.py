"""/metrics is clean for promtool: HELP and TYPE from the catalog, base units, OpenMetrics on request; Prometheus scrapes it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from interop_helpers import PROMETHEUS, PROMTOOL, answering, need, stop_process
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from shared_helpers import wait_for

from monitorkit.catalog import all_metrics
from monitorkit.dashboard import exposition
from monitorkit.dashboard.records import SeriesInfo
from monitorkit.interop.exposition import ACCEPT
from monitorkit.owner.sidecar import free_port

T = 1_700_000_000_123.0


def every_catalog_series() -> tuple[dict[int, SeriesInfo], dict[int, tuple[float, float]]]:
    """One series of every catalogued metric (histograms with buckets), an app metric, and foreign ones."""
    series: dict[int, SeriesInfo] = {}

    def add(name: str, labels: dict[str, str]) -> None:
        series[len(series) + 1] = SeriesInfo(len(series) + 1, "web1", name, labels)

    for m in all_metrics():
        labels = {label: 'a "quoted"\nvalue\\' for label in m.labels}
        if m.kind == "histogram":
            for le in ("0.1", "+Inf"):
                add(f"{m.name}_bucket", {**labels, "le": le})
            add(f"{m.name}_sum", labels)
            add(f"{m.name}_count", labels)
        else:
            add(m.name, labels)
    add("checkout_queue_count", {"queue": "a"})  # an application's gauge, not in the catalog
    add("node_memory_MemAvailable_bytes", {"job": "node", "instance": "db1:9100"})  # scraped: not re-exposed
    add("up", {"job": "node", "instance": "db1:9100"})
    return series, {sid: (T, 50.0) for sid in series}


def page(*, openmetrics: bool = False) -> str:
    series, latest = every_catalog_series()
    extra = [exposition.Extra("monitorkit_dashboard_sessions", "gauge", {}, 2),
             exposition.Extra("monitorkit_dashboard_polls_total", "counter", {}, 7)]
    return exposition.render(series, latest, extra, openmetrics=openmetrics)


def promtool(text: str) -> str:
    result = subprocess.run([need(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    return (result.stdout + result.stderr).strip()


def test_promtool_finds_nothing_on_a_page_of_every_catalogued_metric() -> None:
    text = page()
    assert "# HELP cpu_seconds_total CPU seconds" in text and "# TYPE cpu_seconds_total counter" in text
    assert promtool(text) == ""


def test_base_units_and_aliases_on_the_page_only() -> None:
    families = {f.name: f for f in text_string_to_metric_families(page())}
    assert families["cpu_ratio"].samples[0].value == 0.5  # cpu_percent 50 -> 0.5
    assert "stored as cpu_percent, in percent" in families["cpu_ratio"].documentation
    assert families["cpus"].type == "gauge" and "cpu_count" not in families
    assert "processes_all" in families and "processes_count" not in families
    assert families["net_speed_bytes"].samples[0].value == 50 * 125_000
    assert families["protocol_request_duration_seconds"].type == "histogram"
    assert families["checkout_queue_count"].type == "unknown"  # untyped: no _count complaint, nothing guessed
    assert "node_memory_MemAvailable_bytes" not in families and "up" not in families
    sample = families["cpu_seconds"].samples[0]  # prometheus_client names counters without _total
    assert sample.timestamp == T / 1000 and sample.labels["host"] == "web1"


def test_openmetrics_on_request_parses_strictly() -> None:
    assert exposition.wants_openmetrics(ACCEPT)  # what Prometheus sends
    assert not exposition.wants_openmetrics("text/html,application/xhtml+xml,*/*;q=0.8")
    assert not exposition.wants_openmetrics("")
    text = page(openmetrics=True)
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}  # raises on anything OpenMetrics forbids
    assert families["cpu_seconds"].type == "counter"
    assert families["cpu_seconds"].samples[0].name == "cpu_seconds_total"
    assert families["checkout_queue_count"].type == "unknown"
    assert families["cpu_ratio"].samples[0].timestamp.sec == int(T // 1000)


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_served_page_and_promtool_finds_nothing(tmp_path: Path) -> None:
    from dashboard_helpers import served

    need(PROMETHEUS)
    (tmp_path / "dash").mkdir()
    with served(tmp_path / "dash") as server:
        wait_for(lambda: b"# HELP cpu_ratio" in server.get("/metrics")[2], 30, "host metrics on /metrics")
        status, headers, body = server.get("/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert promtool(body.decode()) == ""
        status, headers, om = server.get("/metrics", {"Accept": ACCEPT})
        assert headers["Content-Type"].startswith("application/openmetrics-text")
        assert list(openmetrics_families(om.decode()))
        target = urllib.parse.urlsplit(server.url).netloc
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: monitorkit\n"
                          f"    static_configs:\n      - targets: ['{target}']\n")
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: answering(f"http://127.0.0.1:{port}/-/ready"), 60, "prometheus ready")

            def query(expr: str) -> list[dict]:
                url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                with urllib.request.urlopen(url, timeout=10) as response:
                    return list(json.load(response)["data"]["result"])

            wait_for(lambda: query('up{job="monitorkit"} == 1'), 30, "prometheus scraping monitorkit")
            time.sleep(2)
            assert query("cpus") and query("cpu_seconds_total") and query('cpu_ratio{cpu=""} <= 1')
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=10))
            (active,) = targets["data"]["activeTargets"]
            assert active["health"] == "up" and active["lastError"] == ""
        finally:
            stop_process(prom)
