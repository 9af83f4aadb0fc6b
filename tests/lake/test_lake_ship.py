"""Shipping a host's store to a real lake: exactly once across failures, restarts and lost commit answers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from lake_helpers import lake_rows, per_host, ticks
from store_helpers import isolated_settings

from monitorkit.instrument.executions import Execution
from monitorkit.lake.catalog import open_lake
from monitorkit.lake.config import LakeConfig
from monitorkit.lake.errors import LakeError, LakeUnreachableError, ShipperClashError
from monitorkit.lake.ship import Shipper
from monitorkit.lake.source import LocalSource
from monitorkit.owner.ingest import write_executions
from monitorkit.owner.schema import SCHEMA
from monitorkit.samples import HOST, utcnow
from monitorkit.store import Store


@pytest.fixture
def host_store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "host.duckdb", settings=isolated_settings(), schema=SCHEMA) as store:
        yield store


def _now():
    return utcnow().replace(microsecond=0)


def test_ships_every_row_once_with_the_host_renamed(host_store: Store, lake_cfg: LakeConfig) -> None:
    now = _now()
    host_store.write(ticks(now - timedelta(minutes=5), 280))
    host_store.flush()
    shipper = Shipper(lake_cfg, LocalSource(host_store.cursor))
    report = shipper.ship(now)
    assert report.caught_up and report.samples == 280 * 4 and report.series == 4
    again = shipper.ship(now)
    assert again.samples == 0
    lake = shipper.connection()
    local = per_host(host_store, "WHERE time < ?", [now - lake_cfg.lateness])
    assert per_host(lake) == {"host-a": local[HOST]}
    # A second shipper (a restart) reads the watermark back and ships nothing twice.
    shipper.close()
    restarted = Shipper(lake_cfg, LocalSource(host_store.cursor))
    assert restarted.ship(now).samples == 0
    assert lake_rows(restarted.connection(), "host-a") == 280 * 4


def test_a_failure_before_commit_ships_nothing_and_the_retry_ships_all(host_store: Store, lake_cfg: LakeConfig) -> None:
    now = _now()
    host_store.write(ticks(now - timedelta(minutes=3), 150))
    host_store.flush()
    real = open_lake

    class Broken:
        """A lake connection whose INSERT INTO ship_log fails: the batch was written but not its watermark."""

        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con = con

        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("INSERT INTO ship_log"):
                raise duckdb.IOException("Unable to connect to Postgres: the catalog went away")
            return self.con.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self.con, name)

    shipper = Shipper(lake_cfg, LocalSource(host_store.cursor), connect=lambda cfg: Broken(real(cfg)))  # type: ignore[arg-type, return-value]
    with pytest.raises(LakeUnreachableError, match="did not answer"):
        shipper.ship(now)
    check = open_lake(lake_cfg)
    assert lake_rows(check, "host-a") == 0
    fixed = Shipper(lake_cfg, LocalSource(host_store.cursor))
    assert fixed.ship(now).samples == 150 * 4
    assert lake_rows(check, "host-a") == 150 * 4


def test_a_lost_commit_answer_is_not_shipped_twice(host_store: Store, lake_cfg: LakeConfig) -> None:
    now = _now()
    host_store.write(ticks(now - timedelta(minutes=3), 120))
    host_store.flush()
    real = open_lake

    class LostAnswer:
        """A connection whose first shipping COMMIT succeeds on the server but raises on the client."""

        lost = False

        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con = con

        def execute(self, sql: str, *args: object) -> object:
            out = self.con.execute(sql, *args)
            if sql.startswith("INSERT INTO ship_log"):
                self.shipping = True
            if sql == "COMMIT" and getattr(self, "shipping", False) and not LostAnswer.lost:
                LostAnswer.lost = True
                raise duckdb.IOException("server closed the connection unexpectedly")
            return out

        def __getattr__(self, name: str) -> object:
            return getattr(self.con, name)

    shipper = Shipper(lake_cfg, LocalSource(host_store.cursor), connect=lambda cfg: LostAnswer(real(cfg)))  # type: ignore[arg-type, return-value]
    with pytest.raises(LakeUnreachableError):
        shipper.ship(now)
    assert shipper.ship(now).samples == 0  # the watermark was read back: the batch is in the lake
    assert lake_rows(shipper.connection(), "host-a") == 120 * 4


def test_catch_up_goes_in_max_batch_steps(host_store: Store, lake_cfg: LakeConfig) -> None:
    now = _now()
    host_store.write(ticks(now - timedelta(minutes=30), 29 * 60, series=2))
    host_store.flush()
    cfg = replace(lake_cfg, max_batch=timedelta(minutes=5))
    report = Shipper(cfg, LocalSource(host_store.cursor)).ship(now)
    assert report.batches >= 6 and report.caught_up
    lake = open_lake(cfg)
    assert lake.execute("SELECT count(*), max(upper) FROM ship_log").fetchone() == (report.batches, report.watermark)
    local = per_host(host_store, "WHERE time < ?", [report.watermark])
    assert per_host(lake) == {"host-a": local[HOST]}


def test_a_second_owner_under_the_same_name_is_refused(host_store: Store, lake_cfg: LakeConfig) -> None:
    now = _now()
    host_store.write(ticks(now - timedelta(minutes=2), 60))
    host_store.flush()
    first = Shipper(lake_cfg, LocalSource(host_store.cursor))
    second = Shipper(lake_cfg, LocalSource(host_store.cursor))
    second.sync()
    first.ship(now)
    with pytest.raises(ShipperClashError, match="another owner ships under the same name"):
        second.ship(now + timedelta(seconds=30))


def test_tool_runs_ship_once_even_when_they_arrive_late(host_store: Store, lake_cfg: LakeConfig) -> None:
    now = _now()
    host_store.write(ticks(now - timedelta(minutes=2), 100, series=1))

    def run(i: int, ended: object) -> Execution:
        return Execution(f"run-{i}", "backup", ended - timedelta(seconds=2), 2.0, "ok", None, None, {}, HOST, 1)  # type: ignore[arg-type, operator]

    write_executions(host_store, [run(1, now - timedelta(minutes=1)), run(2, now - timedelta(seconds=50))]).result()
    host_store.flush()
    shipper = Shipper(lake_cfg, LocalSource(host_store.cursor))
    assert shipper.ship(now).executions == 2
    # A run that ended before the watermark reaches the owner late: shipped within the lookback, once.
    write_executions(host_store, [run(3, now - timedelta(minutes=1, seconds=30))]).result()
    host_store.write(ticks(now, 30, series=1))
    host_store.flush()
    assert shipper.ship(now + timedelta(seconds=40)).executions == 1
    lake = shipper.connection()
    assert lake.execute("SELECT run_id, host FROM executions ORDER BY run_id").fetchall() == [
        ("run-1", "host-a"), ("run-2", "host-a"), ("run-3", "host-a")]


def test_an_unreachable_catalog_is_a_typed_error(host_store: Store, lake_cfg: LakeConfig) -> None:
    cfg = replace(lake_cfg, catalog="postgres:host=127.0.0.1 port=1 user=postgres dbname=nothing")
    with pytest.raises(LakeUnreachableError, match="did not answer"):
        Shipper(cfg, LocalSource(host_store.cursor)).ship(_now())


def test_a_missing_data_path_says_what_to_set(lake_cfg: LakeConfig) -> None:
    with pytest.raises(LakeError, match="set \\[lake\\] data_path"):
        open_lake(replace(lake_cfg, data_path=""))
