"""`monitorkit sql --lake` and `monitorkit hub --once` against a real lake."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from cli_helpers import invoke
from lake_helpers import ticks
from store_helpers import isolated_settings

from monitorkit.lake.config import LakeConfig
from monitorkit.lake.ship import Shipper
from monitorkit.lake.source import LocalSource
from monitorkit.owner.schema import SCHEMA
from monitorkit.samples import utcnow
from monitorkit.store import Store


def _shipped(tmp_path: Path, cfg: LakeConfig) -> None:
    now = utcnow().replace(microsecond=0)
    with Store(tmp_path / "host.duckdb", settings=isolated_settings(), schema=SCHEMA) as store:
        store.write(ticks(now - timedelta(minutes=2), 100, series=3))
        store.flush()
        shipper = Shipper(cfg, LocalSource(store.cursor))
        shipper.ship(now)
        shipper.close()


def _config(tmp_path: Path, cfg: LakeConfig) -> Path:
    path = tmp_path / "monitorkit.toml"
    path.write_text(f'[lake]\ncatalog = "{cfg.catalog}"\ndata_path = "{cfg.data_path}"\n'
                    f'[hub]\ndb = "{tmp_path / "hub.duckdb"}"\n[rules]\ndefaults = false\ndirs = []\n')
    return path


def test_sql_lake_queries_every_host(tmp_path: Path, lake_cfg: LakeConfig) -> None:
    _shipped(tmp_path, lake_cfg)
    query = "SELECT host, count(*) AS n FROM samples GROUP BY host"
    named = invoke(["sql", "--lake", lake_cfg.catalog, query, "--format", "json"])
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout) == [{"host": "host-a", "n": 300}]
    from_config = invoke(["sql", query, "--lake", "--config", str(_config(tmp_path, lake_cfg)), "--format", "csv"])
    assert from_config.exit_code == 0, from_config.output
    assert from_config.stdout.splitlines() == ['"host","n"', '"host-a",300']


def test_sql_lake_refuses_a_query_where_the_catalog_goes(lake_cfg: LakeConfig) -> None:
    result = invoke(["sql", "--lake", "SELECT 1", "FROM samples"])
    assert result.exit_code == 2 and "put --lake after the query" in result.output


def test_hub_once_rolls_up_and_maintains(tmp_path: Path, lake_cfg: LakeConfig) -> None:
    _shipped(tmp_path, lake_cfg)
    result = invoke(["hub", "--once", "--config", str(_config(tmp_path, lake_cfg))])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert {name: job["runs"] for name, job in status.items()} == {"rollup": 1, "maintenance": 1, "retention": 1}
    assert all(job["error"] is None for job in status.values())


def test_hub_without_a_lake_says_what_to_set(tmp_path: Path) -> None:
    config = tmp_path / "monitorkit.toml"
    config.write_text("[store]\npath = 'x.duckdb'\n")
    result = invoke(["hub", "--once", "--config", str(config)])
    assert result.exit_code == 1 and "set [lake] catalog" in result.output
