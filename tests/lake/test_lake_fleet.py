"""Real host owners (child processes) shipping to one lake: three hosts, a PostgreSQL outage, SIGKILLs mid-ship."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from lake_helpers import (
    CHECKSUM,
    assert_contiguous,
    local_table,
    per_host,
    ship_log,
    shipped_through,
    spawn_host,
    stop_host,
)
from shared_helpers import wait_until
from store_helpers import isolated_settings

from monitorkit.lake.catalog import open_lake
from monitorkit.lake.config import LakeConfig
from monitorkit.lake.errors import LakeError
from monitorkit.lake.hub import Hub
from monitorkit.lake.schema import current_version
from monitorkit.owner.connect import connect
from monitorkit.samples import HOST, utcnow

pytestmark = pytest.mark.slow


def _hub_settings(cfg: LakeConfig, folder: Path):
    return isolated_settings(**{"lake.catalog": cfg.catalog, "lake.data_path": cfg.data_path,
                                "hub.db": str(folder / "hub.duckdb"), "rules.defaults": False, "rules.dirs": []})


def _batches(cfg: LakeConfig, host: str) -> int:
    try:
        con = open_lake(cfg, read_only=True)
    except LakeError:
        return 0  # no host has created the lake yet
    try:
        return len(ship_log(con, host)) if current_version(con) else 0  # the hosts create the tables
    finally:
        con.close()


def test_three_hosts_ship_exactly_their_rows_to_the_hub(tmp_path: Path, lake_cfg: LakeConfig) -> None:
    hosts = ["host-a", "host-b", "host-c"]
    procs = [spawn_host(tmp_path, lake_cfg, host) for host in hosts]
    try:
        assert wait_until(lambda: all(_batches(lake_cfg, h) >= 3 for h in hosts), timeout=40, every=0.5)
    finally:
        for proc in procs:
            stop_host(proc)
    with Hub(_hub_settings(lake_cfg, tmp_path)) as hub:
        fleet = {h: (int(n), int(c)) for h, n, c in hub.store.query(CHECKSUM.format(where=""))}
        for host in hosts:
            assert_contiguous(ship_log(hub.lake, host))
    assert sorted(fleet) == hosts
    for host in hosts:
        local = local_table(tmp_path, host)
        assert fleet[host] == local[HOST] and local[HOST][0] > 0


def _lake_health(folder: Path, host: str) -> tuple[str, str] | None:
    con = connect(folder / f"{host}.duckdb")
    try:
        rows = con.execute("SELECT status, reason FROM heartbeats WHERE component = 'lake'").fetchall()
    finally:
        con.close()
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def _log(folder: Path, host: str) -> str:
    return (folder / f"{host}.log").read_text()[-5000:]


def _stacks(folder: Path, hosts: list[str], procs: list[subprocess.Popen[str]]) -> str:
    for proc in procs:
        proc.send_signal(signal.SIGUSR1)
    time.sleep(1)  # the children write their stacks to their logs
    return "\n".join(f"{h}: {_lake_health(folder, h)}\n{_log(folder, h)}" for h in hosts)


def _local_rows(folder: Path, host: str) -> int:
    con = connect(folder / f"{host}.duckdb")
    try:
        return int(con.execute("SELECT count(*) FROM samples_raw").fetchall()[0][0])
    finally:
        con.close()


def test_a_postgres_outage_degrades_health_and_the_lake_catches_up(
    tmp_path: Path, lake_cfg: LakeConfig, postgres,
) -> None:
    hosts = ["host-a", "host-b"]
    procs = [spawn_host(tmp_path, lake_cfg, host) for host in hosts]
    try:
        assert wait_until(lambda: all(_batches(lake_cfg, h) >= 2 for h in hosts), timeout=30, every=0.5)
        postgres.stop("immediate")
        down = utcnow()
        try:
            before = {h: _local_rows(tmp_path, h) for h in hosts}
            assert wait_until(lambda: all((_lake_health(tmp_path, h) or ("", ""))[0] == "degraded" for h in hosts),
                              timeout=20, every=0.5)
            for host in hosts:
                _, reason = _lake_health(tmp_path, host) or ("", "")
                assert reason.startswith("lake unreachable since "), reason
            time.sleep(max(0.0, 30 - (utcnow() - down).total_seconds()))  # an outage of about 30 s, hosts running
            assert all(_local_rows(tmp_path, h) > before[h] + 20 * 4 * 20 for h in hosts)  # still collecting
        finally:
            postgres.start()
        up = utcnow()
        assert wait_until(lambda: all((_lake_health(tmp_path, h) or ("", ""))[0] == "ok" for h in hosts),
                          timeout=30, every=0.5), _stacks(tmp_path, hosts, procs)
        con = open_lake(lake_cfg, read_only=True)
        assert all((shipped_through(con, h) or down) > up - replace(lake_cfg).lateness for h in hosts)
        con.close()
    finally:
        for proc in procs:
            stop_host(proc)
    con = open_lake(lake_cfg, read_only=True)
    fleet = per_host(con)
    for host in hosts:
        assert_contiguous(ship_log(con, host))
        assert fleet[host] == local_table(tmp_path, host)[HOST]


def test_sigkill_mid_ship_ten_times_loses_and_duplicates_nothing(tmp_path: Path, lake_cfg: LakeConfig) -> None:
    rng = random.Random(16)
    host = "host-k"
    for _ in range(10):
        proc = spawn_host(tmp_path, lake_cfg, host)
        shipped = _batches(lake_cfg, host)
        # Wait for one ship of this run, then kill at a random point of the next ones.
        def shipped_again(n: int = shipped) -> bool:
            return _batches(lake_cfg, host) > n

        assert wait_until(shipped_again, timeout=20, every=0.1)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.kill()
        proc.wait(10)
    stop_host(spawn_host(tmp_path, lake_cfg, host))
    con = open_lake(lake_cfg, read_only=True)
    batches = ship_log(con, host)
    assert len(batches) >= 11
    assert_contiguous(batches)
    assert per_host(con)[host] == local_table(tmp_path, host)[HOST]
    dup = con.execute("SELECT count(*) FROM (SELECT series_id, time FROM samples_raw GROUP BY ALL HAVING count(*) > 1)")
    assert dup.fetchone() == (0,)
