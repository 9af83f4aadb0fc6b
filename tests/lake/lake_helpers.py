"""Shared pieces of the lake tests: a host store with canned samples, per-host counts and checksums."""

from __future__ import annotations

import itertools
import signal
import subprocess
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from shared_helpers import child_env
from store_helpers import PYTHON

from monitorkit.lake.config import LakeConfig
from monitorkit.samples import Sample
from monitorkit.store import Store

# Count and an order-free checksum of (series, time, value) per host: equal means the same rows.
CHECKSUM = """
    SELECT host, count(*) AS n,
           sum(hash(name, labels::VARCHAR, epoch_us(time), value) % 1000000007) AS checksum
    FROM samples {where} GROUP BY host ORDER BY host"""


def per_host(con: Any, where: str = "", params: Sequence[object] = ()) -> dict[str, tuple[int, int]]:
    """Return ``{host: (rows, checksum)}`` of the ``samples`` view on ``con``."""
    sql = CHECKSUM.format(where=where)
    rows = con.query(sql, list(params)) if isinstance(con, Store) else con.execute(sql, list(params)).fetchall()
    return {str(h): (int(n), int(c)) for h, n, c in rows}


def ticks(start: datetime, seconds: int, series: int = 4, name: str = "cpu_percent", value: float = 10.0) -> list[Sample]:
    """Return ``seconds`` one-second ticks of ``series`` series of ``name`` from ``start``."""
    return [Sample(start + timedelta(seconds=s), name, {"cpu": str(c)}, value + (s % 7) + c)
            for s in range(seconds) for c in range(series)]


def lake_rows(con: duckdb.DuckDBPyConnection, host: str) -> int:
    """Return how many samples of ``host`` the lake holds."""
    row = con.execute("SELECT count(*) FROM samples WHERE host = ?", [host]).fetchone()
    return int(row[0]) if row else 0


# A host owner in a child process: a light canned collector, rules off, shipping every 0.5 s.
HOST_CHILD = """
import faulthandler, signal, sys, threading
faulthandler.register(signal.SIGUSR1)  # a test that times out asks for every thread's stack
from monitorkit.config import DEFAULTS, Settings
from monitorkit.owner.runtime import run_owner
from monitorkit.samples import Sample
import copy

db, catalog, data_path, host = sys.argv[1:5]

class Canned:
    name = "canned"
    interval = 0.25

    def collect(self, now):
        return [Sample(now, "cpu_percent", {"cpu": str(c)} if c else {}, float(now.timestamp() % 97 + c))
                for c in range(20)]

settings = Settings(copy.deepcopy(DEFAULTS), {}).with_overrides({
    "store.path": db, "store.flush_interval": "0.1s", "collect.interval": 0.25,
    "rules.defaults": False, "rules.dirs": [],
    "lake.catalog": catalog, "lake.data_path": data_path, "lake.host": host,
    "lake.ship_interval": "0.5s", "lake.lateness": "0.5s", "lake.connect_timeout": "2s",
})
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
run_owner(settings, stop, collectors=[Canned()], on_ready=lambda ctx: print("READY", flush=True))
print("STOPPED", flush=True)
"""


def spawn_host(folder: Path, cfg: LakeConfig, host: str) -> subprocess.Popen[str]:
    """Start a host owner of ``folder/<host>.duckdb`` shipping to ``cfg``'s lake as ``host``; wait until it runs."""
    log = (folder / f"{host}.log").open("a")
    proc = subprocess.Popen(
        [PYTHON, "-c", HOST_CHILD, str(folder / f"{host}.duckdb"), cfg.catalog, cfg.data_path, host],
        stdout=subprocess.PIPE, stderr=log, text=True, env=child_env())
    log.close()
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY"):
        proc.kill()
        raise AssertionError(f"host {host} did not start: {(folder / f'{host}.log').read_text()[-3000:]}")
    return proc


def stop_host(proc: subprocess.Popen[str], timeout: float = 30) -> None:
    """SIGTERM a host owner and wait for its clean exit (its last batch shipped)."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout) == 0


def ship_log(con: duckdb.DuckDBPyConnection, host: str) -> list[tuple[Any, Any]]:
    """Return (lower, upper) of every batch ``host`` shipped, in order."""
    return con.execute("SELECT lower, upper FROM ship_log WHERE shipper = ? ORDER BY upper", [host]).fetchall()


def assert_contiguous(batches: list[tuple[Any, Any]]) -> None:
    """Check that each batch starts where the one before it ended: no gap, no overlap."""
    assert batches, "nothing was shipped"
    for (_, before), (lower, _) in itertools.pairwise(batches):
        assert lower == before, f"batch starting {lower} does not follow the one ending {before}"


def shipped_through(con: duckdb.DuckDBPyConnection, host: str) -> datetime | None:
    """Return ``host``'s watermark in the lake."""
    row = con.execute("SELECT max(upper) FROM ship_log WHERE shipper = ?", [host]).fetchone()
    return row[0] if row else None


def local_table(folder: Path, host: str) -> dict[str, tuple[int, int]]:
    """Return per-host rows and checksum of a stopped host's own file."""
    con = duckdb.connect(str(folder / f"{host}.duckdb"), read_only=True)
    try:
        return per_host(con)
    finally:
        con.close()


def alerting_to(url: str) -> dict[str, Any]:
    """Return an [alerting] section sending every alert at once to the webhook at ``url``."""
    return {"alerting.receiver": "hook", "alerting.group_wait": "0s", "alerting.group_interval": "0s",
            "alerting.receivers": [{"name": "hook", "channels": [{"type": "webhook", "url": url, "format": "json"}]}]}
