"""The hub's dashboard over a real lake: token login, every host in the selector, the fleet overview, late hosts."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dashboard_helpers import handshake, http_get
from shared_helpers import child_env, wait_until
from store_helpers import PYTHON, isolated_settings

from monitorkit.dashboard.app import LIVE_VIEWS
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels import PanelContext
from monitorkit.dashboard.panels.fleet import NO_FLEET, FleetPanel, FleetRow, fleet_html
from monitorkit.dashboard.reader import StoreReader
from monitorkit.dashboard.records import AlertRow
from monitorkit.errors import ConfigError
from monitorkit.lake.config import LakeConfig, hub_config
from monitorkit.lake.dashboard import FLEET_LAYOUT, FleetOverview, HubActions, HubDashboard, HubFeed, hub_hosts
from monitorkit.lake.hub import Hub
from monitorkit.lake.ship import Shipper
from monitorkit.lake.source import LocalSource
from monitorkit.owner.schema import SCHEMA
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store

HOSTS = ("host-a", "host-b")
CPU_RULE = """-- name: fleet_cpu_high
-- kind: resource
-- severity: warning
-- summary: CPU on {{ host }} at {{ value }}%
SELECT host, round(avg, 1) AS value
FROM gauge_window('cpu_percent', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE labels['cpu'] IS NULL AND avg > 90
"""


def figures(host: str, start: datetime, seconds: int) -> list[Sample]:
    """Return one sample a second of the overview's figures: host-b's CPU is high."""
    cpu = 95.0 if host == "host-b" else 12.0
    out = []
    for s in range(seconds):
        t = start + timedelta(seconds=s)
        out += [Sample(t, "cpu_percent", {}, cpu + s % 2), Sample(t, "cpu_percent", {"cpu": "0"}, 1.0),
                Sample(t, "memory_percent", {}, 40.0 + s % 3),
                Sample(t, "disk_used_percent", {"mount": "/"}, 50.0), Sample(t, "disk_used_percent", {"mount": "/data"}, 70.0)]
    return out


class Fleet:
    """Two host stores that ship to one lake, and the hub's settings over it."""

    def __init__(self, stack: ExitStack, tmp_path: Path, cfg: LakeConfig) -> None:
        self.cfg = cfg
        self.hosts: dict[str, tuple[Store, Shipper]] = {}
        for host in HOSTS:
            store = stack.enter_context(Store(tmp_path / f"{host}.duckdb", settings=isolated_settings(), schema=SCHEMA))
            shipper = Shipper(replace(cfg, host=host), LocalSource(store.cursor))
            stack.callback(shipper.close)
            self.hosts[host] = (store, shipper)
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "fleet_cpu_high.sql").write_text(CPU_RULE)
        self.settings = isolated_settings().with_overrides({
            "lake.catalog": cfg.catalog, "lake.data_path": cfg.data_path, "hub.db": str(tmp_path / "hub.duckdb"),
            "rules.dirs": [str(rules)], "rules.defaults": False, "serve.session_lifetime": "1s"})

    def ship(self, host: str, samples: list[Sample]) -> None:
        """Write ``samples`` on ``host`` and ship them all: the batch ends a second after the newest."""
        store, shipper = self.hosts[host]
        store.write(samples)
        store.flush()
        shipper.ship(max(s.time for s in samples) + timedelta(seconds=1) + self.cfg.lateness)


@pytest.fixture
def fleet(tmp_path: Path, lake_cfg: LakeConfig) -> Iterator[Fleet]:
    with ExitStack() as stack:
        yield Fleet(stack, tmp_path, lake_cfg)


@pytest.fixture
def shipped(fleet: Fleet) -> datetime:
    """Both hosts ship 90 s of figures up to now; return now."""
    now = utcnow().replace(microsecond=0)
    for host in HOSTS:
        fleet.ship(host, figures(host, now - timedelta(seconds=90), 90))
    return now


