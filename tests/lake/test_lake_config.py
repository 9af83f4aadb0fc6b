"""[lake] and [hub] settings, series ids, and the ship service staying idle without a lake (no PostgreSQL needed)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from store_helpers import isolated_settings

from monitorkit.errors import ConfigError
from monitorkit.lake.config import hub_config, lake_config
from monitorkit.lake.schema import series_id
from monitorkit.lake.service import ShipService
from monitorkit.samples import HOST


def test_no_lake_section_means_no_lake() -> None:
    assert lake_config(isolated_settings()) is None


def test_defaults_and_the_uri() -> None:
    cfg = lake_config(isolated_settings(**{"lake.catalog": "postgres:host=db dbname=fleet password=s3cret"}))
    assert cfg is not None
    assert cfg.ship_interval == timedelta(seconds=30) and cfg.lateness == timedelta(seconds=15) and cfg.host == HOST
    assert cfg.uri == "ducklake:postgres:host=db dbname=fleet password=s3cret connect_timeout=10"
    assert "s3cret" not in cfg.display and "password=***" in cfg.display
    assert hub_config(isolated_settings()).rules_every == timedelta(seconds=10)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"lake.catalog": "metadata.ducklake"}, "must be a PostgreSQL connection string"),
    ({"lake.catalog": "postgres:dbname=f", "lake.lateness": "2s", "store.flush_interval": "5s"},
     "must be longer than store.flush_interval"),
    ({"lake.catalog": "postgres:dbname=f", "lake.ship_interval": "0s"}, "ship_interval must be longer than 0"),
    ({"lake.catalog": "postgres:dbname=f", "lake.ship_every": "1m"}, "unknown setting ship_every"),
    ({"lake.catalog": "postgres:dbname=f", "lake.max_batch": "soon"}, "max_batch: invalid duration"),
])
def test_bad_settings_say_what_to_fix(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        lake_config(isolated_settings(**overrides))


def test_series_ids_are_stable_and_grouped_by_metric() -> None:
    a = series_id("web-1", "cpu_percent", {"cpu": "0"})
    assert a == series_id("web-1", "cpu_percent", {"cpu": "0"}) == 7586094622010148218  # never changes: ids are stored
    assert series_id("web-1", "cpu_percent", {"cpu": "0", "x": "1"}) == series_id("web-1", "cpu_percent", {"x": "1", "cpu": "0"})
    assert len({series_id(h, "cpu_percent", {}) for h in ("a", "b", "c")}) == 3
    # The metric's hash leads: every cpu_percent series shares the top bits, another metric does not.
    assert series_id("a", "cpu_percent", {}) >> 39 == series_id("z", "cpu_percent", {"cpu": "9"}) >> 39
    assert series_id("a", "memory_used_bytes", {}) >> 39 != a >> 39
    assert 0 < a < 2**63


def test_the_ship_service_does_nothing_without_a_lake() -> None:
    service = ShipService()
    service.start(SimpleNamespace(settings=isolated_settings()))  # type: ignore[arg-type]
    assert service.shipper is None and service._thread is None
    service.stop()
