"""Parquet export: zstd files per day, read back the same by pandas, polars and DuckDB; the CLI over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from cli_helpers import invoke
from store_helpers import isolated_settings

from monitorkit.interop.export import ExportError, export_parquet
from monitorkit.owner.schema import SCHEMA
from monitorkit.samples import Sample
from monitorkit.store import Store

T0 = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # three days touched: 29th, 30th, 1st
SPAN = timedelta(hours=28)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "m.duckdb"
    with Store(path, settings=isolated_settings(), schema=SCHEMA) as store:
        samples = []
        for i in range(0, int(SPAN.total_seconds()), 60):
            at = T0 + timedelta(seconds=i)
            samples.append(Sample(at, "cpu_percent", {"cpu": "0"}, float(i % 100), "web1"))
            samples.append(Sample(at, "net_bytes_recv_total", {"nic": "eth0"}, float(i), "web1"))
            samples.append(Sample(at, "load1", {}, 0.5, "web2"))
        store.write(samples)
        store.flush()
    return path


def test_export_writes_zstd_parquet_per_day_readable_by_pandas_polars_and_duckdb(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    calls: list[tuple[int, int, int]] = []
    summary = export_parquet(db, out, T0, T0 + SPAN, metrics=["cpu_percent", "net_*"],
                             progress=lambda *a: calls.append(a))
    assert [p.parent.name for p in summary.files] == ["day=2026-11-29", "day=2026-11-30", "day=2026-12-01"]
    expected = 2 * int(SPAN.total_seconds()) // 60
    assert summary.rows == expected and calls[-1] == (28, 28, expected)
    meta = pq.ParquetFile(summary.files[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"

    frame = pd.read_parquet(out)
    assert len(frame) == expected and set(frame["name"]) == {"cpu_percent", "net_bytes_recv_total"}
    assert str(frame["day"].iloc[0]).startswith("2026-11-29")
    polars = pl.scan_parquet(f"{out}/**/*.parquet", hive_partitioning=True).collect()
    assert polars.height == expected and polars["value"].sum() == pytest.approx(frame["value"].sum())
    con = duckdb.connect()
    rows = con.execute(f"SELECT day, count(*), min(time), max(time) FROM read_parquet('{out}/*/*.parquet', "
                       "hive_partitioning = true) GROUP BY day ORDER BY day").fetchall()
    assert [r[1] for r in rows] == [2 * 120, 2 * 24 * 60, 2 * 120]  # 22:00-24:00, a whole day, 00:00-02:00
    labels = con.execute(f"SELECT DISTINCT labels['cpu'] FROM read_parquet('{out}/*/*.parquet') "
                         "WHERE name = 'cpu_percent'").fetchall()
    assert labels == [("0",)]
    with Store(db, settings=isolated_settings(), schema=SCHEMA) as store:  # the same values as stored
        stored = store.query("SELECT sum(value) FROM samples WHERE name IN ('cpu_percent', 'net_bytes_recv_total')")
    assert stored[0][0] == pytest.approx(frame["value"].sum())


def test_rollup_tiers_export_their_columns(db: Path, tmp_path: Path) -> None:
    with Store(db, settings=isolated_settings(), schema=SCHEMA) as store:
        store.rollup(T0 + SPAN + timedelta(hours=2))
    summary = export_parquet(db, tmp_path / "o", T0, T0 + SPAN, metrics=["load1"], tier="1h")
    frame = pd.read_parquet(tmp_path / "o")
    assert {"min", "max", "sum", "count", "avg", "last"} <= set(frame.columns)
    assert summary.rows == 28 and (frame["count"] == 60).all()


def test_existing_files_are_kept_unless_overwrite(db: Path, tmp_path: Path) -> None:
    export_parquet(db, tmp_path / "o", T0, T0 + timedelta(hours=1), metrics=["load1"])
    with pytest.raises(ExportError, match="exist already"):
        export_parquet(db, tmp_path / "o", T0, T0 + timedelta(hours=1), metrics=["load1"])
    assert export_parquet(db, tmp_path / "o", T0, T0 + timedelta(hours=1), metrics=["load1"], overwrite=True).rows == 60


@pytest.mark.parametrize("kwargs, message", [
    ({"start": T0, "end": T0}, "the range is empty"),
    ({"tier": "5m"}, "tier '5m'"),
    ({"metrics": ["cpu'; DROP"]}, "not a metric name"),
    ({"start": T0.replace(tzinfo=None)}, "no time zone"),
])
def test_bad_requests_say_what_to_fix(db: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"start": T0, "end": T0 + SPAN, **kwargs}
    with pytest.raises(ExportError, match=message):
        export_parquet(db, tmp_path / "o", args.pop("start"), args.pop("end"), **args)


def test_the_cli_exports_and_prints_the_files(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = invoke(["export", "--db", str(db), "--from", "2026-11-30", "--to", "2026-12-01",
                     "--metric", "load1", "--format", "parquet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 1,440 rows in 1 day file(s)" in result.output
    assert pd.read_parquet(out)["host"].unique().tolist() == ["web2"]
    again = invoke(["export", "--db", str(db), "--from", "2026-11-30", "--to", "2026-12-01",
                    "--metric", "load1", "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    empty = invoke(["export", "--db", str(db), "--from", "2020-01-01", "--to", "2020-01-02",
                    "--out", str(tmp_path / "none")])
    assert empty.exit_code == 0 and "nothing written" in empty.output


def test_export_reads_through_a_running_owner(db: Path, tmp_path: Path) -> None:
    from interop_helpers import owner_thread

    from monitorkit.owner.sidecar import read_owner

    settings = isolated_settings(**{"store.path": str(db), "collect.interval": 0.5})
    with owner_thread(settings, ()):
        assert read_owner(db) is not None  # the file is owned: export goes through the owner's query route
        summary = export_parquet(db, tmp_path / "live", T0, T0 + timedelta(hours=3), metrics=["load1"])
    assert summary.rows == 180 and pd.read_parquet(tmp_path / "live")["value"].eq(0.5).all()