def test_the_fleet_overview_has_one_row_per_host_with_its_health_and_figures(fleet: Fleet, shipped: datetime) -> None:
    with Hub(fleet.settings) as hub:
        overview = FleetOverview(StoreReader(hub.store), hub.cfg)
        rows = {r.host: r for r in overview.query()}
        assert sorted(rows) == list(HOSTS)
        a = rows["host-a"]
        assert (a.status, a.reason, a.firing) == ("ok", "shipping", 0)
        # The last second shipped (s = 89): CPU 12 + s % 2, memory 40 + s % 3, the fullest disk.
        assert a.last_sample == shipped - timedelta(seconds=1) and a.ship_lag_s is not None
        assert (a.cpu_percent, a.memory_percent, a.disk_used_percent) == (13.0, 42.0, 70.0)
        assert rows["host-b"].cpu_percent == 96.0
        assert 0 < a.ship_lag_s < overview.degraded_after

        hub.evaluate()  # host-b's CPU rule fires on the hub: host-b is degraded, with the rule named
        rows = {r.host: r for r in overview.query()}
        assert (rows["host-b"].status, rows["host-b"].firing) == ("degraded", 1)
        assert rows["host-b"].reason == "1 firing: fleet_cpu_high"
        assert [r.host for r in overview.query()] == ["host-b", "host-a"], "the worst host comes first"

        # Acknowledge and silence from the hub's dashboard go through the hub's own rule engine.
        (aid, labels), = hub.store.query("SELECT id, labels FROM alerts WHERE rule = 'fleet_cpu_high'")
        alert = AlertRow(int(aid), "fleet_cpu_high", dict(labels), "warning", "firing", 95.0, "", None, None, 0.0, None,
                         None)
        actions = HubActions(hub)
        actions.acknowledge(alert, by="ana", comment="on it")
        assert hub.store.query("SELECT acked_by FROM alerts WHERE id = ?", [aid]) == [("ana",)]
        assert actions.silence(alert, duration=timedelta(hours=1), by="ana", comment="noisy") > 0
        (matchers,), = hub.store.query("SELECT matchers FROM silences")
        assert "host-b" in matchers and "fleet_cpu_high" in matchers, matchers

        later = FleetOverview(StoreReader(hub.store), hub.cfg, clock=lambda: shipped.timestamp() + 600)
        assert {r.host: r.status for r in later.query()} == {"host-a": "failing", "host-b": "failing"}
        assert all(re.match(r"lake data \d+ s behind \(last batch \d{4}-\d\d-\d\d ", r.reason) for r in later.query())


def test_the_hub_feed_streams_a_host_that_ships_behind_the_others(fleet: Fleet) -> None:
    base = utcnow().replace(microsecond=0) - timedelta(seconds=120)
    fleet.ship("host-a", figures("host-a", base, 30))
    fleet.ship("host-b", figures("host-b", base, 10))
    with Hub(fleet.settings) as hub:
        reader = StoreReader(hub.store)
        feed = HubFeed(reader, lake_alias=hub.store.lake_alias, fleet=FleetOverview(reader, hub.cfg))
        feed.prime()
        assert {i.host for i in feed.series.values()} == set(HOSTS)
        first = feed.snapshot_id
        # host-a runs ahead; host-b then ships seconds older than host-a's newest: still new to the lake.
        fleet.ship("host-a", figures("host-a", base + timedelta(seconds=30), 30))
        ahead = feed.poll()
        fleet.ship("host-b", figures("host-b", base + timedelta(seconds=10), 20))
        behind = feed.poll()
        again = feed.poll()
    assert feed.snapshot_id is not None and first is not None and feed.snapshot_id > first
    by_host = {i.series_id: i.host for i in feed.series.values()}

    def points(delta: object) -> dict[str, int]:
        out: dict[str, int] = {}
        for sid, pts in delta.values.items():  # type: ignore[attr-defined]
            out[by_host[sid]] = out.get(by_host[sid], 0) + len(pts.times)
        return out

    assert points(ahead) == {"host-a": 30 * 5}
    assert points(behind) == {"host-b": 20 * 5}, "a host behind the others is streamed, not skipped"
    assert points(again) == {}, "nothing is read twice"


