"""The shipped `disk_full_predicted` rule, backtested with `monitorkit rules backtest`: bursts are not a trend.

A healthy machine writes in bursts (a build, a download); a straight line through the last
hour then "predicts" a full disk. The rule also wants a minimum fill level (60 %) and steady
growth (the median 5-minute step at least half the fitted rate). Checked on the demo's
disk_fill incident, on data/recording.parquet (a real machine's five minutes, repeated), and
on bursts built to trip a plain linear fit.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cli_helpers import invoke
from store_helpers import isolated_settings

from monitorkit import Sample, Store
from monitorkit.owner.schema import SCHEMA
from monitorkit.rules.loader import default_rules_dir, load_file
from monitorkit.rules.runner import evaluate_rule

RULE = default_rules_dir() / "disk_full_predicted.sql"
RECORDING = Path(__file__).resolve().parent.parent / "data" / "recording.parquet"
DISK = ("disk_used_bytes", "disk_free_bytes", "disk_used_percent", "disk_total_bytes")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("MONITORKIT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def backtest(db: Path, start: datetime, end: datetime, step: str) -> list[dict[str, Any]]:
    """Return the firing windows `monitorkit rules backtest` reports for the shipped rule."""
    result = invoke(["rules", "backtest", str(RULE), "--from", start.isoformat(), "--to", end.isoformat(),
                     "--step", step, "--json"], db=db)
    assert result.exit_code == 0, result.output
    windows: list[dict[str, Any]] = json.loads(result.stdout)
    return windows


def pending_evaluations(db: Path, start: datetime, end: datetime, step: timedelta, sql: Path = RULE) -> int:
    """Return at how many evaluations from ``start`` to ``end`` the rule returned a row (went or stayed pending)."""
    rule = load_file(sql)
    with duckdb.connect(str(db), read_only=True) as con:
        count, at = 0, start
        while at <= end:
            count += bool(evaluate_rule(con, rule, at).alerts)
            at += step
    return count


def linear_fit_predicts_full(db: Path, start: datetime, end: datetime, step: timedelta) -> int:
    """Return at how many evaluations the last hour's straight line alone reaches the free space within 24 h."""
    sql = """
        SELECT count(*) FROM gauge_window('disk_used_bytes', ?::TIMESTAMPTZ - INTERVAL 1 HOUR, ?::TIMESTAMPTZ) u
        JOIN gauge_window('disk_free_bytes', ?::TIMESTAMPTZ - INTERVAL 5 MINUTE, ?::TIMESTAMPTZ) f USING (host)
        WHERE u.slope > 0 AND epoch(u.last_time - u.first_time) >= 900 AND f.last / u.slope < 86400"""
    with duckdb.connect(str(db), read_only=True) as con:
        count, at = 0, start
        while at <= end:
            row = con.execute(sql, [at, at, at, at]).fetchone()
            count += bool(row and row[0])
            at += step
    return count


def write(db: Path, samples: list[Sample]) -> Path:
    with Store(db, settings=isolated_settings(), schema=SCHEMA) as store:
        store.write(samples)
    return db


# -- the demo ---------------------------------------------------------------------------------------


def test_fires_on_the_demos_disk_fill_and_nowhere_else(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    assert invoke(["demo", "--db", str(db), "--step", "60", "-q"]).exit_code == 0
    start, end = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC)
    windows = backtest(db, start, end, "30m")
    assert {(w["labels"]["host"], w["labels"]["mount"]) for w in windows} == {("db-1", "/var")}
    first = datetime.fromisoformat(windows[0]["start"])
    # /var passes 90 % (disk_filling) at 2026-01-07 16:00; the prediction comes before it
    assert datetime(2026, 1, 7, 10, tzinfo=UTC) <= first <= datetime(2026, 1, 7, 16, tzinfo=UTC)
    assert windows[-1]["end"] == "(still firing)"


# -- a real machine ---------------------------------------------------------------------------------


