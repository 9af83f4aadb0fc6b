"""Store benchmark: write throughput vs bare DuckDB, bytes per sample for a day, query times direct vs Quack.

    .venv/bin/python benchmarks/store_bench.py [--quick] [--keep DIR]

Prints rich tables; figures are for reading side by side, no test asserts on them.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from monitorkit.config import DEFAULTS, Settings
from monitorkit.owner.connect import connect
from monitorkit.samples import Sample
from monitorkit.store import Store

console = Console(width=150)
HOST = "bench-host"
N_SERIES = 200
BATCH_OF_SECONDS = 50  # 50 s x 200 series = 10 000 samples per write
END = datetime(2026, 1, 31, tzinfo=UTC)


def bench_settings() -> Settings:
    """Default settings, ignoring any monitorkit.toml or MONITORKIT_* variable around."""
    return Settings(copy.deepcopy(DEFAULTS), {})


# --- the 200 series --------------------------------------------------------------------------------


@dataclass
class Series:
    """One benchmark series and how its values evolve."""

    name: str
    labels: dict[str, str]
    kind: str  # gauge | counter | constant
    level: float
    spread: float


def make_series(rng: np.random.Generator) -> list[Series]:
    """Return 200 host-like series: 120 noisy gauges, 64 counters, 16 constants."""
    out: list[Series] = []
    gauges = [("cpu_percent", "cpu", 16, 40.0, 15.0), ("disk_used_percent", "mount", 8, 60.0, 0.3),
              ("temperature_celsius", "sensor", 16, 55.0, 3.0), ("load_average", "period", 8, 2.0, 0.5),
              ("process_group_cpu_percent", "name", 40, 5.0, 4.0), ("http_request_seconds_p99", "route", 32, 250.0, 60.0)]
    for name, label, count, level, spread in gauges:
        for i in range(count):
            out.append(Series(name, {label: str(i)}, "gauge", level * rng.uniform(0.5, 1.5), spread))
    counters = [("net_bytes_recv_total", "nic", 16, 1e5), ("net_packets_sent_total", "nic", 16, 300.0),
                ("disk_read_bytes_total", "device", 16, 2e6), ("http_requests_total", "route", 16, 20.0)]
    for name, label, count, rate in counters:
        for i in range(count):
            out.append(Series(name, {label: f"{i}"}, "counter", float(rng.integers(0, 10**9)), rate * rng.uniform(0.1, 2)))
    for i in range(8):
        out.append(Series("memory_total_bytes", {"node": str(i)}, "constant", float(rng.choice([8, 16, 32]) * 2**30), 0))
        out.append(Series("cpu_count", {"node": str(i)}, "constant", float(rng.choice([2, 4, 8])), 0))
    assert len(out) == N_SERIES
    return out


class DayGenerator:
    """Yield 10 000-sample chunks of the 200 series at 1 s as Python lists, like a collector would."""

    def __init__(self, start: datetime, seconds: int, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.series = make_series(self.rng)
        self.start, self.seconds = start, seconds
        self.kinds = np.array([s.kind for s in self.series])
        self.state = np.array([s.level for s in self.series])
        self.spread = np.array([s.spread for s in self.series])
        self.level = self.state.copy()

    def values(self, n: int) -> np.ndarray:
        """Return an (n seconds, 200 series) array of the next values."""
        out = np.empty((n, N_SERIES))
        g = self.kinds == "gauge"
        noise = self.rng.normal(0, 1, (n, int(g.sum()))) * self.spread[g]
        # Mean-reverting noise around each gauge's level, at 1 decimal.
        out[:, g] = np.round(np.maximum(self.level[g] + noise, 0), 1)
        c = self.kinds == "counter"
        inc = self.rng.poisson(self.spread[c], (n, int(c.sum())))
        out[:, c] = self.state[c] + np.cumsum(inc, axis=0)
        self.state[c] = out[-1, c]
        out[:, self.kinds == "constant"] = self.state[self.kinds == "constant"]
        return out

    def chunks(self) -> Iterator[tuple[list[datetime], list[str], list[dict[str, str]], list[float]]]:
        """Yield (times, names, labels, values) lists of BATCH_OF_SECONDS x 200 samples."""
        names = [s.name for s in self.series] * BATCH_OF_SECONDS
        labels = [s.labels for s in self.series] * BATCH_OF_SECONDS
        for first in range(0, self.seconds, BATCH_OF_SECONDS):
            n = min(BATCH_OF_SECONDS, self.seconds - first)
            # One datetime per tick shared by its samples, as collectors do.
            ticks = [self.start + timedelta(seconds=first + i) for i in range(n)]
            times = [t for t in ticks for _ in range(N_SERIES)]
            yield times, names[: n * N_SERIES], labels[: n * N_SERIES], self.values(n).ravel().tolist()


def to_samples(times: list[datetime], names: list[str], labels: list[dict[str, str]], values: list[float]) -> list[Sample]:
    """Return the lists as Samples of HOST."""
    return list(map(Sample._make, zip(times, names, labels, values, [HOST] * len(times), strict=True)))


# --- 1. write throughput ------------------------------------------------------------------------------

BARE_DDL = "CREATE TABLE bare (time TIMESTAMPTZ, host VARCHAR, name VARCHAR, labels MAP(VARCHAR, VARCHAR), value DOUBLE)"
MAP_TYPE = pa.map_(pa.string(), pa.string())


@dataclass
class Columns:
    """One batch as the Python lists a caller holds: the long format."""

    times: list[datetime]
    hosts: list[str]
    names: list[str]
    labels: list[dict[str, str]]
    values: list[float]

    def arrow(self) -> pa.Table:
        """Build the Arrow table a bare DuckDB insert takes."""
        return pa.table(
            {
                "time": pa.array(self.times, pa.timestamp("us", tz="UTC")),
                "host": pa.array(self.hosts, pa.string()),
                "name": pa.array(self.names, pa.string()),
                "labels": pa.array(self.labels, MAP_TYPE),
                "value": pa.array(self.values, pa.float64()),
            }
        )

    def samples(self) -> list[Sample]:
        return list(map(Sample._make, zip(self.times, self.names, self.labels, self.values, self.hosts, strict=True)))


def make_batches(size: int, total: int) -> list[Columns]:
    """Return ``total`` samples of the 200 series cut into batches of ``size``."""
    gen = DayGenerator(END - timedelta(days=1), seconds=total // N_SERIES, seed=size)
    flat: list[list[Any]] = [[], [], [], []]
    for times, names, labels, values in gen.chunks():
        for col, part in ((flat[0], times), (flat[1], names), (flat[2], labels), (flat[3], values)):
            col.extend(part)
    return [
        Columns(flat[0][i : i + size], [HOST] * len(flat[0][i : i + size]), flat[1][i : i + size],
                flat[2][i : i + size], flat[3][i : i + size])
        for i in range(0, total, size)
    ]


def store_rate(path: Path, samples: list[list[Sample]], validate: bool) -> float:
    """Return samples/s of Store.write + flush, one batch at a time."""
    total = sum(map(len, samples))
    with Store(path, settings=bench_settings()) as store:
        started = time.perf_counter()
        for batch in samples:
            store.write(batch, validate=validate)
            store.flush()
        seconds = time.perf_counter() - started
        assert store.writer.dropped == 0 and store.query("SELECT count(*) FROM samples_raw")[0][0] == total
    return total / seconds


def bare_rate(path: Path, batches: list[Columns], prebuilt: bool) -> float:
    """Return samples/s of a bare Arrow INSERT into a plain long-format table, one batch at a time."""
    total = sum(len(b.times) for b in batches)
    con = duckdb.connect(str(path))
    con.execute(BARE_DDL)
    tables = [b.arrow() for b in batches] if prebuilt else []
    started = time.perf_counter()
    for i, b in enumerate(batches):
        arrow = tables[i] if prebuilt else b.arrow()
        con.register("arrow_batch", arrow)
        con.execute("INSERT INTO bare SELECT * FROM arrow_batch")
        con.unregister("arrow_batch")
    seconds = time.perf_counter() - started
    assert con.execute("SELECT count(*) FROM bare").fetchone() == (total,)
    con.close()
    return total / seconds


def write_throughput(folder: Path, sizes: dict[int, int]) -> None:
    table = Table(title="1. Write throughput (samples/s; one commit per batch; file databases; 200 series)")
    for col in ("batch", "samples", "Store.write+flush", "validate=False", "bare build+insert", "bare prebuilt",
                "ratio vs build", "ratio (validate=False)"):
        table.add_column(col, justify="right")
    for size, total in sizes.items():
        batches = make_batches(size, total)
        samples = [b.samples() for b in batches]
        store_v = store_rate(folder / f"tp-{size}-v.duckdb", samples, validate=True)
        store_nv = store_rate(folder / f"tp-{size}-nv.duckdb", samples, validate=False)
        bare_build = bare_rate(folder / f"bare-{size}-b.duckdb", batches, prebuilt=False)
        bare_pre = bare_rate(folder / f"bare-{size}-p.duckdb", batches, prebuilt=True)
        table.add_row(f"{size:,}", f"{total:,}", f"{store_v:,.0f}", f"{store_nv:,.0f}", f"{bare_build:,.0f}",
                      f"{bare_pre:,.0f}", f"{store_v / bare_build:.2f}", f"{store_nv / bare_build:.2f}")
    console.print(table)


# --- 2. bytes per sample --------------------------------------------------------------------------


def size_of_copy(db: Path, source: str, folder: Path) -> int:
    """Return the bytes a table (or query) takes alone in a fresh, checkpointed file."""
    empty, target = folder / "empty.duckdb", folder / "copy.duckdb"
    for p in (empty, target):
        p.unlink(missing_ok=True)
    duckdb.connect(str(empty)).close()
    con = duckdb.connect(str(target))
    con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
    con.execute(f"CREATE TABLE t AS {source}")
    con.execute("CHECKPOINT")
    con.close()
    return target.stat().st_size - empty.stat().st_size


def raw_blocks(store: Store) -> int:
    """Return the bytes of the blocks that hold samples_raw in the store's file (after a CHECKPOINT)."""
    rows = store.query(
        "SELECT count(DISTINCT block_id) * any_value(block_size) FROM pragma_storage_info('samples_raw'), "
        "pragma_database_size() WHERE persistent AND block_id >= 0"
    )
    return int(rows[0][0] or 0)


