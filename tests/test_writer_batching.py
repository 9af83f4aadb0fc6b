"""The writer groups what arrives within `store.flush_interval` into one commit; flush/submit/close stay immediate."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from store_helpers import isolated_settings

from monitorkit.samples import Sample
from monitorkit.store import Store
from monitorkit.store.writer import CommitInfo

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def tick(i: int, n: int = 5) -> list[Sample]:
    """Return one tick of ``n`` samples at T0 + i seconds."""
    return [Sample(T0 + timedelta(seconds=i), "batch_test", {"i": str(k)}, float(i), "h") for k in range(n)]


def rows(store: Store) -> int:
    """Return the committed row count, read through a cursor like any reader."""
    return int(store.query("SELECT count(*) FROM samples_raw")[0][0])


def test_batches_within_the_interval_share_one_commit_and_flush_commits_at_once(tmp_path: Path) -> None:
    with Store(tmp_path / "m.duckdb", settings=isolated_settings()) as store:
        store.writer.set_flush_interval(3600)  # never due by time within this test
        for i in range(4):
            store.write(tick(i))
        assert rows(store) == 0  # still grouped, not committed
        assert store.writer.queued == 20
        store.flush()
        assert rows(store) == 20
        assert store.writer.batches == 1  # four ticks, one transaction


def test_samples_are_committed_after_the_interval_without_a_flush(tmp_path: Path) -> None:
    committed = threading.Event()
    infos: list[CommitInfo] = []

    def hook(info: CommitInfo) -> None:
        infos.append(info)
        committed.set()

    with Store(tmp_path / "m.duckdb", settings=isolated_settings(), hooks=[hook]) as store:
        store.writer.set_flush_interval(0.05)
        store.write(tick(0))
        store.write(tick(1))
        assert committed.wait(30), "the interval passed but nothing was committed"
        assert rows(store) == sum(i.rows for i in infos) > 0


def test_submit_commits_pending_samples_first_and_close_writes_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with Store(db, settings=isolated_settings()) as store:
        store.writer.set_flush_interval(3600)
        store.write(tick(0))
        seen = store.submit(lambda con: con.execute("SELECT count(*) FROM samples_raw").fetchone()[0])  # type: ignore[index]
        assert seen.result(30) == 5  # a task sees every sample queued before it
        store.write(tick(1))
    with Store(db, settings=isolated_settings()) as store:
        assert rows(store) == 10  # close() committed the grouped tick


def test_interval_zero_commits_each_batch(tmp_path: Path) -> None:
    with Store(tmp_path / "m.duckdb", settings=isolated_settings()) as store:
        store.writer.set_flush_interval(0)
        for i in range(3):
            store.write(tick(i))
            store.flush()
        assert store.writer.batches == 3
        assert rows(store) == 15


def test_the_owner_applies_store_flush_interval(tmp_path: Path) -> None:
    from monitorkit.owner.runtime import run_owner

    stop = threading.Event()
    seen: list[float] = []

    def ready(ctx: object) -> None:
        seen.append(ctx.owner.store.writer.flush_interval)  # type: ignore[attr-defined]
        stop.set()

    settings = isolated_settings(**{"store.path": str(tmp_path / "m.duckdb"), "store.flush_interval": "2s"})
    run_owner(settings, stop, collectors=[], services=(), on_ready=ready)
    assert seen == [2.0]
