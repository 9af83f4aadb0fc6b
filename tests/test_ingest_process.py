"""Instrumentation across processes: an application process writes into the owner's file; with the owner
stopped it goes on, drops the oldest batches with a count, and delivers again once an owner starts."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from instrument_helpers import OwnerProcess
from shared_helpers import child_env
from store_helpers import PYTHON

import monitorkit
from monitorkit.instrument import Counter, Registry, Sender, tool_run

pytestmark = pytest.mark.slow

# The application: autostarts its sender from the environment, then counts, observes, runs tools
# (ok, error, timeout, cancelled) and tracks protocol exchanges; stop() delivers the last snapshot.
APP = textwrap.dedent(
    """
    import asyncio, json, os
    from monitorkit import instrument as mi

    jobs = mi.Counter("jobs_processed_total", "Jobs done", labelnames=["queue"])
    depth = mi.Gauge("queue_depth", "Jobs waiting")
    lat = mi.Histogram("job_seconds", "Job time", buckets=(0.1, 1, 10))
    for _ in range(7):
        jobs.labels(queue="a").inc()
    jobs.labels("b").inc(3)
    depth.set(4)
    depth.dec()
    for v in (0.05, 0.1, 0.5, 3, 30):
        lat.observe(v)

    with mi.tool_run("resize", {"size": "big"}):
        pass
    try:
        with mi.tool_run("resize"):
            raise ValueError("bad pixel")
    except ValueError:
        pass

    @mi.tool("fetch")
    async def fetch(delay):
        await asyncio.sleep(delay)

    @mi.track(protocol="grpc", method="Search")
    def search():
        return 1

    async def main():
        try:
            await asyncio.wait_for(fetch(10), 0.01)
        except TimeoutError:
            pass
        try:
            async with mi.tool_run("deadline"):
                await asyncio.wait_for(asyncio.sleep(10), 0.01)
        except TimeoutError:
            pass
        async with mi.track(protocol="http", method="POST") as ex:
            ex.status = 201
            ex.request_bytes = 100
            ex.response_bytes = 2048

    asyncio.run(main())
    search()
    try:
        with mi.track(protocol="http", method="GET"):
            raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        pass
    sender = mi.sender()
    print(json.dumps({"autostarted": sender is not None, "delivered": mi.stop(), "dropped": sender.dropped,
                      "pid": os.getpid(), "format": sender.content_type}))
    """
)


def latest(con: object, pid: str) -> dict[str, float]:
    rows = con.execute(  # type: ignore[attr-defined]
        "SELECT name, labels, value FROM latest WHERE labels['pid'] = ?", [pid]).fetchall()
    out = {}
    for name, labels, value in rows:
        extra = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "pid")
        out[f"{name}{{{extra}}}"] = value
    return out


def test_an_application_process_writes_into_the_owners_file(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with OwnerProcess(db) as owner:
        env = child_env(MONITORKIT_INSTRUMENT__AUTOSTART="true", MONITORKIT_INSTRUMENT__DB=str(db),
                        MONITORKIT_INSTRUMENT__INTERVAL="0.2")
        app = subprocess.run([PYTHON, "-c", APP], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
        assert app.returncode == 0, app.stderr
        report = json.loads(app.stdout)
        assert report["autostarted"] and report["delivered"] and report["dropped"] == 0
        assert report["format"] == "application/x-ndjson"  # the application never loaded pyarrow

        con = monitorkit.connect(db)
        try:
            got = latest(con, str(report["pid"]))
            runs = con.execute(
                "SELECT tool, outcome, error_type, error_message, labels, pid FROM executions ORDER BY started"
            ).fetchall()
        finally:
            con.close()
        assert owner.proc.poll() is None
    assert got["jobs_processed_total{queue=a}"] == 7.0
    assert got["jobs_processed_total{queue=b}"] == 3.0
    assert got["queue_depth{}"] == 3.0
    assert [got[f"job_seconds_bucket{{le={le}}}"] for le in ("0.1", "1.0", "10.0", "+Inf")] == [2.0, 3.0, 4.0, 5.0]
    assert got["job_seconds_sum{}"] == pytest.approx(33.65)
    assert got["job_seconds_count{}"] == 5.0
    assert got["tool_runs_total{outcome=ok,tool=resize}"] == 1.0
    assert got["tool_runs_total{outcome=error,tool=resize}"] == 1.0
    assert got["tool_runs_total{outcome=cancelled,tool=fetch}"] == 1.0
    assert got["tool_runs_total{outcome=timeout,tool=deadline}"] == 1.0
    assert got["tool_run_duration_seconds_count{tool=resize}"] == 2.0
    assert got["protocol_requests_total{method=POST,protocol=http,status=201}"] == 1.0
    assert got["protocol_requests_total{method=Search,protocol=grpc,status=ok}"] == 1.0
    assert got["protocol_requests_total{method=GET,protocol=http,status=error}"] == 1.0
    assert got["protocol_request_bytes_total{method=POST,protocol=http}"] == 100.0
    assert got["protocol_response_bytes_total{method=POST,protocol=http}"] == 2048.0
    assert got["protocol_errors_total{error_type=ConnectionResetError,method=GET,protocol=http}"] == 1.0
    assert got["protocol_request_duration_seconds_count{method=POST,protocol=http}"] == 1.0
    assert got["monitorkit_client_dropped_samples_total{}"] == 0.0
    pid = report["pid"]
    assert runs == [
        ("resize", "ok", None, None, {"size": "big"}, pid),
        ("resize", "error", "ValueError", "bad pixel", {}, pid),
        ("fetch", "cancelled", "CancelledError", None, {}, pid),
        ("deadline", "timeout", "TimeoutError", None, {}, pid),
    ]


def test_owner_down_the_application_goes_on_drops_and_delivers_when_an_owner_starts(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    reg = Registry()
    burst = Counter("burst_total", "Burst", ["k"], registry=reg)
    sender = Sender(db, registry=reg, interval=0.05, max_queued_samples=200, instance_labels={"app": "bursty"})
    sender.start()
    try:
        with OwnerProcess(db) as first:
            burst.labels(k="warmup").inc()
            assert sender.flush() is True and sender.connected
            first.stop()

        # No owner now: a burst of calls completes, nothing blocks on delivery, batches pile up and drop.
        for i in range(30_000):
            burst.labels(k=str(i % 20)).inc()
        with tool_run("while_down", registry=reg):
            pass
        for _ in range(15):
            assert sender.flush() is False
        assert sum(c.get() for c in burst.children()) == 30_001
        assert not sender.connected and sender.dropped > 0 and sender.queued <= 200
        assert "owner unreachable" in (sender.last_error or "")

        with OwnerProcess(db):
            assert sender.flush() is True and sender.connected
            assert sender.flush() is True  # carries the drop count as it stands after the last drop
            con = monitorkit.connect(db)
            try:
                values = dict(con.execute(
                    "SELECT coalesce(labels['k'], name), value FROM latest WHERE labels['app'] = 'bursty'").fetchall())
                runs = con.execute("SELECT tool, outcome FROM executions").fetchall()
                dropped = sender.dropped  # the sender goes on (and drops again) once this owner stops
            finally:
                con.close()
    finally:
        sender.stop(timeout=5)
    assert sum(v for k, v in values.items() if k.isdigit() or k == "warmup") == 30_001
    assert values["monitorkit_client_dropped_samples_total"] == dropped > 0
    assert runs == [("while_down", "ok")]
