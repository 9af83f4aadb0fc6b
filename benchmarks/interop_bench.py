"""Interop benchmark: parser fast path vs prometheus_client, scrape cost per target, remote_write and OTLP throughput.

    .venv/bin/python benchmarks/interop_bench.py [parser] [scrape] [remote_write] [otlp]   (default: all, < 60 s)

Prints rich tables; figures are for reading side by side, no test asserts on them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import cramjam
from rich.console import Console
from rich.table import Table

from monitorkit.interop import exposition, prompb
from monitorkit.interop.exposition import FastPathMiss, PageCache, parse_fallback, parse_fast
from monitorkit.interop.receivers import OTLP_PATH, REMOTE_WRITE_PATH, ReceiverService
from monitorkit.interop.scrape import parse_job, resolve_targets
from monitorkit.interop.targets import TargetScraper
from monitorkit.owner.api import OwnerApi
from monitorkit.owner.client import request
from monitorkit.owner.schema import SCHEMA
from monitorkit.owner.sidecar import free_port
from monitorkit.store import Store

console = Console(width=150)
PAGE = Path(__file__).resolve().parent.parent / "tests" / "interop" / "node_exporter.txt"
# A canned exporter in its own process, so its CPU is not counted as the scraper's.
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
page = open(sys.argv[1], "rb").read()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
"""


def timed(fn: Callable[[], object], seconds: float = 2.0) -> float:
    """Return the mean CPU time of ``fn`` in ms over about ``seconds`` (CPU, not wall: the machine is shared)."""
    fn()
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        fn()
        n += 1
    return (time.process_time() - start) / n * 1000


def bench_parser() -> None:
    text = PAGE.read_text()
    cache = PageCache()
    table = Table(title=f"Parsing a real node_exporter page ({len(text) / 1024:.0f} KiB, "
                        f"{len(parse_fast(text).samples)} samples)")
    for col in ("parser", "CPU ms per page", "vs prometheus_client"):
        table.add_column(col, justify="right" if col != "parser" else "left")
    slow = timed(lambda: parse_fallback(text))
    rows = [("prometheus_client.parser (fallback)", slow),
            ("fast path, first page (no cache)", timed(lambda: parse_fast(text))),
            ("fast path, next pages (target's cache)", timed(lambda: parse_fast(text, cache=cache))),
            ("fast path rows only (what the scraper uses)", timed(lambda: exposition.parse_rows(text, cache=cache)))]
    for name, ms in rows:
        table.add_row(name, f"{ms:.2f}", f"{slow / ms:.1f}x")
    console.print(table)


@contextmanager
def canned_exporter() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(PAGE), str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                request(port, "GET", "/metrics", "", "", b"", 1)
                break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(5)


def scrape_cpu(address: str, store: Store, *, fallback: bool, scrapes: int = 200) -> float:
    """Return CPU ms of this process per scrape (fetch, parse, label, queue, and the writer's commit)."""
    (target,) = resolve_targets([parse_job({"job": "bench", "targets": [address], "interval": "1s"})])
    scraper = TargetScraper(target)

    def miss(*args: Any, **kwargs: Any) -> Any:
        raise FastPathMiss("benchmark: forced fallback")

    with mock.patch("monitorkit.interop.targets.parse_rows", miss) if fallback else _nothing():
        store.write(scraper.scrape().samples, validate=False)  # warm the caches and the series
        store.flush()
        start = time.process_time()
        for _ in range(scrapes):
            store.write(scraper.scrape().samples, validate=False)
        store.flush()
        used = time.process_time() - start
    scraper.close()
    return used / scrapes * 1000


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def bench_scrape() -> None:
    table = Table(title="Scraping one target (real node_exporter page from a canned exporter), at 1 s")
    for col in ("parser", "CPU ms per scrape", "% of a core at 1 s"):
        table.add_column(col, justify="right" if col != "parser" else "left")
    with canned_exporter() as address, tempfile.TemporaryDirectory() as folder, \
            Store(Path(folder) / "b.duckdb", schema=SCHEMA) as store:
        for name, fallback in (("fast path", False), ("prometheus_client.parser", True)):
            ms = scrape_cpu(address, store, fallback=fallback)
            table.add_row(name, f"{ms:.2f}", f"{ms / 10:.2f} %")
    console.print(table)


