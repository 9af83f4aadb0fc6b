"""The hub over a real lake: fleet rules with a host label to a real webhook, rollups per host, maintenance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from lake_helpers import alerting_to, per_host
from receivers import receiver
from store_helpers import isolated_settings

from monitorkit.config import Settings
from monitorkit.lake.config import LakeConfig
from monitorkit.lake.connect import connect_lake
from monitorkit.lake.hub import Hub
from monitorkit.lake.maintenance import floor_to
from monitorkit.lake.ship import Shipper
from monitorkit.lake.source import LocalSource
from monitorkit.owner.schema import SCHEMA
from monitorkit.samples import HOST, Sample, utcnow
from monitorkit.store import Store

HOSTS = ("host-a", "host-b", "host-c")
CPU_RULE = """
SELECT host, round(avg, 1) AS value
FROM gauge_window('cpu_percent', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE labels['cpu'] IS NULL AND avg > 90
"""


def lake_settings(cfg: LakeConfig, tmp_path: Path, settings: Settings | None = None, **more: Any) -> Settings:
    base = settings or isolated_settings()
    return base.with_overrides({"lake.catalog": cfg.catalog, "lake.data_path": cfg.data_path,
                                "hub.db": str(tmp_path / "hub.duckdb"), **more})


@pytest.fixture
def fleet(tmp_path: Path, lake_cfg: LakeConfig) -> Iterator[dict[str, tuple[Store, Shipper]]]:
    """Three host stores, each with a shipper to the same lake under its own name."""
    with ExitStack() as stack:
        out = {}
        for host in HOSTS:
            store = stack.enter_context(Store(tmp_path / f"{host}.duckdb", settings=isolated_settings(), schema=SCHEMA))
            shipper = Shipper(replace(lake_cfg, host=host), LocalSource(store.cursor))
            stack.callback(shipper.close)
            out[host] = (store, shipper)
        yield out


def cpu(start: datetime, seconds: int, value: float, step: int = 1) -> list[Sample]:
    return [Sample(start + timedelta(seconds=s), "cpu_percent", {}, value + (s % 3)) for s in range(0, seconds, step)]


def test_a_fleet_rule_fires_with_the_host_label_and_notifies_a_webhook(
    tmp_path: Path, lake_cfg: LakeConfig, fleet: dict[str, tuple[Store, Shipper]],
) -> None:
    now = utcnow().replace(microsecond=0)
    for host, (store, shipper) in fleet.items():
        store.write(cpu(now - timedelta(seconds=90), 90, 95.0 if host == "host-b" else 10.0))
        store.flush()
        shipper.ship(now)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "fleet_cpu_high.sql").write_text(
        "-- name: fleet_cpu_high\n-- kind: resource\n-- severity: warning\n"
        "-- summary: CPU on {{ host }} at {{ value }}%\n" + CPU_RULE)
    with receiver() as hook:
        settings = lake_settings(lake_cfg, tmp_path, **{"rules.dirs": [str(rules)], "rules.defaults": False},  # type: ignore[arg-type]
                                 **alerting_to(hook.url))
        with Hub(settings) as hub:
            hub.evaluate()
            bodies = hook.wait_for(1)
            firing = hub.store.query("SELECT labels, state FROM alerts WHERE rule = 'fleet_cpu_high'")
    assert [(dict(labels)["host"], state) for labels, state in firing] == [("host-b", "firing")]
    assert len(bodies) == 1
    alerts = bodies[0]["alerts"]
    assert [a["labels"]["host"] for a in alerts] == ["host-b"]
    assert alerts[0]["annotations"]["summary"].startswith("CPU on host-b at 9")


def test_rollups_follow_each_hosts_watermark_and_match_the_hosts_own(
    tmp_path: Path, lake_cfg: LakeConfig, fleet: dict[str, tuple[Store, Shipper]],
) -> None:
    now = utcnow().replace(microsecond=0)
    start = floor_to(now - timedelta(hours=2, minutes=30), "1h")
    for i, (store, shipper) in enumerate(fleet.values()):
        store.write(cpu(start, 3 * 3600, 10.0 * (i + 1), step=10))
        store.flush()
        # host-c is behind: it has shipped only the first hour and a half.
        shipper.ship(start + timedelta(minutes=90, seconds=15) if i == 2 else now)
        store.rollup(now)
    with Hub(lake_settings(lake_cfg, tmp_path)) as hub:
        for _ in range(3):
            hub.rollup()  # more passes find nothing more to do
        lake = hub.lake
        state = dict(((t, h), w) for t, h, w in lake.execute(
            "SELECT tier, shipper, max(watermark) FROM rollup_state GROUP BY ALL").fetchall())
        assert state[("1m", "host-c")] == start + timedelta(minutes=90)
        assert state[("1h", "host-c")] == start + timedelta(hours=1)
        sql = ("SELECT host, count(*), sum(sum), sum(count) FROM rollup_{tier} WHERE bucket >= ? AND bucket < ? "
               "GROUP BY host ORDER BY host")
        for tier, upper in (("1m", start + timedelta(minutes=90)), ("1h", start + timedelta(hours=1))):
            got = lake.execute(sql.format(tier=tier), [start, upper]).fetchall()
            want = []
            for host, (store, _) in fleet.items():
                row = store.query(sql.format(tier=tier), [start, upper])
                want.append((host, *row[0][1:]))
            assert got == want
            assert got[0][1] > 0


def test_maintenance_merges_files_and_keeps_every_row(
    tmp_path: Path, lake_cfg: LakeConfig, fleet: dict[str, tuple[Store, Shipper]],
) -> None:
    now = utcnow().replace(microsecond=0)
    store, shipper = fleet["host-a"]
    store.write(cpu(now - timedelta(minutes=20), 20 * 60, 50.0))
    store.flush()
    for minute in range(19, 0, -1):
        shipper.ship(now - timedelta(minutes=minute))  # one small file per ship
    settings = lake_settings(lake_cfg, tmp_path, **{"hub.expire_snapshots_after": "1ms",  # type: ignore[arg-type]
                                                    "hub.cleanup_files_after": "1ms"})
    reader = connect_lake(settings=settings)
    before = per_host(reader)
    files = lambda: reader.execute("SELECT count(*) FROM ducklake_list_files('lake', 'samples_raw')").fetchone()[0]  # type: ignore[index]  # noqa: E731
    parquet = lambda: len(list(Path(lake_cfg.data_path).rglob("*.parquet")))  # noqa: E731
    assert files() >= 15
    on_disk = parquet()
    with Hub(settings) as hub:
        done = hub.maintain()
    reader.close()
    reader = connect_lake(settings=settings)
    assert done.merged >= 1 and done.expired >= 1
    assert files() == 1
    assert parquet() < on_disk
    assert per_host(reader) == before


def test_retention_deletes_past_each_tier_and_keeps_the_watermarks(
    tmp_path: Path, lake_cfg: LakeConfig, fleet: dict[str, tuple[Store, Shipper]],
) -> None:
    now = utcnow().replace(microsecond=0)
    store, shipper = fleet["host-a"]
    store.write(cpu(now - timedelta(hours=3), 3 * 3600, 20.0, step=30))
    store.flush()
    shipper.ship(now)
    with Hub(lake_settings(lake_cfg, tmp_path, **{"retention.raw": "1h", "hub.ship_log_keep": "1ms"})) as hub:  # type: ignore[arg-type]
        deleted = hub.enforce_retention(now)
        oldest = hub.lake.execute("SELECT min(time) FROM samples_raw").fetchone()[0]  # type: ignore[index]
        watermark = hub.lake.execute("SELECT max(upper) FROM ship_log WHERE shipper = 'host-a'").fetchone()[0]  # type: ignore[index]
    assert deleted["raw"] == 240  # 2 h of samples every 30 s
    assert oldest >= now - timedelta(hours=1)
    assert watermark == shipper.watermark


def test_connect_lake_gives_the_store_views_over_every_host(
    tmp_path: Path, lake_cfg: LakeConfig, fleet: dict[str, tuple[Store, Shipper]],
) -> None:
    import monitorkit

    now = utcnow().replace(microsecond=0)
    for store, shipper in fleet.values():
        store.write(cpu(now - timedelta(seconds=60), 40, 30.0))
        store.flush()
        shipper.ship(now)
    con = monitorkit.connect(lake=lake_cfg.catalog)
    assert [r[0] for r in con.execute("SELECT DISTINCT host FROM latest ORDER BY host").fetchall()] == list(HOSTS)
    rng = con.execute("SELECT DISTINCT host FROM metric_range('cpu_percent', ?, ?, step := 10) ORDER BY host",
                      [now - timedelta(minutes=5), now]).fetchall()
    assert [r[0] for r in rng] == list(HOSTS)
    assert con.execute("SELECT count(*) FROM fleet_hosts").fetchone() == (3,)
    with pytest.raises(duckdb.Error, match=r"(?i)read.only"):
        con.execute("DELETE FROM samples_raw")
    assert HOST not in {r[0] for r in con.execute("SELECT host FROM series").fetchall()}
