"""The real Debian prometheus-node-exporter scraped by an owner for 30 s; stopped, it is down and target_down fires."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from interop_helpers import copy_rule, node_exporter, owner_thread, stop_process, wait_for
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