def test_the_hub_serves_the_dashboard_behind_its_token(fleet: Fleet, shipped: datetime) -> None:
    with Hub(fleet.settings) as hub:
        board = HubDashboard(hub, fleet.settings, port=0)
        board.start()
        try:
            url, token = board.url, board.token
            assert token and board.login_url == f"{url}/?token={token}"
            status, headers, _ = http_get(url + "/")
            assert status == 302 and "login" in headers["Location"]
            assert http_get(url + "/?token=wrong-token")[0] == 302
            assert http_get(url + "/static/js/bokeh.min.js")[0] == 401
            assert handshake(url, url) == 403
            status, headers, _ = http_get(url + "/?token=" + token)
            assert status == 302 and headers["Location"] == "/"
            cookie = headers["Set-Cookie"].split(";")[0]
            status, _, page = http_get(url + "/", {"Cookie": cookie})
            assert status == 200 and b"monitorkit" in page
            assert wait_until(lambda: board.feed is not None and board.feed.subscribers == 1)
            metrics = http_get(url + "/metrics", {"Authorization": f"Bearer {token}"})[2].decode()
            assert 'host="host-a"' in metrics and 'host="host-b"' in metrics

            assert hub_hosts(board.reader) == list(HOSTS)
            views = [v for v in list(LIVE_VIEWS) if v.app is board.server.app]  # type: ignore[union-attr]
            assert len(views) == 1
            view = views[0]
            assert view.layout_name == FLEET_LAYOUT.name and list(view.host.options) == list(HOSTS)
            panel = next(p for p in view.panels if isinstance(p, FleetPanel))
            assert re.findall(r"data-host='([^']+)' data-status='(\w+)'", panel.table.object) == [
                ("host-a", "ok"), ("host-b", "ok")]
            stored = hub.store.query("SELECT count(*) FROM dashboard_credentials")
            assert stored == [(1,)]
        finally:
            board.stop()
        again = HubDashboard(hub, fleet.settings, port=0)
        again.start()
        try:
            assert again.token is None and again.login_url == f"{again.url}/", "the token is issued once"
            assert http_get(again.url + "/?token=" + token)[0] == 302
            assert "monitorkit_auth=" in http_get(again.url + "/?token=" + token)[1].get("Set-Cookie", "")
        finally:
            again.stop()


def test_the_fleet_table_escapes_what_hosts_send() -> None:
    row = FleetRow("<img src=x onerror=alert(1)>", "degraded", "1 firing: <b>x</b>", 1.0, None, None, None, None,
                   None, 3.0)
    text = fleet_html([row], error="<script>")
    assert "<img" not in text and "<b>x" not in text and "<script>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "&lt;script&gt;" in text


def test_the_fleet_panel_on_a_single_owner_says_where_the_fleet_is(store: Store) -> None:
    panel = FleetPanel(PanelSpec("fleet", 12, 300), PanelContext(Feed(StoreReader(store))))
    assert panel.table.object == NO_FLEET


def test_hub_dashboard_settings() -> None:
    defaults = hub_config(isolated_settings())
    assert (defaults.serve, defaults.address, defaults.port, defaults.tick) == (False, "127.0.0.1", 5007,
                                                                                 timedelta(seconds=2))
    chosen = hub_config(isolated_settings(**{"hub.port": 0, "hub.serve": True, "hub.address": "0.0.0.0"}))
    assert (chosen.serve, chosen.port, chosen.address) == (True, 0, "0.0.0.0")
    for key, value, said in (("hub.port", "web", "[hub] port must be a number"), ("hub.port", 70000, "between 0"),
                             ("hub.serve", "yes", "[hub] serve must be true or false")):
        with pytest.raises(ConfigError, match=re.escape(said)):
            hub_config(isolated_settings(**{key: value}))


@pytest.mark.slow
def test_monitorkit_hub_serve_prints_a_login_url_that_signs_in(fleet: Fleet, shipped: datetime, tmp_path: Path) -> None:
    config = tmp_path / "monitorkit.toml"
    config.write_text(f'[lake]\ncatalog = "{fleet.cfg.catalog}"\ndata_path = "{fleet.cfg.data_path}"\n'
                      f'[hub]\ndb = "{tmp_path / "hub.duckdb"}"\nport = 0\n[rules]\ndefaults = false\ndirs = []\n')
    code = "import sys; from monitorkit.cli import main; main(sys.argv[1:], prog_name='monitorkit')"
    proc = subprocess.Popen([PYTHON, "-c", code, "hub", "--serve", "--duration", "40", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=child_env())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: any(line.startswith("dashboard: ") for line in lines), timeout=30), (
            proc.poll(), proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        found = re.match(r"dashboard: (http://127\.0\.0\.1:\d+)/\?token=(\S+)", lines[0])
        assert found, lines
        url, token = found.groups()
        status, headers, _ = http_get(f"{url}/?token={token}")
        assert status == 302, status
        cookie = headers["Set-Cookie"].split(";")[0]
        assert http_get(url + "/", {"Cookie": cookie})[0] == 200
        assert http_get(url + "/")[0] == 302
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "hub stopped" in err


def test_hub_help_says_the_dashboard_is_opt_in(tmp_path: Path) -> None:
    from cli_helpers import invoke

    result = invoke(["hub", "--help"])
    assert result.exit_code == 0
    assert "--serve / --no-serve" in result.output and "Off by default" in result.output and "hub.port" in result.output

