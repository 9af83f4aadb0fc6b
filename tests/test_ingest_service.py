"""The owner's ingest endpoint over HTTP: token, formats, validation (400), executions, sidecar, stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from instrument_helpers import LocalOwner, local_owner

from monitorkit.instrument.tools import Execution
from monitorkit.instrument.transport import (
    EXECUTIONS_PATH,
    SAMPLES_PATH,
    Delivery,
    http_post,
    read_endpoint,
)
from monitorkit.instrument.wire import ARROW_TYPE, JSON_TYPE, encode_executions, encode_samples
from monitorkit.owner.sidecar import read_owner
from monitorkit.samples import Sample

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalOwner]:
    db = tmp_path_factory.mktemp("ingest") / "m.duckdb"
    with local_owner(db, max_body_bytes=200_000) as lo:
        yield lo


def post(lo: LocalOwner, path: str, body: bytes, content_type: str = JSON_TYPE, token: str | None = None) -> Delivery:
    return http_post(lo.ctx.api.port, path, token or lo.ctx.api.token, content_type, body, timeout=10)


def line(**fields: object) -> str:
    base: dict[str, object] = {"time": 1_772_366_400_000_000, "name": "app_hits_total", "labels": {"k": "v"},
                               "value": 1.0, "host": "h1"}
    base.update(fields)
    return json.dumps(base)


def stored(lo: LocalOwner, name: str) -> list[tuple[object, ...]]:
    lo.owner.store.flush()
    return lo.owner.store.query(
        "SELECT time, host, labels, value FROM samples WHERE name = ? ORDER BY time, value", [name])


def test_sidecar_publishes_the_owner_api_port_and_token(running: LocalOwner) -> None:
    info = read_owner(running.owner.db)
    assert info is not None
    assert info.extra["api_port"] == running.ctx.api.port
    assert info.extra["api_token"] == running.ctx.api.token
    assert read_endpoint(running.owner.db) == (info.pid, running.ctx.api.port, running.ctx.api.token)
    assert not any(key.startswith(("ingest_", "control_")) for key in info.extra), "one API, one token"


def test_wrong_or_missing_token_is_refused(running: LocalOwner) -> None:
    answer = post(running, SAMPLES_PATH, line().encode(), token="wrong-token")
    assert answer.status == 401 and "token" in answer.message
    assert stored(running, "app_hits_total") == []


def test_json_lines_are_validated_and_committed(running: LocalOwner) -> None:
    body = "\n".join([line(name="json_hits_total", value=3.0),
                      line(name="json_hits_total", value=4.5, time=1_772_366_401_000_000)]).encode()
    answer = post(running, SAMPLES_PATH, body)
    assert answer == Delivery(200, "committed 2 samples")
    assert stored(running, "json_hits_total") == [
        (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), "h1", {"k": "v"}, 3.0),
        (datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC), "h1", {"k": "v"}, 4.5),
    ]


def test_arrow_batches_are_committed(running: LocalOwner) -> None:
    samples = [Sample(T0 + timedelta(seconds=i), "arrow_depth", {"q": str(i)}, float(i), "h2") for i in range(3)]
    answer = post(running, SAMPLES_PATH, encode_samples(samples, ARROW_TYPE, {"pid": "7"}), ARROW_TYPE)
    assert answer.status == 200
    assert stored(running, "arrow_depth") == [
        (T0 + timedelta(seconds=i), "h2", {"pid": "7", "q": str(i)}, float(i)) for i in range(3)]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (line() + "\n" + line(name="bad-name"), JSON_TYPE, "sample 2: invalid metric name 'bad-name'"),
        (line(labels={"k": 1}), JSON_TYPE, "sample 1: label 'k' on metric 'app_hits_total' has a int value"),
        (line(value=None), JSON_TYPE, "must be a number"),
        (line(time="2026-03-01"), JSON_TYPE, "time must be integer microseconds"),
        ("{not json", JSON_TYPE, "line 1 is not JSON"),
        ("[1, 2]", JSON_TYPE, "must be a JSON object"),
        (line(), "text/csv", "unsupported Content-Type 'text/csv'"),
        ("garbage", ARROW_TYPE, "not an Arrow IPC stream"),
    ],
)
def test_invalid_batches_are_refused_whole_with_400(running: LocalOwner, body: str, content_type: str,
                                                     message: str) -> None:
    answer = post(running, SAMPLES_PATH, body.encode(), content_type)
    assert answer.status == 400
    assert message in answer.message
    assert stored(running, "app_hits_total") == []


def test_unknown_path_and_oversized_body(running: LocalOwner) -> None:
    assert post(running, "/v1/other", b"").status == 404
    big = post(running, SAMPLES_PATH, b"x" * 300_000)
    assert big.status == 413 and "over the limit" in big.message


def run(run_id: str, outcome: str = "ok", **kw: object) -> Execution:
    fields: dict[str, object] = dict(run_id=run_id, tool="resize", started=T0, duration_s=0.25, outcome=outcome,
                                     error_type=None, error_message=None, labels={"size": "big"}, host="h1", pid=42)
    fields.update(kw)
    return Execution(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("content_type", [JSON_TYPE, ARROW_TYPE])
def test_executions_are_written_once_even_when_resent(running: LocalOwner, content_type: str) -> None:
    prefix = content_type[-6:]
    rows = [run(f"{prefix}-1"), run(f"{prefix}-2", "error", error_type="ValueError", error_message="bad")]
    body = encode_executions(rows, content_type)
    assert post(running, EXECUTIONS_PATH, body, content_type) == Delivery(200, "committed 2 tool runs")
    assert post(running, EXECUTIONS_PATH, body, content_type).status == 200  # a resend after a lost answer
    got = running.owner.store.query(
        "SELECT run_id, tool, started, duration_s, outcome, error_type, error_message, labels, host, pid "
        "FROM executions WHERE run_id LIKE ? ORDER BY run_id", [f"{prefix}-%"])
    assert got == [tuple(r) for r in rows]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"outcome": "crashed"}, "outcome must be one of ok, error, timeout, cancelled"),
        ({"duration_s": -1.0}, "duration_s must be a finite number >= 0"),
        ({"labels": {"1x": "y"}}, "invalid label name '1x'"),
        ({"run_id": ""}, "run_id must be a non-empty string"),
        ({"tool": ""}, "tool name must be a non-empty string"),
    ],
)
def test_invalid_executions_are_refused(running: LocalOwner, bad: dict[str, object], message: str) -> None:
    fields = {"run_id": "bad-run", **bad}
    body = encode_executions([run(**fields)], JSON_TYPE)  # type: ignore[arg-type]
    answer = post(running, EXECUTIONS_PATH, body)
    assert answer.status == 400 and f"execution 1: {message}" in answer.message
    assert running.owner.store.query("SELECT count(*) FROM executions WHERE run_id = 'bad-run'") == [(0,)]


def test_tick_writes_the_ingest_metrics(running: LocalOwner) -> None:
    assert post(running, SAMPLES_PATH, line(name="tick_hits_total").encode()).status == 200
    assert post(running, SAMPLES_PATH, b"", token="nope").status == 401
    running.scheduler.run_once()
    running.owner.store.flush()
    rows = dict(running.owner.store.query(
        "SELECT name || coalesce(labels['status'], ''), value FROM latest WHERE name LIKE 'monitorkit_ingest%'"))
    assert rows["monitorkit_ingest_samples_total"] >= 1
    assert rows["monitorkit_ingest_requests_total200"] >= 1
    assert rows["monitorkit_ingest_requests_total401"] >= 1


def test_stop_closes_the_port_and_forgets_the_local_service(tmp_path: Path) -> None:
    from monitorkit.instrument.transport import local_sink

    with local_owner(tmp_path / "s.duckdb") as lo:
        assert local_sink(tmp_path / "s.duckdb") is lo.ingest
        port = lo.ctx.api.port
    assert local_sink(tmp_path / "s.duckdb") is None
    with pytest.raises(OSError):
        http_post(port, SAMPLES_PATH, "t", JSON_TYPE, b"", timeout=2)


def test_store_sink_refuses_invalid_samples_and_reports_a_closed_store(tmp_path: Path) -> None:
    from store_helpers import isolated_settings

    from monitorkit.owner.ingest import StoreSink
    from monitorkit.store import Store

    store = Store(tmp_path / "sink.duckdb", settings=isolated_settings())
    sink = StoreSink(store)
    refused = sink.accept_samples([Sample(T0, "bad-name", {}, 1.0, "h")])
    assert refused.status == 400 and "invalid metric name" in refused.message
    assert sink.accept_samples([Sample(T0, "ok_total", {}, 1.0, "h")]) == Delivery(200, "committed 1 samples")
    store.close()
    assert sink.accept_samples([Sample(T0, "ok_total", {}, 2.0, "h")]).status == 503
    assert sink.accept_executions([run("after-close")]).status == 503