def remote_write_bodies(series: int, per_request: int, requests: int, t0: int) -> list[bytes]:
    """Requests like Prometheus sends: one sample per series, node_exporter-like labels, in time order."""
    bodies = []
    for r in range(requests):
        req = prompb.WriteRequest()
        for i in range(per_request):
            k = (r * per_request + i) % series
            ts = req.timeseries.add()
            for name, value in (("__name__", f"node_metric_{k % 300}_total"), ("cpu", str(k % 16)),
                                ("instance", "10.0.0.7:9100"), ("job", "node"), ("mode", "idle"),
                                ("series", str(k))):
                ts.labels.add(name=name, value=value)
            ts.samples.add(value=float(r), timestamp=t0 + ((r * per_request + i) // series) * 1000)
        bodies.append(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    return bodies


def post_all(port: int, token: str, path: str, content_type: str, bodies: list[bytes],
             senders: int) -> tuple[float, float]:
    """POST every body from ``senders`` threads (in order per thread); return wall and CPU seconds (this process)."""
    chunks = [bodies[i::senders] for i in range(senders)]
    failures: list[str] = []

    def send(chunk: list[bytes]) -> None:
        for body in chunk:
            answer = request(port, "POST", path, token, content_type, body, 60)
            if answer.status not in (200, 204):
                failures.append(answer.message)

    threads = [threading.Thread(target=send, args=(c,)) for c in chunks]
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(failures[0])
    return time.perf_counter() - start, time.process_time() - cpu


@contextmanager
def receiving() -> Iterator[tuple[OwnerApi, Store]]:
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "b.duckdb", schema=SCHEMA) as store:
        api = OwnerApi()
        api.start()
        service = ReceiverService()
        service.start_on(store, api)
        try:
            yield api, store
        finally:
            service.stop()
            api.stop()


def bench_remote_write() -> None:
    table = Table(title="remote_write receive, end to end over HTTP (decode, checks, commit before the answer); "
                        "CPU-seconds of this process, the senders' included")
    for col in ("samples per request", "series", "senders", "requests", "samples/s", "samples per CPU-second"):
        table.add_column(col, justify="right")
    for per_request, series, senders in ((500, 20_000, 4), (2_000, 20_000, 4), (10_000, 50_000, 2)):
        requests_n = max(8, 100_000 // per_request)
        with receiving() as (api, store):
            warm = remote_write_bodies(series, series, 1, 1_600_000_000_000)  # every series once: steady state
            post_all(api.port, api.token, REMOTE_WRITE_PATH, "application/x-protobuf", warm, 1)
            bodies = remote_write_bodies(series, per_request, requests_n, 1_700_000_000_000)
            seconds, cpu = post_all(api.port, api.token, REMOTE_WRITE_PATH, "application/x-protobuf", bodies, senders)
            stored = store.query("SELECT count(*) FROM samples_raw")[0][0] - series
        table.add_row(f"{per_request:,}", f"{series:,}", str(senders), str(requests_n),
                      f"{stored / seconds:,.0f}", f"{stored / cpu:,.0f}")
    console.print(table)


def otlp_bodies(encoding: str, requests: int, first: int, points: int = 5_000, senders: int = 1) -> list[bytes]:
    """Requests like an SDK sends: 50 metrics (sums and gauges) x 100 attribute sets, one point each.

    Request ``j`` comes from instance ``j % senders`` (post_all gives sender k every k-th body).
    """
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    bodies = []
    for j in range(requests):
        r = first + j // senders
        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        for key, value in (("service.name", "bench"), ("service.instance.id", f"i-{j % senders}"), ("host.name", "b1")):
            rm.resource.attributes.add(key=key).value.string_value = value
        sm = rm.scope_metrics.add()
        for m in range(50):
            metric = sm.metrics.add(name=f"app.metric.{m}", unit="s" if m % 2 else "{item}")
            data = metric.sum if m % 2 else metric.gauge
            if m % 2:
                data.is_monotonic, data.aggregation_temporality = True, 2
            for a in range(points // 50):
                point = data.data_points.add(time_unix_nano=(1_700_000_000 + r) * 10**9, as_double=float(r + a))
                point.attributes.add(key="route").value.string_value = f"/r/{a}"
                point.attributes.add(key="method").value.string_value = "GET"
        bodies.append(req.SerializeToString() if encoding == "protobuf" else json_format.MessageToJson(req).encode())
    return bodies


def bench_otlp() -> None:
    table = Table(title="OTLP/HTTP metrics receive, end to end over HTTP (decode, map, commit before the answer)")
    for col in ("encoding", "points per request", "samples/s", "samples per CPU-second"):
        table.add_column(col, justify="right")
    for encoding in ("protobuf", "json"):
        with receiving() as (api, store):
            content_type = "application/x-protobuf" if encoding == "protobuf" else "application/json"
            warm = otlp_bodies(encoding, 2, 0, senders=2)
            post_all(api.port, api.token, OTLP_PATH, content_type, warm, 2)
            before = store.query("SELECT count(*) FROM samples_raw")[0][0]
            bodies = otlp_bodies(encoding, 20, 1, senders=2)
            seconds, cpu = post_all(api.port, api.token, OTLP_PATH, content_type, bodies, 2)
            stored = store.query("SELECT count(*) FROM samples_raw")[0][0] - before
        table.add_row(encoding, f"{stored // len(bodies):,}", f"{stored / seconds:,.0f}", f"{stored / cpu:,.0f}")
    console.print(table)


PARTS = {"parser": bench_parser, "scrape": bench_scrape, "remote_write": bench_remote_write, "otlp": bench_otlp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("parts", nargs="*", help=f"which to run: {', '.join(PARTS)} (default: all)")
    parts = parser.parse_args().parts or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    for part in parts:
        PARTS[part]()


if __name__ == "__main__":
    main()
