"""SIGKILL an owner mid-write, again and again on one file: it reopens with everything flushed."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import duckdb
import pytest
from store_helpers import isolated_settings, read_line, spawn_python

from monitorkit import Store
from monitorkit.owner.connect import connect
from monitorkit.owner.sidecar import read_owner, sidecar_path

BATCH = 2000  # samples per write: large enough that a kill often lands inside a commit
FLUSH_EVERY = 3  # batches between flushes: the most a kill may lose
FLUSH_INTERVAL = "0.25"  # store.flush_interval of the child: its timer commits between the explicit flushes too
RUNS = 10

# Writes a batch every ~100 ms with the writer grouping batches per flush interval, flushes every
# FLUSH_EVERY batches and then prints the committed count; rolls up now and then so kills also
# land in rollup transactions. Never exits by itself.
CRASH_CHILD = """
    import sys, time
    from datetime import datetime, timezone
    from monitorkit import Owner, Sample
    db, batch, every, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    owner = Owner(db)
    store = owner.store
    store.writer.set_flush_interval(interval)
    print("start", store.query("SELECT count(*) FROM samples_raw")[0][0], flush=True)
    n = batches = 0
    while True:
        now = datetime.now(timezone.utc)
        store.write([Sample(now, "crash_test", {"i": str(i % 50)}, float(n + i)) for i in range(batch)])
        n += batch
        batches += 1
        if batches % every == 0:
            store.flush()
            print("committed", n, flush=True)
            if batches % (every * 2) == 0:
                store.rollup(now)
        time.sleep(0.1)
"""


def rollups_consistent(store: Store) -> None:
    """Every raw row before the 1m watermark is counted once in 1m, every 1m row before the 1h one in 1h."""
    marks = dict(store.query("SELECT tier, watermark FROM rollup_state"))
    if "1m" in marks:
        raw = store.query("SELECT count(*) FROM samples_raw WHERE time < ?", [marks["1m"]])[0][0]
        assert store.query("SELECT coalesce(sum(count), 0) FROM samples_1m")[0][0] == raw
    if "1h" in marks:
        minute = store.query("SELECT coalesce(sum(count), 0) FROM samples_1m WHERE bucket < ?", [marks["1h"]])[0][0]
        assert store.query("SELECT coalesce(sum(count), 0) FROM samples_1h")[0][0] == minute


@pytest.mark.slow
def test_killed_owner_loses_at_most_one_flush_interval(tmp_db: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    expected = 0
    for run in range(RUNS):
        where = f"run {run}, seed {seed}"
        proc = spawn_python(CRASH_CHILD, str(tmp_db), str(BATCH), str(FLUSH_EVERY), FLUSH_INTERVAL,
                            cwd=tmp_db.parent)
        try:
            start = int(read_line(proc, "start").split()[1])
            assert start == expected, f"{where}: the previous run's rows changed after reopening"
            time.sleep(rng.uniform(0.2, 1.5))  # the random moment of the crash, not a wait for data
            assert proc.poll() is None, f"{where}: the owner died by itself"
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL
        committed = [int(line.split()[1]) for line in out.splitlines() if line.startswith("committed")]
        flushed = start + (committed[-1] if committed else 0)

        # The dead owner's sidecar is still there but recognised as stale.
        assert sidecar_path(tmp_db).exists()
        assert read_owner(tmp_db) is None, where
        con = connect(tmp_db)
        try:
            assert isinstance(con, duckdb.DuckDBPyConnection), where
            (direct,) = con.execute("SELECT count(*) FROM samples_raw").fetchone() or (None,)
        finally:
            con.close()

        with Store(tmp_db, settings=isolated_settings()) as store:
            (count,) = store.query("SELECT count(*) FROM samples_raw")[0]
            rollups_consistent(store)
            # Series go in with their first samples: all 50 once anything was committed, none before.
            assert store.query("SELECT count(*) FROM series")[0][0] == (50 if count else 0), where
        assert direct == count, where
        assert flushed <= count <= flushed + FLUSH_EVERY * BATCH, f"{where}: {count} rows, {flushed} flushed"
        assert count % BATCH == 0, f"{where}: a batch was half written (grouped commits are whole too)"
        expected = count
    assert expected > 0