def recording(db: Path, copies: int, used_percent: float | None = None) -> tuple[datetime, datetime]:
    """Write the recording's disk series ``copies`` times end to end; optionally on a disk ``used_percent`` full."""
    rows = duckdb.sql(f"SELECT time, host, name, labels, value FROM read_parquet('{RECORDING}') "
                      f"WHERE name IN {DISK} ORDER BY time").fetchall()
    start = rows[0][0]
    period = timedelta(seconds=300)
    first: dict[tuple[str, str], float] = {}
    for _, _, name, labels, value in rows:
        first.setdefault((name, dict(labels)["mount"]), value)
    shift = {mount: used_percent / 100 * (used + first[("disk_free_bytes", mount)]) - used
             for (name, mount), used in first.items() if name == "disk_used_bytes"} if used_percent else {}
    samples = []
    for k in range(copies):
        for time, host, name, labels, value in rows:
            mount = dict(labels)["mount"]
            extra = shift.get(mount, 0.0)
            value += extra if name == "disk_used_bytes" else -extra if name == "disk_free_bytes" else 0.0
            if name == "disk_used_percent" and extra:
                used, free = first[("disk_used_bytes", mount)] + extra, first[("disk_free_bytes", mount)] - extra
                value += 100 * used / (used + free) - first[("disk_used_percent", mount)]
            samples.append(Sample(time + k * period, name, dict(labels), float(value), host))
    write(db, samples)
    return start, start + copies * period


@pytest.mark.parametrize("used_percent", [None, 85.0])
def test_quiet_on_the_recording_of_normal_use(tmp_path: Path, used_percent: float | None) -> None:
    db = tmp_path / "recording.duckdb"
    start, end = recording(db, copies=24, used_percent=used_percent)  # two hours of the same five minutes
    assert backtest(db, start, end, "1m") == []
    assert pending_evaluations(db, start, end, timedelta(minutes=1)) == 0


# -- bursts built to trip a straight line -----------------------------------------------------------


def disk(db: Path, used_percent: float, *, burst: float = 0.0, steady: float = 0.0) -> tuple[datetime, datetime]:
    """Two hours of a 100 GB disk at ``used_percent`` (+-2 MB noise): a ``burst`` of bytes in 2 minutes after
    an hour, or a ``steady`` fill in bytes per second."""
    rnd, total, labels = random.Random(7), 100e9, {"mount": "/", "device": "/dev/sda1", "fstype": "ext4"}
    samples = []
    for i in range(721):
        t = 10 * i
        used = used_percent / 100 * total + steady * t + rnd.uniform(-2e6, 2e6) + burst * min(1, max(0, (t - 3600) / 120))
        for name, value in (("disk_used_bytes", used), ("disk_free_bytes", total - used),
                            ("disk_used_percent", round(100 * used / total, 1)), ("disk_total_bytes", total)):
            samples.append(Sample(T0 + timedelta(seconds=t), name, labels, float(value), "h"))
    write(db, samples)
    return T0, T0 + timedelta(hours=2)


@pytest.mark.parametrize(("used_percent", "burst"), [(30.0, 3e9), (85.0, 1e9)])
def test_a_short_burst_is_not_a_trend(tmp_path: Path, used_percent: float, burst: float) -> None:
    db = tmp_path / "burst.duckdb"
    start, end = disk(db, used_percent, burst=burst)
    step = timedelta(minutes=1)
    assert linear_fit_predicts_full(db, start, end, step) > 20  # a straight line alone would have alerted
    assert pending_evaluations(db, start, end, step) == 0
    assert backtest(db, start, end, "1m") == []


def test_a_steady_fill_of_a_full_disk_fires(tmp_path: Path) -> None:
    db = tmp_path / "steady.duckdb"
    start, end = disk(db, 85.0, steady=0.2e6)  # 15 GB free at 0.2 MB/s: full in about 20 h
    [window] = backtest(db, start, end, "1m")
    assert window["labels"] == {"host": "h", "mount": "/", "device": "/dev/sda1"}
    assert window["start"].startswith("2026-01-01 00:25") and window["end"] == "(still firing)"
    assert 19 < window["max_value"] < 21


def test_a_steady_fill_below_the_fill_level_waits_for_it(tmp_path: Path) -> None:
    db = tmp_path / "low.duckdb"
    start, end = disk(db, 30.0, steady=1e6)  # 70 GB free at 1 MB/s: full in about 19 h, but only 30 % used
    assert linear_fit_predicts_full(db, start, end, timedelta(minutes=1)) > 20
    assert backtest(db, start, end, "1m") == []
