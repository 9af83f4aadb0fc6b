"""The sender in one process: bounded queue and drops without an owner, direct writes to an owner in-process,
refused batches, start/stop/autostart, and the wire format round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from instrument_helpers import local_owner
from store_helpers import isolated_settings

from monitorkit.errors import InvalidValueError
from monitorkit.instrument import Counter, Histogram, Registry, Sender, client, tool_run
from monitorkit.instrument.tools import Execution
from monitorkit.instrument.transport import Delivery, read_endpoint
from monitorkit.instrument.wire import (
    ARROW_TYPE,
    JSON_TYPE,
    choose_format,
    decode_executions,
    decode_samples,
    encode_executions,
    encode_samples,
)
from monitorkit.owner.owner import Owner
from monitorkit.samples import Sample

T0 = datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=UTC)


def test_without_owner_metric_calls_go_on_and_the_queue_drops_oldest(tmp_path: Path) -> None:
    reg = Registry()
    c = Counter("burst_total", "Burst", ["k"], registry=reg)
    sender = Sender(tmp_path / "none.duckdb", registry=reg, interval=0.01, max_queued_samples=300).start()
    try:
        for i in range(50_000):
            c.labels(k=str(i % 40)).inc()
        for _ in range(20):  # each snapshot queues 40 counter series + the two drop counters
            assert sender.flush() is False
    finally:
        sender.stop(timeout=5)
    assert sum(child.get() for child in c.children()) == 50_000
    assert not sender.connected and sender.sent == 0
    assert sender.queued <= 300
    assert sender.dropped > 0
    assert sender.dropped % 42 == 0  # whole snapshots are dropped, oldest first
    dropped_metric = reg.get("monitorkit_client_dropped_samples_total")
    assert isinstance(dropped_metric, Counter) and dropped_metric.get() == sender.dropped


def test_tool_runs_are_bounded_too(tmp_path: Path) -> None:
    reg = Registry()
    sender = Sender(tmp_path / "none.duckdb", registry=reg, max_queued_executions=5)
    for _ in range(8):
        with tool_run("t", registry=reg):
            pass
    sender.flush()
    assert (sender.queued_executions, sender.dropped_executions) == (5, 3)
    assert reg.get("monitorkit_client_dropped_executions_total").get() == 3  # type: ignore[union-attr]


def test_an_owner_in_this_process_is_written_directly(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    reg = Registry()
    hits = Counter("direct_hits_total", "Hits", ["page"], registry=reg)
    lat = Histogram("direct_seconds", "Latency", buckets=(1, 2), registry=reg)
    with local_owner(db) as lo:
        sender = Sender(db, registry=reg, instance_labels={"app": "test"})
        hits.labels(page="/").inc(4)
        lat.observe(1.5)
        with tool_run("direct_tool", registry=reg):
            pass
        assert sender.flush() is True
        assert sender.connected and sender.sent_executions == 1
        rows = dict(lo.owner.store.query(
            "SELECT name || coalesce(labels['le'], ''), value FROM latest WHERE labels['app'] = 'test'"))
        assert rows["direct_hits_total"] == 4.0
        assert rows["direct_seconds_bucket1.0"] == 0.0 and rows["direct_seconds_bucket2.0"] == 1.0
        assert rows["direct_seconds_sum"] == 1.5 and rows["direct_seconds_count"] == 1.0
        assert lo.owner.store.query("SELECT tool, outcome FROM executions") == [("direct_tool", "ok")]
        assert lo.ingest.samples == sender.sent


def test_start_with_an_owner_object_writes_to_its_store(tmp_path: Path) -> None:
    db = tmp_path / "o.duckdb"
    reg = Registry()
    Counter("owned_total", "O", registry=reg).inc(2)
    with Owner(db, settings=isolated_settings(), serve=False) as owner:
        sender = client.start(db, registry=reg, interval=60, owner=owner)
        try:
            assert client.start(db, registry=reg, interval=60) is sender  # once per registry
            assert client.sender(reg) is sender
        finally:
            assert client.stop(reg) is True
        assert client.sender(reg) is None
        owner.store.flush()
        assert owner.store.query("SELECT value, labels['pid'] FROM latest WHERE name = 'owned_total'") == [
            (2.0, str(__import__("os").getpid()))]


class Refusing:
    """A target that refuses every sample batch, as an owner does with 400."""

    def __init__(self) -> None:
        self.calls = 0

    def send_samples(self, samples: list[Sample], extra: dict[str, str]) -> Delivery:
        self.calls += 1
        return Delivery(400, "sample 1: invalid")

    def send_executions(self, rows: list[Execution]) -> Delivery:
        return Delivery(200, "ok")


def test_a_refused_batch_is_counted_and_not_resent(tmp_path: Path) -> None:
    reg = Registry()
    Counter("x_total", "X", registry=reg).inc()
    target = Refusing()
    sender = Sender(tmp_path / "x.duckdb", registry=reg, target=target)
    assert sender.flush() is True
    assert sender.rejected > 0 and sender.queued == 0 and target.calls == 1
    assert sender.last_error is not None and "owner refused" in sender.last_error


def test_autostart_on_first_metric_when_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITORKIT_INSTRUMENT__AUTOSTART", "true")
    monkeypatch.setenv("MONITORKIT_INSTRUMENT__DB", str(tmp_path / "auto.duckdb"))
    monkeypatch.setenv("MONITORKIT_INSTRUMENT__INTERVAL", "30")
    reg = Registry()
    reg.on_first_register = client.autostart
    assert client.sender(reg) is None
    Counter("auto_total", "A", registry=reg)
    running = client.sender(reg)
    try:
        assert running is not None and running.running
        assert running.db == tmp_path / "auto.duckdb" and running.interval == 30.0
    finally:
        client.stop(reg)


def test_autostart_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITORKIT_INSTRUMENT__AUTOSTART", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no monitorkit.toml there
    reg = Registry()
    reg.on_first_register = client.autostart
    Counter("manual_total", "M", registry=reg)
    assert client.sender(reg) is None


def test_sender_refuses_bad_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidValueError, match="max_queued_samples"):
        Sender(tmp_path / "x", registry=Registry(), max_queued_samples=0)
    with pytest.raises(InvalidValueError, match="wire format"):
        Sender(tmp_path / "x", registry=Registry(), wire_format="xml")
    with pytest.raises(ValueError, match="interval"):
        Sender(tmp_path / "x", registry=Registry(), interval=0)


def test_no_sidecar_means_no_endpoint(tmp_path: Path) -> None:
    assert read_endpoint(tmp_path / "none.duckdb") is None
    (tmp_path / "dead.duckdb.owner.json").write_text(
        '{"pid": 999999999, "port": 1, "token": "t", "started": "", "path": "", '
        '"extra": {"ingest_port": 2, "ingest_token": "x"}}')
    assert read_endpoint(tmp_path / "dead.duckdb") is None  # a dead owner's sidecar is ignored


def test_the_endpoint_is_the_owner_api_of_a_live_owner(tmp_path: Path) -> None:
    import json
    import os

    from monitorkit.owner.sidecar import process_start

    def sidecar(name: str, extra: dict[str, object]) -> Path:
        # This process as the owner: its PID and its start time (a sidecar is trusted only with both).
        extra = {**extra, "proc_start": process_start(os.getpid())}
        info = {"pid": os.getpid(), "port": 1, "token": "t", "started": "", "path": "", "extra": extra}
        (tmp_path / f"{name}.owner.json").write_text(json.dumps(info))
        return tmp_path / name

    assert read_endpoint(sidecar("api.duckdb", {"api_port": 4321, "api_token": "tok"})) == (os.getpid(), 4321, "tok")
    # The separate ingest server (ingest_port/ingest_token) is gone: such an owner is not reachable.
    assert read_endpoint(sidecar("old.duckdb", {"ingest_port": 2, "ingest_token": "x"})) is None


@pytest.mark.parametrize("content_type", [JSON_TYPE, ARROW_TYPE])
def test_wire_round_trip(content_type: str) -> None:
    samples = [Sample(T0 + timedelta(seconds=i), "m_total", {"k": str(i)}, i * 1.5, "h") for i in range(3)]
    back = decode_samples(content_type, encode_samples(samples, content_type, {"pid": "1", "k": "lost"}))
    assert back == [s._replace(labels={"pid": "1", "k": str(i)}) for i, s in enumerate(samples)]
    runs = [Execution("r1", "t", T0, 0.5, "timeout", "TimeoutError", "slow", {"a": "b"}, "h", 12),
            Execution("r2", "t", T0, 0.0, "ok", None, None, {}, "h", 12)]
    assert decode_executions(content_type, encode_executions(runs, content_type)) == runs


def test_choose_format() -> None:
    assert choose_format("json") == JSON_TYPE and choose_format("arrow") == ARROW_TYPE
    assert choose_format("auto") == ARROW_TYPE  # pyarrow is loaded in the test process
