"""Fleet benchmark: N simulated hosts ship 1,500 series at 1 s to one DuckLake with a real PostgreSQL catalog.

    .venv/bin/python benchmarks/fleet_bench.py [--hosts 10] [--interval 10] [--seconds 30]
                                               [--history-series 150] [--catalog postgres:...]

Each host is a thread running the real Shipper (MERGE of series, sorted INSERT of samples,
ship_log watermark, one lake transaction per batch) over a synthetic source. Prints ship
latency p50/p95 (the lake transaction), catalog commits/s, lake bytes per sample after the
hub's maintenance, and the time of ``metric_range`` for 1 h and 30 d of one metric across
all hosts (over a history of ``--history-series`` series per host, scaled to 1,500 too).
Without ``--catalog`` it starts its own PostgreSQL (Debian's initdb) in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lake"))

from postgres_server import Postgres, start_postgres

from monitorkit.lake.catalog import open_lake
from monitorkit.lake.config import LakeConfig
from monitorkit.lake.errors import LakeConflictError, LakeError
from monitorkit.lake.maintenance import maintain, rollup
from monitorkit.lake.schema import ensure_schema, series_id
from monitorkit.lake.ship import Shipper

METRIC = "cpu_percent"
LABELS_PER_METRIC = 10


class SyntheticSource:
    """A host's store, made up: ``series`` series sampled every second since ``start``."""

    def __init__(self, host: str, series: int, start: datetime) -> None:
        self.host = host
        self.start = start
        names = [METRIC] + [f"bench_metric_{k}" for k in range(series // LABELS_PER_METRIC)]
        self._series = [(i + 1, host, names[i // LABELS_PER_METRIC], {"i": str(i % LABELS_PER_METRIC)}, start)
                        for i in range(series)]
        self._rng = np.random.default_rng(abs(hash(host)) % 2**32)

    def samples(self, lower: datetime, upper: datetime) -> pa.Table:
        first, last = int(np.ceil(lower.timestamp())), int(np.ceil(upper.timestamp()))
        seconds = np.arange(first, last, dtype=np.int64)
        n = len(self._series)
        times = np.repeat(seconds * 1_000_000, n)
        ids = np.tile(np.arange(1, n + 1, dtype=np.int32), len(seconds))
        # Gauges with one decimal, as psutil reports them: they compress like real ones.
        values = np.round(50 + 20 * np.sin(times / 6e7 + ids) + self._rng.normal(0, 1, len(ids)), 1)
        return pa.table({"time": pa.array(times, pa.timestamp("us", "UTC")), "series_id": ids, "value": values})

    def series(self) -> list[tuple[int, str, str, dict[str, str], datetime]]:
        return self._series

    def executions(self, lower: datetime | None, upper: datetime) -> pa.Table:
        return pa.table({})

    def oldest(self) -> datetime | None:
        return self.start


@dataclass
class HostStats:
    """What one simulated host saw."""

    latencies: list[float] = field(default_factory=list)
    samples: int = 0
    conflicts: int = 0
    errors: int = 0
    error: str = ""


def run_host(cfg: LakeConfig, source: SyntheticSource, base: duckdb.DuckDBPyConnection, interval: float,
             phase: float, until: float, stats: HostStats) -> None:
    def connect(_: LakeConfig) -> duckdb.DuckDBPyConnection:
        cur = base.cursor()
        cur.execute("USE lake")
        return cur

    shipper = Shipper(cfg, source, connect=connect, local_host=source.host)
    time.sleep(phase)
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            report = shipper.ship(datetime.now(UTC))
            if report.batches:
                stats.latencies.append(shipper.last_batch_seconds)
            stats.samples += report.samples
        except LakeConflictError:
            stats.conflicts += 1
        except LakeError as exc:
            stats.errors += 1
            stats.error = str(exc)[:300]
        time.sleep(max(0.0, min(interval - (time.monotonic() - started), until - time.monotonic())))
    shipper.close()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def write_history(con: duckdb.DuckDBPyConnection, hosts: int, series: int, end: datetime) -> tuple[int, int]:
    """Append 1 h of raw samples and 30 d of 1 m rollups before ``end``, time-ordered as the hub leaves them."""
    ids: list[int] = []
    for h in range(hosts):
        host = f"h{h:03d}"
        ids += [series_id(host, METRIC, {"i": str(i)}) for i in range(LABELS_PER_METRIC)]
        ids += [series_id(host, f"history_metric_{k}", {}) for k in range(max(0, series - LABELS_PER_METRIC))]
    start = end - timedelta(hours=1)
    for minute in range(0, 60, 5):
        # As merged ship files hold them: 30 s batches one after another, each sorted by (series, time).
        con.execute(
            "INSERT INTO samples_raw SELECT ?::TIMESTAMPTZ + to_seconds(s), id, round(50 + 20 * sin(s / 60 + id % 7), 1) "
            "FROM range(?, ?) r(s), (SELECT unnest(?::BIGINT[]) AS id) ORDER BY s // 30, id, s",
            [start, minute * 60, minute * 60 + 300, ids])
    thin = ids[:: max(1, len(ids) // max(1, len(ids) // 10))]  # 30 d of 1 m rows for a tenth of the series
    day0 = end - timedelta(days=30)
    for day in range(30):
        # As the hub's rollups leave them: one pass a minute, each sorted by series.
        con.execute(
            "INSERT INTO samples_1m SELECT ?::TIMESTAMPTZ + to_minutes(m), id, 40, 60, 3000, 60, 50, "
            "?::TIMESTAMPTZ + to_minutes(m) FROM range(?, ?) r(m), (SELECT unnest(?::BIGINT[]) AS id) ORDER BY m, id",
            [day0, day0, day * 1440, day * 1440 + 1440, thin])
    hour0 = end - timedelta(days=30)
    con.execute(
        "INSERT INTO samples_1h SELECT ?::TIMESTAMPTZ + to_hours(h), id, 40, 60, 180000, 3600, 50, "
        "?::TIMESTAMPTZ + to_hours(h) FROM range(0, 720) r(h), (SELECT unnest(?::BIGINT[]) AS id) ORDER BY h, id",
        [hour0, hour0, thin])
    return len(ids), len(thin)


def timed(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        con.execute(sql, params).fetchall()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--series", type=int, default=1500, help="series per host (1 s each)")
    parser.add_argument("--interval", type=float, default=10.0, help="ship interval per host, seconds")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the hosts ship")
    parser.add_argument("--history-series", type=int, default=150, help="series per host in the query history")
    parser.add_argument("--row-group", type=int, default=0, help="set the lake's parquet_row_group_size first")
    parser.add_argument("--hosts-per-connection", type=int, default=10,
                        help="simulated hosts sharing one DuckDB instance (one PostgreSQL connection)")
    parser.add_argument("--no-queries", action="store_true", help="measure shipping only (no history, no queries)")
    parser.add_argument("--explain", action="store_true", help="print the plan of the 30 d query to stderr")
    parser.add_argument("--catalog", default=None, help="an existing DuckLake catalog (default: start a PostgreSQL)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="monitorkit-fleet-bench-"))
    server: Postgres | None = None
    try:
        if args.catalog is None:
            server = start_postgres()
            server.psql("CREATE DATABASE fleet")
            catalog = server.catalog("fleet")
        else:
            catalog = args.catalog
        cfg = LakeConfig(catalog=catalog, data_path=f"{folder}/lake/", lateness=timedelta(seconds=1),
                         max_batch=timedelta(minutes=10))
        (folder / "lake").mkdir()
        admin = open_lake(cfg, threads=os.cpu_count() or 1)
        ensure_schema(admin)
        if args.row_group:
            admin.execute(f"CALL lake.set_option('parquet_row_group_size', {int(args.row_group)})")
        row_group = admin.execute("SELECT value FROM ducklake_options('lake') WHERE option_name = 'parquet_row_group_size'")
        row_group_size = (row_group.fetchone() or ["default"])[0]
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=args.interval)
        # A DuckDB instance holds one PostgreSQL connection its cursors share: a real host has its own,
        # so the simulated hosts share one instance per --hosts-per-connection.
        bases = [open_lake(cfg, threads=1) for _ in range(-(-args.hosts // args.hosts_per_connection))]
        stats = [HostStats() for _ in range(args.hosts)]
        commits0 = _pg_commits(server)
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=run_host, args=(
            replace(cfg, host=f"h{h:03d}"), SyntheticSource(f"h{h:03d}", args.series, start),
            bases[h // args.hosts_per_connection], args.interval, args.interval * h / args.hosts, until, stats[h]))
            for h in range(args.hosts)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        commits1 = _pg_commits(server)
        latencies = [x for s in stats for x in s.latencies]
        shipped = sum(s.samples for s in stats)
        for base in bases:
            base.close()

        t1 = time.perf_counter()
        rollup(admin)
        done = maintain(admin, expire_after=timedelta(microseconds=1), cleanup_after=timedelta(microseconds=1))
        maint = time.perf_counter() - t1
        size, rows = admin.execute(  # type: ignore[misc]
            "SELECT (SELECT sum(data_file_size_bytes) FROM ducklake_list_files('lake', 'samples_raw')), "
            "(SELECT count(*) FROM samples_raw)").fetchone()

        _print_shipping(args, elapsed, latencies, stats, shipped, commits0, commits1, size, rows, maint, done, row_group_size)
        if args.no_queries:
            return
        end = start - timedelta(seconds=1)
        per_1h, per_30d = write_history(admin, args.hosts, args.history_series, end)
        maintain(admin, expire_after=timedelta(microseconds=1), cleanup_after=timedelta(microseconds=1))
        reader = open_lake(cfg, read_only=True, threads=os.cpu_count() or 1)
        sql = "SELECT count(*), avg(avg) FROM metric_range(?, ?, ?, step := 60)"
        q1h = timed(reader, sql, [METRIC, end - timedelta(hours=1), end])
        q30d = timed(reader, sql, [METRIC, end - timedelta(days=30), end])
        q30h = timed(reader, "SELECT count(*), avg(avg) FROM rollup_1h WHERE name = ? AND bucket >= ? AND bucket < ?",
                     [METRIC, end - timedelta(days=30), end])
        if args.explain:
            plan = reader.execute("EXPLAIN ANALYZE " + sql, [METRIC, end - timedelta(days=30), end]).fetchall()
            print(plan[0][1], file=sys.stderr)
        reader.close()

        scale1, scale30 = args.series / per_1h * args.hosts, args.series / per_30d * args.hosts
        print(f"  metric_range 1 h, all hosts      {q1h * 1000:.0f} ms over {per_1h:,} series "
              f"(x{scale1:.0f} rows at {args.series} series/host: ~{q1h * scale1 * 1000:.0f} ms if scan-bound)")
        print(f"  metric_range 30 d, all hosts     {q30d * 1000:.0f} ms over {per_30d:,} series of 1 m rollups "
              f"(x{scale30:.0f}: ~{q30d * scale30:.1f} s if scan-bound)")
        print(f"  30 d from rollup_1h, all hosts   {q30h * 1000:.0f} ms over the same series "
              f"(x{scale30:.0f}: ~{q30h * scale30 * 1000:.0f} ms if scan-bound)")
        admin.close()
    finally:
        if server is not None:
            server.stop("immediate")
            shutil.rmtree(server.folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def _print_shipping(args: argparse.Namespace, elapsed: float, latencies: list[float], stats: list[HostStats],
                    shipped: int, commits0: int | None, commits1: int | None, size: int, rows: int, maint: float,
                    done: Any, row_group_size: Any) -> None:
    ships = len(latencies)
    print(f"fleet_bench: {args.hosts} hosts x {args.series} series at 1 s, ship every {args.interval:g} s, "
          f"{elapsed:.0f} s, {os.cpu_count()} cores, parquet row groups of {row_group_size} rows")
    print(f"  ship latency (lake transaction)  p50 {percentile(latencies, 50) * 1000:.0f} ms   "
          f"p95 {percentile(latencies, 95) * 1000:.0f} ms   max {max(latencies, default=0) * 1000:.0f} ms")
    print(f"  ship commits/s                   {ships / elapsed:.1f} (asked {args.hosts / args.interval:.1f}); "
          f"conflicts retried {sum(s.conflicts for s in stats)}, errors {sum(s.errors for s in stats)}")
    errors = [s.error for s in stats if s.error]
    if errors:
        print(f"  an error (retried next interval) {errors[0]}")
    if commits0 is not None and commits1 is not None:
        print(f"  PostgreSQL commits/s             {(commits1 - commits0) / elapsed:.1f} (every catalog transaction)")
    print(f"  samples shipped                  {shipped:,} ({shipped / elapsed:,.0f}/s)")
    print(f"  lake bytes/sample (maintained)   {size / max(rows, 1):.2f} ({rows:,} samples in {size / 1e6:.1f} MB; "
          f"maintenance {maint:.1f} s: {done.merged} merges)")


def _pg_commits(server: Postgres | None) -> int | None:
    if server is None:
        return None
    return int(server.psql("SELECT sum(xact_commit) FROM pg_stat_database").strip())


if __name__ == "__main__":
    main()
