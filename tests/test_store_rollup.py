"""Rollups match pandas over the raw rows, never double count, and retention cuts exactly at each limit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from store_helpers import isolated_settings

from monitorkit import Sample, Store
from monitorkit.store.rollup import floor_time

START = datetime(2025, 3, 9, 9, 13, 7, 250_000, tzinfo=UTC)
LATENESS = timedelta(seconds=5)
SERIES = [
    ("cpu_percent", {"cpu": "0"}),
    ("cpu_percent", {"cpu": "1"}),
    ("mem_used_bytes", {}),
    ("net_bytes_recv_total", {"nic": "eth0"}),
    ("disk_free_bytes", {"mount": "/", "device": "vda"}),
]
AGGS = ["min", "max", "sum", "count", "last"]


def generate(seed: int, hours: float = 3.5, start: datetime = START) -> list[Sample]:
    """Return samples of SERIES at irregular, strictly increasing times (microseconds), over ``hours``."""
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    end = hours * 3600
    for name, labels in SERIES:
        gaps = rng.uniform(0.05, 25.0, size=int(end / 5))
        offsets = np.cumsum(gaps)
        offsets = offsets[offsets < end]
        vals = rng.normal(0, 1000, size=len(offsets)) * rng.choice([1e-3, 1.0, 1e6])
        for off, val in zip(offsets, vals, strict=True):
            out.append(Sample(start + timedelta(microseconds=int(off * 1e6)), name, labels, float(val)))
    rng.shuffle(out)
    return out


def frame(samples: Sequence[Sample]) -> pd.DataFrame:
    """Return the samples as a DataFrame with a hashable series key."""
    return pd.DataFrame(
        {
            "key": [(s.name, tuple(sorted(s.labels.items()))) for s in samples],
            "time": pd.to_datetime([s.time for s in samples], utc=True),
            "value": [s.value for s in samples],
        }
    )


def pandas_tier(df: pd.DataFrame, freq: str, upper: datetime) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Aggregate raw rows before ``upper`` into buckets of ``freq``: min, max, sum, count, last."""
    df = df[df["time"] < pd.Timestamp(upper)].sort_values("time")
    df = df.assign(bucket=df["time"].dt.floor(freq))
    agg = df.groupby(["key", "bucket"])["value"].agg(["min", "max", "sum", "count", "last"])
    last_time = df.groupby(["key", "bucket"])["time"].max()
    out = {}
    for (key, bucket), row in agg.iterrows():
        out[(key, bucket.to_pydatetime())] = {**row.to_dict(), "last_time": last_time[(key, bucket)].to_pydatetime()}
    return out


