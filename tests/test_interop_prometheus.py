"""The real Debian prometheus (2.42) remote-writes a node_exporter's series to monitorkit: same values, same times."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import PROMETHEUS, answering, need, node_exporter, owner_thread, stop_process
from shared_helpers import wait_for
from store_helpers import isolated_settings

from monitorkit.owner.sidecar import free_port

pytestmark = pytest.mark.slow
SERIES = [
    'node_memory_MemAvailable_bytes{job="node"}',
    'node_cpu_seconds_total{job="node",cpu="0",mode="idle"}',
    'node_network_receive_bytes_total{job="node"}',
    'up{job="node"}',
    'scrape_samples_scraped{job="node"}',
]


def prometheus_config(node: str, api_port: int, token: str) -> str:
    """Scrape the node_exporter each second and remote-write to the owner API with its bearer token."""
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1m
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["{node}"]
remote_write:
  - url: http://127.0.0.1:{api_port}/api/v1/write
    authorization:
      credentials: "{token}"
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 5s
"""


def prom_samples(port: int, selector: str, at: float) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """Return the raw samples Prometheus holds for ``selector`` over the 5 minutes before ``at``, by label set."""
    query = urllib.parse.urlencode({"query": f"{selector}[5m]", "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{query}", timeout=10) as response:
        data: dict[str, Any] = json.load(response)
    out = {}
    for result in data["data"]["result"]:
        labels = {k: v for k, v in result["metric"].items() if k != "__name__"}
        out[tuple(sorted(labels.items()))] = [(round(float(t) * 1000), float(v)) for t, v in result["values"]]
    return out


def _prometheus(config: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the real Prometheus on ``config`` at a free loopback port; return it once it answers ready."""
    port = free_port()
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
    try:
        wait_for(lambda: answering(f"http://127.0.0.1:{port}/-/ready"), 60, "prometheus ready")
    except BaseException:
        stop_process(prom)
        raise
    return prom, port


def test_prometheus_remote_write_arrives_with_the_same_values_and_times(tmp_path: Path) -> None:
    need(PROMETHEUS)
    settings = isolated_settings(**{"store.path": str(tmp_path / "m.duckdb"), "store.flush_interval": "0.5s",
                                    "receivers.otlp": False,
                                    "collect.interval": 0.5})
    with node_exporter() as (node, _), \
            owner_thread(settings, ("monitorkit.interop.receivers:ReceiverService",)) as ctx:
        config = tmp_path / "prometheus.yml"
        config.write_text(prometheus_config(node, ctx.api.port, ctx.api.token))
        prom, port = _prometheus(config, tmp_path)
        try:
            store = ctx.owner.store
            wait_for(lambda: store.query("SELECT count(*) FROM samples WHERE name = 'up'")[0][0] >= 10, 60,
                     "10 s of remote-written samples")
            at = time.time() - 2  # samples up to here have left Prometheus' queue (batch_send_deadline 1 s)
            wait_for(lambda: store.query("SELECT epoch_ms(max(time)) FROM samples WHERE name = 'up'")[0][0]
                     >= at * 1000, 30, "monitorkit caught up")
            store.flush()
            for selector in SERIES:
                name = selector.split("{")[0]
                expected = prom_samples(port, selector, at)
                assert expected, selector
                for labels, samples in expected.items():
                    rows = store.query(
                        "SELECT epoch_ms(time), value FROM samples WHERE name = ? AND labels = MAP(?, ?) "
                        "AND time <= to_timestamp(?) ORDER BY time",
                        [name, [k for k, _ in labels], [v for _, v in labels], at])
                    assert len(samples) >= 8, (selector, labels, samples)
                    assert [(int(t), float(v)) for t, v in rows] == samples, (selector, labels)
            metadata = store.query("SELECT type, help FROM metric_metadata WHERE name = 'node_memory_MemAvailable_bytes'")
            assert metadata and metadata[0][0] == "gauge"
            counts = ctx.services["receivers"].remote_write.counts.values
            assert counts.get("refused_requests", 0) == 0 and counts.get("failed_requests", 0) == 0, counts
        finally:
            stop_process(prom)


def test_prometheus_keeps_remote_writing_across_an_owner_restart_with_a_fixed_port_and_token_file(
        tmp_path: Path) -> None:
    need(PROMETHEUS)
    api_port, token_file = free_port(), tmp_path / "owner-api.token"
    settings = isolated_settings(**{"store.path": str(tmp_path / "m.duckdb"), "store.flush_interval": "0.5s",
                                    "receivers.otlp": False, "collect.interval": 0.5,
                                    "owner.api_port": api_port, "owner.api_token_file": str(token_file)})
    services = ("monitorkit.interop.receivers:ReceiverService",)
    with node_exporter() as (node, _):
        with owner_thread(settings, services) as ctx:  # the first start writes the token file Prometheus reads
            config = tmp_path / "prometheus.yml"
            # docs/interop.md's example: the fixed port and bearer_token_file, nothing copied from the sidecar
            config.write_text(prometheus_config(node, api_port, "").replace(
                'authorization:\n      credentials: ""', f"bearer_token_file: {token_file}"))
            prom, port = _prometheus(config, tmp_path)
            try:
                store = ctx.owner.store
                wait_for(lambda: store.query("SELECT count(*) FROM samples WHERE name = 'up'")[0][0] >= 3, 60,
                         "remote-written samples before the restart")
            except BaseException:
                stop_process(prom)
                raise
        try:
            time.sleep(3)  # the owner is gone: Prometheus' sends fail and it retries
            restarted = time.time()
            with owner_thread(settings, services) as ctx:
                store = ctx.owner.store
                wait_for(lambda: store.query("SELECT count(*) FROM samples WHERE name = 'up' AND time > to_timestamp(?)",
                                             [restarted + 3])[0][0] >= 3, 60, "remote-written samples after the restart")
                at = time.time() - 2
                wait_for(lambda: store.query("SELECT epoch_ms(max(time)) FROM samples WHERE name = 'up'")[0][0]
                         >= at * 1000, 30, "monitorkit caught up")
                store.flush()
                # Prometheus resent what it scraped while the owner stopped and was down (a stopping receiver
                # answers 503, not 404, which Prometheus would drop): monitorkit holds all of its TSDB's samples.
                (_, expected), = prom_samples(port, 'up{job="node"}', at).items()
                rows = store.query("SELECT epoch_ms(time), value FROM samples WHERE name = 'up' "
                                   "AND time <= to_timestamp(?) AND time >= to_timestamp(?) ORDER BY time",
                                   [at, expected[0][0] / 1000])
                assert [(int(t), float(v)) for t, v in rows] == expected
                assert any(t / 1000 < restarted for t, _ in expected) and any(t / 1000 > restarted for t, _ in expected)
                counts = ctx.services["receivers"].remote_write.counts.values
                assert counts.get("refused_requests", 0) == 0, counts
        finally:
            stop_process(prom)
