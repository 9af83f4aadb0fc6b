"""The real Debian prometheus-node-exporter: scraped for 30 s, stopped, down and target_down fires; as another host,
its series under monitorkit's names fill every host panel."""

from __future__ import annotations

import re
import time
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import copy_rule, node_exporter, owner_thread, stop_process
from shared_helpers import wait_for
from store_helpers import isolated_settings

from monitorkit.samples import HOST

pytestmark = pytest.mark.slow
SCRAPE_SECONDS = 30


def test_node_exporter_scraped_for_30_s_then_down_fires_target_down(tmp_path: Path) -> None:
    # The shipped rule's SQL, evaluated after every commit and without its `for: 1m`, so the test waits seconds.
    copy_rule("target_down", tmp_path / "rules", for_="0s", every="0s")
    with node_exporter() as (address, proc):
        settings = isolated_settings(**{
            "store.path": str(tmp_path / "m.duckdb"), "store.flush_interval": "0.5s", "collect.interval": 0.5,
            "rules.dirs": [str(tmp_path / "rules")], "rules.defaults": False, "rules.poll": "0s",
            "scrape.jobs": [{"job": "node", "targets": [address], "interval": "1s"}],
        })
        services = ("monitorkit.rules.service:RuleService", "monitorkit.interop.scraper:ScrapeService")
        with owner_thread(settings, services) as ctx:
            store = ctx.owner.store
            time.sleep(SCRAPE_SECONDS)
            store.flush()
            ups = store.query(
                "SELECT count(*), min(value), max(value) FROM samples WHERE name = 'up' "
                "AND labels['job'] = 'node' AND labels['instance'] = ?", [address])
            count, low, high = ups[0]
            assert count >= SCRAPE_SECONDS - 3 and low == high == 1.0, ups
            for metric in ("node_cpu_seconds_total", "node_memory_MemAvailable_bytes"):
                rows = store.query(
                    "SELECT host, count(*), min(value), max(value), count(DISTINCT labels) FROM samples "
                    "WHERE name = ? AND labels['job'] = 'node' AND labels['instance'] = ? GROUP BY host",
                    [metric, address])
                assert len(rows) == 1, (metric, rows)
                host, n, low, high, series = rows[0]
                assert host == HOST and n >= (SCRAPE_SECONDS - 3) * series and low >= 0 and high > 0, (metric, rows[0])
            cpu_modes = store.query(
                "SELECT DISTINCT labels['mode'] FROM series WHERE name = 'node_cpu_seconds_total'")
            assert {"idle", "user", "system"} <= {m for (m,) in cpu_modes}
            assert [s.health for s in ctx.services["scrape"].targets()] == ["up"]

            stop_process(proc)
            wait_for(lambda: store.query(
                "SELECT value FROM latest WHERE name = 'up' AND labels['instance'] = ?", [address]) == [(0.0,)],
                10, "up = 0 after node_exporter stopped")
            firing = wait_for(lambda: store.query(
                "SELECT labels['job'], labels['instance'], summary FROM alerts "
                "WHERE rule = 'target_down' AND state = 'firing'"), 20, "target_down firing")
            assert firing == [("node", address, f"Scrape target {address} of job node on {HOST} is down")]
            (error,) = store.query("SELECT last_error FROM scrape_targets WHERE job = 'node'")[0]
            assert "Connection refused" in error


def _matches(trace: Any, info: Any) -> bool:
    """Tell whether a chart trace draws this series (its metric, ``where`` and ``exclude``, as the charts read them)."""
    if info.name != trace.metric:
        return False
    for label, want in trace.where.items():
        have = info.labels.get(label)
        if (want is None and have is not None) or (want == "*" and have is None) or \
                (want not in (None, "*") and have != want):
            return False
    return not any(re.search(rx, info.labels.get(label, "")) for label, rx in trace.exclude.items())