def store_tier(store: Store, tier: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Read one rollup tier keyed like ``pandas_tier``."""
    rows = store.query(f"SELECT name, labels, bucket, min, max, sum, count, last, last_time FROM rollup_{tier}")
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for name, labels, bucket, mn, mx, sm, cnt, last, last_time in rows:
        key = ((name, tuple(sorted(labels.items()))), bucket.astimezone(UTC))
        assert key not in out, f"bucket {key} rolled up twice"
        out[key] = {"min": mn, "max": mx, "sum": sm, "count": cnt, "last": last, "last_time": last_time}
    return out


def assert_tier_matches(got: dict[tuple[Any, ...], dict[str, Any]], want: dict[tuple[Any, ...], dict[str, Any]]) -> None:
    """Compare tiers bucket by bucket: exact min/max/count/last, approximate sums."""
    assert sorted(got) == sorted(want)
    for key, w in want.items():
        g = got[key]
        assert (g["min"], g["max"], g["count"], g["last"]) == (w["min"], w["max"], w["count"], w["last"]), key
        assert g["last_time"] == w["last_time"], key
        assert g["sum"] == pytest.approx(w["sum"], rel=1e-9, abs=1e-6), key


def uppers(now: datetime) -> tuple[datetime, datetime]:
    """Return the end of what a rollup at ``now`` may cover in the 1m and 1h tiers."""
    upper_1m = floor_time(now - LATENESS, "1m")
    return upper_1m, floor_time(upper_1m, "1h")


def new_store(path: Path) -> Store:
    return Store(path, settings=isolated_settings(**{"store.rollup_lateness": "5s"}))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    "now_offset", [timedelta(hours=6), timedelta(hours=2, minutes=16, seconds=2)], ids=["all-closed", "mid-data"]
)
def test_tiers_equal_pandas_aggregates(tmp_path: Path, seed: int, now_offset: timedelta) -> None:
    samples = generate(seed)
    now = START + now_offset
    with new_store(tmp_path / "r.duckdb") as store:
        store.write(samples)
        written = store.rollup(now)
        got_1m, got_1h = store_tier(store, "1m"), store_tier(store, "1h")
    upper_1m, upper_1h = uppers(now)
    df = frame(samples)
    want_1m, want_1h = pandas_tier(df, "1min", upper_1m), pandas_tier(df, "1h", upper_1h)
    assert written == {"1m": len(want_1m), "1h": len(want_1h)}
    assert want_1m and want_1h, "the data must fill some buckets of both tiers"
    assert_tier_matches(got_1m, want_1m)
    assert_tier_matches(got_1h, want_1h)


def test_buckets_across_the_epoch_floor_down(tmp_path: Path) -> None:
    start = datetime(1969, 12, 31, 22, 30, 0, 500_000, tzinfo=UTC)  # negative epoch times until midnight
    samples = generate(5, hours=2.5, start=start)
    now = start + timedelta(hours=3)
    with new_store(tmp_path / "epoch.duckdb") as store:
        # Store.write refuses times before 1970 now; rows of older files (or a raw insert) may still have
        # them, and the rollup's integer flooring must stay right for negative epochs.
        store.write(samples, validate=False)
        store.rollup(now)
        got_1m, got_1h = store_tier(store, "1m"), store_tier(store, "1h")
    upper_1m, upper_1h = uppers(now)
    assert_tier_matches(got_1m, pandas_tier(frame(samples), "1min", upper_1m))
    assert_tier_matches(got_1h, pandas_tier(frame(samples), "1h", upper_1h))


def test_rolling_up_twice_adds_nothing(tmp_path: Path) -> None:
    now = START + timedelta(hours=5)
    with new_store(tmp_path / "r.duckdb") as store:
        store.write(generate(3))
        first = store.rollup(now)
        before = store_tier(store, "1m"), store_tier(store, "1h")
        assert first["1m"] > 0 and first["1h"] > 0
        assert store.rollup(now) == {"1m": 0, "1h": 0}
        assert store.rollup(now + timedelta(seconds=3)) == {"1m": 0, "1h": 0}
        assert (store_tier(store, "1m"), store_tier(store, "1h")) == before


def test_stepwise_rollups_as_time_passes_equal_one_rollup(tmp_path: Path) -> None:
    samples = sorted(generate(4), key=lambda s: s.time)
    final = START + timedelta(hours=5, seconds=30)
    rng = np.random.default_rng(4)
    # Step through time: write what has happened by `now`, roll up, advance by an irregular step.
    with new_store(tmp_path / "steps.duckdb") as stepped:
        now, i = START, 0
        while now < final:
            now = min(final, now + timedelta(seconds=float(rng.uniform(20, 900))))
            j = i
            while j < len(samples) and samples[j].time < now:
                j += 1
            stepped.write(samples[i:j])
            i = j
            stepped.rollup(now)
        stepped.write(samples[i:])
        stepped.rollup(final)
        got = store_tier(stepped, "1m"), store_tier(stepped, "1h")
    with new_store(tmp_path / "once.duckdb") as once:
        once.write(samples)
        once.rollup(final)
        want = store_tier(once, "1m"), store_tier(once, "1h")
    assert_tier_matches(got[0], want[0])
    assert_tier_matches(got[1], want[1])
    # Same again against pandas: no bucket was counted twice or missed.
    upper_1m, upper_1h = uppers(final)
    assert_tier_matches(got[0], pandas_tier(frame(samples), "1min", upper_1m))
    assert_tier_matches(got[1], pandas_tier(frame(samples), "1h", upper_1h))


def test_late_samples_stay_raw_and_are_not_double_counted(tmp_path: Path) -> None:
    now = START + timedelta(minutes=30)
    with new_store(tmp_path / "late.duckdb") as store:
        store.write([Sample(START + timedelta(minutes=1), "m", {}, 1.0)])
        assert store.rollup(now)["1m"] == 1
        store.write([Sample(START + timedelta(minutes=1, seconds=1), "m", {}, 5.0)])  # arrives after its bucket closed
        assert store.rollup(now + timedelta(minutes=5)) == {"1m": 0, "1h": 0}
        assert store.query("SELECT count, sum FROM samples_1m") == [(1, 1.0)]
        assert store.query("SELECT count(*) FROM samples_raw") == [(2,)]


NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _fill_tiers(con: Any, rows_1m: list[datetime], rows_1h: list[datetime]) -> None:
    for table, buckets in (("samples_1m", rows_1m), ("samples_1h", rows_1h)):
        for b in buckets:
            con.execute(f"INSERT INTO {table} VALUES (?, 1, 1, 1, 1, 1, 1, ?)", [b, b])


@pytest.mark.parametrize(
    "overrides", [{}, {"retention.raw": "2h", "retention.1m": "36h", "retention.1h": "10d"}], ids=["defaults", "custom"]
)
def test_retention_removes_exactly_the_rows_past_each_limit(tmp_path: Path, overrides: dict[str, str]) -> None:
    settings = isolated_settings(**overrides)
    limits = settings.retention()
    us = timedelta(microseconds=1)

    def around(limit: timedelta, step: timedelta) -> tuple[list[datetime], list[datetime]]:
        """Rows that must go (older than the limit) and rows that must stay (at the limit or newer)."""
        edge = NOW - limit
        return [edge - step * 3, edge - step], [edge, edge + step, NOW - step, NOW]

    raw_gone, raw_kept = around(limits["raw"], us)
    m_gone, m_kept = around(limits["1m"], timedelta(minutes=1))
    h_gone, h_kept = around(limits["1h"], timedelta(hours=1))
    with Store(tmp_path / "ret.duckdb", settings=settings) as store:
        store.write([Sample(t, "m", {"k": "v"}, float(i)) for i, t in enumerate(raw_gone + raw_kept)])
        store.flush()
        store.submit(lambda con: _fill_tiers(con, m_gone + m_kept, h_gone + h_kept)).result()
        deleted = store.enforce_retention(NOW)
        raw = sorted(r[0] for r in store.query("SELECT time FROM samples_raw"))
        tier_1m = sorted(r[0] for r in store.query("SELECT bucket FROM samples_1m"))
        tier_1h = sorted(r[0] for r in store.query("SELECT bucket FROM samples_1h"))
        assert store.enforce_retention(NOW) == {"raw": 0, "1m": 0, "1h": 0}
    assert deleted == {"raw": 2, "1m": 2, "1h": 2}
    assert raw == raw_kept
    assert tier_1m == m_kept
    assert tier_1h == h_kept