def file_bytes(db: Path, store: Store) -> tuple[int, int]:
    """Return the file's size (with its WAL) and the bytes of its used blocks."""
    store.submit(lambda con: con.execute("CHECKPOINT")).result()
    wal = Path(f"{db}.wal")
    used = store.query("SELECT used_blocks * block_size FROM pragma_database_size()")[0][0]
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0), int(used)


def one_day(db: Path, folder: Path, seconds: int) -> tuple[int, datetime]:
    start = END - timedelta(seconds=seconds)
    gen = DayGenerator(start, seconds)
    total = 0
    with Store(db, settings=bench_settings()) as store:
        started = time.perf_counter()
        for i, chunk in enumerate(gen.chunks()):
            total += store.write(to_samples(*chunk), validate=False)
            if i % 20 == 19:  # keep the queue (bound: 1 M samples) from dropping batches
                store.flush()
        store.flush()
        write_s = time.perf_counter() - started
        size, _ = file_bytes(db, store)
        assert store.writer.dropped == 0
    raw_append = size_of_copy(db, "SELECT * FROM src.samples_raw", folder)
    with Store(db, settings=bench_settings()) as store:
        append_blocks = raw_blocks(store)
        # At 23:59:59 every closed hour is compacted; the last one is still in append order.
        started = time.perf_counter()
        hourly = store.compact(END - timedelta(seconds=1))
        hourly_s = time.perf_counter() - started
        store.submit(lambda con: con.execute("CHECKPOINT")).result()
        hour_blocks = raw_blocks(store)
        # Two hours later the day is closed: the store's own rollup queues the day's compaction.
        started = time.perf_counter()
        rolled = store.rollup(END + timedelta(hours=2))
        rollup_s = time.perf_counter() - started
        started = time.perf_counter()
        store.flush()  # waits for the compaction queued by rollup
        daily_s = time.perf_counter() - started
        daily = store.last_compaction
        assert daily is not None and store.compaction_error is None
        day_blocks = raw_blocks(store)
        after_size, after_used = file_bytes(db, store)
        assert store.query("SELECT count(*) FROM samples_raw")[0][0] == total
    raw_day = size_of_copy(db, "SELECT * FROM src.samples_raw", folder)
    t1m, t1h = (size_of_copy(db, f"SELECT * FROM src.samples_{tier}", folder) for tier in ("1m", "1h"))
    table = Table(title=f"2. Bytes on disk: {seconds / 3600:g} h of {N_SERIES} series at 1 s ({total:,} samples)")
    for col in ("what", "rows", "bytes", "bytes/row", "note"):
        table.add_column(col, justify="right")

    def row(what: str, rows: int, size: int, note: str) -> None:
        table.add_row(what, f"{rows:,}", f"{size:,}", f"{size / max(rows, 1):.2f}", note)

    row("whole file after CHECKPOINT, before compaction", total, size,
        f"written in {write_s:.1f} s ({total / write_s:,.0f}/s, validate=False)")
    row("samples_raw alone, append order", total, raw_append, "copy into a fresh file")
    row("samples_raw blocks in the store, append order", total, append_blocks, "blocks holding the table")
    row(f"  + closed hours compacted ({hourly.hours} h)", total, hour_blocks,
        f"Store.compact at 23:59:59 took {hourly_s:.2f} s; last hour still in append order")
    row(f"  + day compacted ({daily.days} d)", total, day_blocks,
        f"compaction queued by Store.rollup took {daily_s:.2f} s; goal <= 3 bytes/sample")
    row("samples_raw alone, compacted", total, raw_day, "copy of the store's table into a fresh file")
    row("whole file after rollups + compaction", total, after_size,
        f"used blocks {after_used:,} = {after_used / total:.2f}/row; free blocks are reused by later writes")
    row("samples_1m", rolled["1m"], t1m, f"rollup of everything took {rollup_s:.2f} s")
    row("samples_1h", rolled["1h"], t1h, "")
    console.print(table)
    return total, start


