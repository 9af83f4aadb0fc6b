"""A full disk (a real small tmpfs): nothing acknowledged is lost, 503 while full, health failing, recovery without restart."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_helpers import isolated_settings

from monitorkit.owner import client
from monitorkit.owner.health import HealthService
from monitorkit.owner.ingest import IngestService
from monitorkit.owner.owner import Owner
from monitorkit.owner.runtime import serving
from monitorkit.owner.scheduler import Scheduler

JSON_LINES = "application/x-ndjson"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); the test needs root"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI runs as root: a mount that fails there is a broken test machine
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def batch(n: int, start: int) -> bytes:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    lines = [json.dumps({"time": int((t0 + timedelta(seconds=i)).timestamp() * 1e6), "name": "acked_total",
                         "labels": {"i": str(i % 50)}, "value": float(i), "host": "h"}) for i in range(start, start + n)]
    return "\n".join(lines).encode()


def test_a_full_disk_refuses_acknowledges_nothing_unstored_and_recovers(small_disk: Path) -> None:
    db = small_disk / "m.duckdb"
    settings = isolated_settings(**{"store.path": str(db), "store.flush_interval": "0s"})
    with Owner(db, settings=settings) as owner:
        scheduler = Scheduler(owner.store, [])
        with serving(owner, scheduler, settings, threading.Event()) as ctx:
            health, ingest = HealthService(), IngestService()
            for service in (health, ingest):
                service.start(ctx)
                ctx.services[service.name] = service
            api = (ctx.api.port, ctx.api.token)

            def post(start: int) -> int:
                return client.request(api[0], "POST", "/v1/samples", api[1], JSON_LINES, batch(200, start), 30).status

            acked: list[int] = []
            assert post(0) == 200
            acked.append(0)
            filler = fill(small_disk)
            statuses = []
            for k in range(1, 40):  # bounded: the WAL hits the full disk within a few batches
                status = post(k * 200)
                statuses.append(status)
                if status == 200:
                    acked.append(k * 200)
                else:
                    break
            assert statuses[-1] == 503, f"a full disk never refused a batch: {statuses}"
            health.check()  # what the next tick does
            overall, parts = health.snapshot()
            writer = next(p for p in parts if p.component == "writer")
            assert overall == "failing" and writer.status == "failing" and writer.reason.startswith("disk full")
            answer = client.request(api[0], "GET", "/v1/health", api[1], "", b"", 10)
            assert answer.status == 503 and "disk full" in answer.message  # served from memory
            assert [p.status for p in ingest.parts()] == ["degraded"]

            filler.unlink()  # space comes back: writing resumes without a restart
            assert post(100_000) == 200
            acked.append(100_000)
            assert [p.status for p in health.check() if p.component == "writer"] == ["ok"]
            stored = {int(v) for (v,) in owner.store.query("SELECT value FROM samples WHERE name = 'acked_total'")}
            for start in acked:
                assert set(range(start, start + 200)) <= stored, f"batch {start} was acknowledged but is not stored"
            for service in (ingest, health):
                service.stop()

