"""The server's own routes in-process: /metrics and /healthz guarded off loopback, the layouts API, health."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import http_get
from prometheus_client.parser import text_string_to_metric_families

from monitorkit.dashboard.app import AppContext, LayoutBackend
from monitorkit.dashboard.auth import TokenAuth, make_credential
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.http import health_summary
from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, to_file_json
from monitorkit.dashboard.reader import StoreReader
from monitorkit.dashboard.server import DashboardServer, is_loopback
from monitorkit.owner.schema import SCHEMA
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardServer, Store]]:
    with Store(tmp_path_factory.mktemp("server") / "m.duckdb", schema=SCHEMA) as store:
        store.write([Sample(utcnow(), "monitorkit_collector_up", {"collector": "cpu"}, 1.0)])
        store.flush()
        reader = StoreReader(store)
        feed = Feed(reader)
        feed.poll()
        app = AppContext(feed, reader, LayoutBackend(reader, lambda fn: store.submit(fn).result(10)))
        server = DashboardServer(app, TokenAuth(make_credential("tok")), api_key="key-123")
        server.open_metrics = False  # as when listening beyond loopback with public_metrics = false
        server.start()
        try:
            yield server, store
        finally:
            server.stop()


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("", False), ("192.168.1.4", False),
])
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_off_loopback_metrics_and_health_need_credentials(closed_server: tuple[DashboardServer, Store]) -> None:
    server, _ = closed_server
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    for path in ("/metrics", "/healthz"):
        assert http_get(server.url + path)[0] == 401
        assert http_get(server.url + path, {"Authorization": "Bearer wrong"})[0] == 401
        assert http_get(server.url + path, {"Authorization": "Bearer tok"})[0] == 200, path
    health = json.loads(http_get(server.url + "/healthz", {"Authorization": "Bearer tok"})[2])
    assert health["status"] == "ok" and health["components"][0]["component"] == "collector cpu"


def test_the_layouts_api_saves_with_the_api_key(closed_server: tuple[DashboardServer, Store]) -> None:
    server, store = closed_server
    body = json.dumps({"layout": json.loads(to_file_json(DEFAULT_LAYOUT._replace(name="api"))), "default": True}).encode()
    request = urllib.request.Request(server.url + "/api/layouts", data=body, method="POST",
                                     headers={"Authorization": "Bearer key-123"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read()) == {"saved": "api", "panels": len(DEFAULT_LAYOUT.panels)}
    assert store.query("SELECT name, is_default FROM layouts") == [("api", True)]
    bad = urllib.request.Request(server.url + "/api/layouts", data=b'{"layout": {"name": "x", "panels": []}}', method="POST",
                                 headers={"Authorization": "Bearer key-123"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bad, timeout=30)
    assert info.value.code == 400 and "panels" in json.loads(info.value.read())["error"]


def test_health_prefers_the_health_views(tmp_path: Path) -> None:
    with Store(tmp_path / "m.duckdb", schema=SCHEMA) as store:
        now = utcnow()
        store.write([Sample(now, "monitorkit_collector_up", {"collector": "disk_io"}, 0.0)])
        store.flush()
        feed = Feed(StoreReader(store))
        feed.poll()
        assert health_summary(feed)["status"] == "failing"
        store.submit(lambda con: con.execute(
            "INSERT INTO health_status VALUES ('writer', 'health_writer', 'degraded', 'slow', ?, ?)", [now, now])).result()
        feed.poll()
        summary = health_summary(feed)
        assert summary["source"] == "health_status" and summary["status"] == "degraded"


def test_websocket_origins_cover_what_browsers_use() -> None:
    from monitorkit.dashboard.server import origin_hosts

    assert origin_hosts("127.0.0.1") == {"localhost", "127.0.0.1"}
    assert "10.0.0.5" in origin_hosts("10.0.0.5")
    everywhere = origin_hosts("0.0.0.0", ("dash.example.com",))
    assert {"localhost", "dash.example.com"} <= everywhere and len(everywhere) > 3


def test_healthz_reflects_the_owners_health_within_one_tick(tmp_path: Path) -> None:
    import threading

    from store_helpers import isolated_settings

    from monitorkit.dashboard.service import DashboardService
    from monitorkit.owner.health import HealthService
    from monitorkit.owner.owner import Owner
    from monitorkit.owner.runtime import serving
    from monitorkit.owner.scheduler import Scheduler
    from monitorkit.store import duck

    settings = isolated_settings(**{"store.path": str(tmp_path / "m.duckdb"), "serve.port": 0})
    with Owner(tmp_path / "m.duckdb", settings=settings) as owner:
        with serving(owner, Scheduler(owner.store, []), settings, threading.Event()) as ctx:
            health, dashboard = HealthService(), DashboardService()
            health.start(ctx)
            ctx.services[health.name] = health
            dashboard.start(ctx)
            ctx.services[dashboard.name] = dashboard
            try:
                status, _, body = http_get(dashboard.url + "/healthz")
                answer = json.loads(body)
                parts = {c["component"]: c["status"] for c in answer["components"]}
                assert status == 200 and answer["status"] == "ok" and answer["source"].endswith("+owner")
                assert parts["quack"] == "ok" and parts["writer"] == "ok"
                info = owner.open_quack()  # opened as a reader's first request would
                duck.quack_stop(owner.store.cursor(), info.port)  # as if something stopped the endpoint
                health.tick(utcnow())  # one tick: nothing reached the health views' tables yet
                status, _, body = http_get(dashboard.url + "/healthz")
                answer = json.loads(body)
                quack = next(c for c in answer["components"] if c["component"] == "quack")
                assert status == 503 and answer["status"] == "failing" and quack["status"] == "failing"
                assert "Quack endpoint stopped" in quack["reason"]
            finally:
                dashboard.stop()
                health.stop()


def test_health_summary_merges_the_owners_parts_over_the_tables(tmp_path: Path) -> None:
    from monitorkit.store.status import Part

    with Store(tmp_path / "m.duckdb", schema=SCHEMA) as store:
        now = utcnow()
        store.submit(lambda con: con.execute(
            "INSERT INTO health_status VALUES ('writer', 'heartbeat', 'ok', 'committing', ?, ?)", [now, now])).result()
        feed = Feed(StoreReader(store))
        feed.poll()
        summary = health_summary(feed, lambda: ("degraded", [Part("writer", "degraded", "slow commits")]))
    assert summary["status"] == "degraded" and summary["source"] == "health_status+owner"
    assert summary["components"] == [{"component": "writer", "status": "degraded", "reason": "slow commits"}]


def test_metrics_leaves_out_a_series_a_stale_marker_ended_until_it_comes_back(tmp_path: Path) -> None:
    from monitorkit.rules.staleness import series_key, submit_stale

    def up(nic: str, at: Any) -> Sample:
        return Sample(at, "net_up", {"nic": nic}, 1.0, "web1")

    def exposed(server: DashboardServer) -> list[str]:
        status, _, body = http_get(server.url + "/metrics")
        assert status == 200
        return sorted(s.labels["nic"] for f in text_string_to_metric_families(body.decode()) if f.name == "net_up"
                      for s in f.samples)

    t = utcnow() - timedelta(seconds=10)
    with Store(tmp_path / "m.duckdb", schema=SCHEMA) as store:
        store.write([up("eth0", t), up("eth1", t)])
        store.flush()
        reader = StoreReader(store)
        feed = Feed(reader)
        feed.poll()
        server = DashboardServer(AppContext(feed, reader, LayoutBackend(reader, lambda fn: store.submit(fn).result(10))),
                                 TokenAuth(make_credential("tok")))
        server.start()
        try:
            assert exposed(server) == ["eth0", "eth1"]
            gone = t + timedelta(seconds=1)  # eth1 is unplugged: the collect at gone lacks it
            store.write([up("eth0", gone)])
            submit_stale(store, [series_key("web1", "net_up", {"nic": "eth1"})], gone).result()
            feed.poll()
            assert exposed(server) == ["eth0"], "as Prometheus's /metrics of a vanished series: not there"
            store.write([up("eth0", gone + timedelta(seconds=1)), up("eth1", gone + timedelta(seconds=1))])
            store.flush()
            feed.poll()
            assert exposed(server) == ["eth0", "eth1"]
        finally:
            server.stop()