# --- 3. query times -------------------------------------------------------------------------------


def add_minute_history(db: Path, days: int, before: datetime) -> int:
    """Fill samples_1m with ``days`` of per-minute rollups of every series, ending at ``before``."""
    with Store(db, settings=bench_settings()) as store:
        def fill(con: duckdb.DuckDBPyConnection) -> int:
            row = con.execute(
                """
                INSERT INTO samples_1m
                SELECT b.bucket, s.series_id,
                       v.avg - v.spread AS min, v.avg + v.spread AS max, v.avg * 60 AS sum, 60 AS count,
                       v.avg AS last, b.bucket + INTERVAL 59 SECOND AS last_time
                FROM range(?::TIMESTAMPTZ - to_days(?), ?::TIMESTAMPTZ, INTERVAL 1 MINUTE) b(bucket)
                CROSS JOIN series s,
                LATERAL (SELECT round(50 + 30 * sin(epoch(b.bucket) / 3600 + s.series_id), 1) AS avg,
                                round(random() * 5, 1) AS spread) v
                """,
                [before, days, before],
            ).fetchone()
            con.execute("CHECKPOINT")
            return int(row[0]) if row else 0

        return int(store.submit(fill).result())


OWNER_CHILD = """
import sys
from monitorkit import Owner
owner = Owner(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
owner.close()
"""