def test_a_scraped_node_exporter_of_another_host_fills_every_host_panel_and_the_host_selector(tmp_path: Path) -> None:
    import psutil

    from monitorkit.dashboard.feedquery import poll_query, series_info
    from monitorkit.dashboard.history import history_sql, resolve
    from monitorkit.dashboard.panels.host import CHARTS
    from monitorkit.interop.node_exporter import NEEDS_FLAG, NOT_MAPPED

    with node_exporter() as (address, _):
        settings = isolated_settings(**{
            "store.path": str(tmp_path / "m.duckdb"), "store.flush_interval": "0.5s", "collect.interval": 0.5,
            # the host label makes this loopback exporter another machine, so its series are translated (auto)
            "scrape.jobs": [{"job": "node", "targets": [address], "interval": "1s", "labels": {"host": "node-a"}}],
        })
        with owner_thread(settings, ("monitorkit.interop.scraper:ScrapeService",)) as ctx:
            store = ctx.owner.store
            wait_for(lambda: store.query("SELECT count(*) FROM samples WHERE name = 'cpu_percent' AND host = 'node-a' "
                                         "AND labels['cpu'] IS NULL")[0][0] >= 4, 60, "4 busy percents of node-a")
            store.flush()

            # The host selector lists the hosts of the feed's series: the scraped one beside this machine's.
            tables = frozenset({"samples_raw", "series"})
            sql, params = poll_query(tables, {}, time.time() * 1000, 300_000.0, prime=True)
            feed = {sid: series_info(int(sid), doc) for src, sid, _, _, doc in store.query(sql, params) if src == 0}
            assert {"node-a", HOST} <= {info.host for info in feed.values()}
            node_a = [info for info in feed.values() if info.host == "node-a"]
            for info in node_a:
                if info.name in ("cpu_percent", "memory_total_bytes", "load1"):
                    assert info.labels.get("job") == "node" and info.labels.get("instance") == address, info

            # Every trace of every host chart draws at least one node-a series with points (counters as rates),
            # read with the dashboard's own history query.
            rng = resolve("5m")
            sql, params = history_sql(rng, [i.series_id for i in node_a if not i.cumulative],
                                      [i.series_id for i in node_a if i.cumulative])
            with_points = {int(row[1]) for row in store.query(sql, params) if row[3] is not None}
            for kind, specs in CHARTS.items():
                for spec in specs:
                    for trace in spec.traces:
                        drawn = [i for i in node_a if _matches(trace, i) and i.series_id in with_points]
                        if any(fnmatch(trace.metric, p) for p in NOT_MAPPED) or trace.metric in NEEDS_FLAG:
                            # net_connections: no sockets by state; process_group_*: no per-process figures;
                            # Tcp_EstabResets: not in the default fields
                            assert not drawn, trace
                            continue
                        assert drawn, f"{kind} / {spec.title}: no node-a series with points for {trace.metric}"

            # The shipped rules' windows see node-a with the labels they select.
            def window(macro: str, metric: str, extra: str = "") -> list[tuple[Any, ...]]:
                return store.query(f"SELECT labels FROM {macro}('{metric}', now() - INTERVAL 5 MINUTE, now()) "
                                   f"WHERE host = 'node-a'{extra}")

            assert len(window("gauge_window", "cpu_percent", " AND labels['cpu'] IS NULL")) == 1  # cpu_saturation
            assert len(window("gauge_window", "memory_percent")) == 1  # memory_pressure
            assert {row[0]["mount"] for row in window("gauge_window", "disk_used_percent")} >= {"/"}  # disk_filling
            assert len(window("counter_window", "swap_%_bytes_total")) == 2  # swap_activity
            assert window("counter_window", "net_errors_%_total")  # nic_errors

            # Same machine, so the translated figures are psutil's (monitorkit's collectors' source).
            def latest(metric: str, extra: str = "") -> float:
                rows = store.query(f"SELECT value FROM latest WHERE name = ? AND host = 'node-a'{extra}", [metric])
                assert len(rows) == 1, (metric, rows)
                return float(rows[0][0])

            assert latest("memory_total_bytes") == psutil.virtual_memory().total
            assert latest("swap_total_bytes") == psutil.swap_memory().total
            assert latest("cpu_count") == psutil.cpu_count()
            assert latest("disk_total_bytes", " AND labels['mount'] = '/'") == psutil.disk_usage("/").total
            assert 0.0 <= latest("cpu_percent", " AND labels['cpu'] IS NULL") <= 100.0