def median_ms(con: Any, sql: str, runs: int) -> tuple[float, int]:
    """Return the median milliseconds to run ``sql`` and fetch it as Arrow, and its row count."""
    # Arrow, not fetchall(): building aware Python datetimes costs ~5 µs a row, which would hide the query.
    rows = con.execute(sql).fetch_arrow_table().num_rows  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = con.execute(sql).fetch_arrow_table().num_rows
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), rows


def query_times(db: Path, metric: str, runs: int, long_days: int) -> None:
    queries = {
        "last hour, raw": f"SELECT * FROM metric_range('{metric}', TIMESTAMPTZ '{END - timedelta(hours=1)}', "
        f"TIMESTAMPTZ '{END}', step := 60)",
        f"{long_days} days, 1m tier": f"SELECT * FROM metric_range('{metric}', TIMESTAMPTZ '{END - timedelta(days=long_days)}', "
        f"TIMESTAMPTZ '{END}', step := 60)",
    }
    direct = connect(db)
    assert isinstance(direct, duckdb.DuckDBPyConnection)
    local = {name: median_ms(direct, sql, runs) for name, sql in queries.items()}
    tiers = {name: direct.execute(f"SELECT DISTINCT tier FROM ({sql})").fetchall() for name, sql in queries.items()}
    direct.close()
    owner = subprocess.Popen([sys.executable, "-c", OWNER_CHILD, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=db.parent)
    try:
        assert owner.stdout is not None and owner.stdout.readline().startswith("ready")
        remote = connect(db)
        assert type(remote).__name__ == "RemoteConnection"
        far = {name: median_ms(remote, sql, runs) for name, sql in queries.items()}
        remote.close()
    finally:
        assert owner.stdin is not None
        owner.stdin.write("stop\n")
        owner.stdin.close()
        owner.wait(timeout=60)
    table = Table(title=f"3. metric_range('{metric}', ..., step := 60): median of {runs} runs, all rows fetched")
    for col in ("range", "tier", "rows", "direct ms", "owner + connect() ms", "remote overhead ms"):
        table.add_column(col, justify="right")
    for name in queries:
        (ms_l, n), (ms_r, n_r) = local[name], far[name]
        assert n == n_r
        table.add_row(name, ",".join(t[0] for t in tiers[name]), f"{n:,}", f"{ms_l:.1f}", f"{ms_r:.1f}", f"{ms_r - ms_l:+.1f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: one hour instead of a day (under a minute)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the databases in this folder")
    parser.add_argument("--only", choices=["write", "disk"], default=None, help="run one part (disk includes queries)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "fetch_arrow_table", DeprecationWarning)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="monitorkit-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    console.print(f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}, {os.cpu_count()} cores, "
                  f"load average {os.getloadavg()[0]:.1f}, files in {folder}")
    started = time.perf_counter()
    try:
        sizes = {100: 10_000, 1_000: 50_000, 10_000: 100_000} if args.quick else {100: 30_000, 1_000: 150_000, 10_000: 300_000}
        if args.only != "disk":
            write_throughput(folder, sizes)
        if args.only == "write":
            return
        db = folder / "day.duckdb"
        one_day(db, folder, 3600 if args.quick else 86_400)
        long_days = 3 if args.quick else 30
        # The raw day rolls into the last day of the 1m tier; the days before it are generated.
        add_minute_history(db, long_days - 1, END - timedelta(days=1))
        query_times(db, "cpu_percent", 5, long_days)
        console.print(f"total {time.perf_counter() - started:.0f} s, load average now {os.getloadavg()[0]:.1f}")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
