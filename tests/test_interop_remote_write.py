"""remote_write: the bulk decoder against protobuf's own, and the receiver's append rules over the owner API."""

from __future__ import annotations

import math
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cramjam
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from interop_helpers import owner_thread
from shared_helpers import wait_for
from store_helpers import isolated_settings

from monitorkit.interop import prompb
from monitorkit.interop.receivers import REMOTE_WRITE_PATH, ReceiverService
from monitorkit.interop.remote_write import RemoteWriteError, decode, decode_body, labels_of
from monitorkit.owner.api import OwnerApi
from monitorkit.owner.client import request
from monitorkit.owner.schema import SCHEMA
from monitorkit.owner.sidecar import free_port, read_owner
from monitorkit.samples import HOST
from monitorkit.store import Store

T0 = 1_700_000_000_000
LABEL_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
VALUES = st.floats(width=64) | st.just(0.0) | st.sampled_from([-0.0, 1e308, 5e-324])
TIMES = st.integers(-(2**63), 2**63 - 1) | st.just(0) | st.integers(T0, T0 + 10**6)


def request_of(series: list[tuple[dict[str, str], list[tuple[float, int]]]], exemplar: bool = False) -> Any:
    req = prompb.WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for name, value in labels.items():
            ts.labels.add(name=name, value=value)
        for value, when in samples:  # type: ignore[assignment]
            ts.samples.add(value=value, timestamp=when)
        if exemplar:
            ts.exemplars.add(value=1.0, timestamp=1)
    return req


def reference(req: Any) -> list[tuple[tuple[tuple[str, str], ...], list[tuple[str, int]]]]:
    """What protobuf's own classes read: per series its labels and (value bits, ms) in order."""
    return [(tuple((lb.name, lb.value) for lb in ts.labels),
             [(np.float64(s.value).tobytes().hex(), s.timestamp) for s in ts.samples]) for ts in req.timeseries]


def bulk(data: bytes) -> list[tuple[tuple[tuple[str, str], ...], list[tuple[str, int]]]]:
    d = decode(data)
    out = []
    for i, key in enumerate(d.keys):
        rows = d.series == i
        samples = [(np.float64(v).tobytes().hex(), int(t)) for v, t in zip(d.values[rows], d.ts_ms[rows], strict=True)]
        out.append((tuple(labels_of(key).items()), samples))
    return out


series_strategy = st.lists(st.tuples(
    st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), LABEL_TEXT, max_size=6),
    st.lists(st.tuples(VALUES, TIMES), max_size=4)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(series_strategy, st.booleans())
def test_the_bulk_decoder_reads_what_protobuf_reads(series: list, exemplar: bool) -> None:
    req = request_of(series, exemplar)
    assert bulk(req.SerializeToString()) == reference(req)


def test_odd_but_valid_encodings_take_the_slow_path_with_the_same_result() -> None:
    label = prompb.Label(name="__name__", value="m").SerializeToString()
    sample_ts_first = b"\x10\x05\x09" + np.float64(2.5).tobytes()  # timestamp before value: fields in any order
    series = b"\x12" + bytes([len(sample_ts_first)]) + sample_ts_first + b"\x0a" + bytes([len(label)]) + label
    data = b"\x0a" + bytes([len(series)]) + series
    d = decode(data)
    assert labels_of(d.keys[0]) == {"__name__": "m"}
    assert d.values.tolist() == [2.5] and d.ts_ms.tolist() == [5]


@pytest.mark.parametrize("body, message", [
    (b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", "bad length header"),
    (b"\x05garbage", "not snappy-compressed"),
    (bytes(cramjam.snappy.compress_raw(b"\x0a\x05\x0a\x10")), "WriteRequest"),
])
def test_bodies_that_do_not_decode_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(RemoteWriteError, match=message):
        decode_body(body)


def test_an_announced_size_over_the_limit_is_refused_before_inflating() -> None:
    body = bytes(cramjam.snappy.compress_raw(bytes(10_000)))
    with pytest.raises(RemoteWriteError, match="over the limit"):
        decode_body(body, limit=1000)


# -- the receiver over the owner API --------------------------------------------------------------


class Receiver:
    def __init__(self, store: Store, api: OwnerApi, service: ReceiverService) -> None:
        self.store, self.api, self.service = store, api, service

    def post(self, req: Any, token: str | None = None) -> tuple[int, str]:
        body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
        answer = request(self.api.port, "POST", REMOTE_WRITE_PATH, token or self.api.token, "application/x-protobuf",
                         body, 30)
        return answer.status, answer.message

    def rows(self) -> list[tuple[Any, ...]]:
        return self.store.query("SELECT host, name, labels, epoch_ms(time), value FROM samples ORDER BY name, time")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with Store(tmp_path / "m.duckdb", schema=SCHEMA) as store:
        api = OwnerApi()
        api.start()
        service = ReceiverService()
        service.start_on(store, api, otlp=False)
        try:
            yield Receiver(store, api, service)
        finally:
            service.stop()
            api.stop()


def up(value: float, when: int, instance: str = "db1:9100", **extra: str) -> tuple[dict[str, str], list]:
    return {"__name__": "up", "job": "node", "instance": instance, **extra}, [(value, when)]


def test_samples_are_stored_with_their_times_labels_and_host_after_commit(receiver: Receiver) -> None:
    status, _ = receiver.post(request_of([up(1, T0), up(1, T0, "127.0.0.1:9100"), up(0, T0, "x:1", host="box")]))
    assert status == 204
    assert sorted(receiver.rows(), key=repr) == sorted([
        ("db1", "up", {"instance": "db1:9100", "job": "node"}, T0, 1.0),
        (HOST, "up", {"instance": "127.0.0.1:9100", "job": "node"}, T0, 1.0),
        ("box", "up", {"host": "box", "instance": "x:1", "job": "node"}, T0, 0.0),
    ], key=repr)


def test_a_resend_is_dropped_as_duplicates_and_new_samples_append(receiver: Receiver) -> None:
    first = request_of([up(1, T0), up(1, T0, "db2:9100")])
    assert receiver.post(first)[0] == 204
    assert receiver.post(first)[0] == 204  # a sender retrying after a lost answer: the same last samples
    assert receiver.post(request_of([up(0, T0 + 15_000)]))[0] == 204
    assert sorted((r[2]["instance"], r[3], r[4]) for r in receiver.rows()) == [
        ("db1:9100", T0, 1.0), ("db1:9100", T0 + 15_000, 0.0), ("db2:9100", T0, 1.0)]
    counts = receiver.service.remote_write.counts.values
    assert counts["duplicates"] == 2 and counts["samples"] == 3


def test_a_resend_with_older_samples_of_a_series_is_out_of_order_as_in_prometheus(receiver: Receiver) -> None:
    batch = request_of([({"__name__": "g"}, [(1.0, T0), (2.0, T0 + 15_000)])])
    assert receiver.post(batch)[0] == 204
    status, message = receiver.post(batch)  # T0 is older than the stored T0 + 15 s: Prometheus 2.42 answers 400 too
    assert status == 400 and "out of order sample" in message
    assert [(r[3], r[4]) for r in receiver.rows()] == [(T0, 1.0), (T0 + 15_000, 2.0)]


def test_out_of_order_or_a_new_value_for_a_stored_time_refuses_the_whole_request(receiver: Receiver) -> None:
    assert receiver.post(request_of([up(1, T0 + 15_000)]))[0] == 204
    status, message = receiver.post(request_of([up(1, T0 + 30_000, "other:1"), up(1, T0)]))
    assert status == 400 and "out of order sample" in message and "nothing of this request was written" in message
    status, message = receiver.post(request_of([up(0, T0 + 15_000)]))
    assert status == 400 and "duplicate sample for timestamp" in message
    assert [(r[2]["instance"], r[3]) for r in receiver.rows()] == [("db1:9100", T0 + 15_000)]


def test_within_a_request_older_samples_of_a_series_are_dropped_and_stale_markers_not_stored(
        receiver: Receiver) -> None:
    stale = float(np.frombuffer(bytes.fromhex("020000000000f07f"), "<f8")[0])  # Prometheus's StaleNaN
    assert math.isnan(stale)
    labels = {"__name__": "g", "job": "j"}
    status, _ = receiver.post(request_of([(labels, [(1.0, T0 + 2), (2.0, T0 + 1), (3.0, T0 + 3), (stale, T0 + 4)])]))
    assert status == 204
    assert [(r[3], r[4]) for r in receiver.rows()] == [(T0 + 2, 1.0), (T0 + 3, 3.0)]
    counts = receiver.service.remote_write.counts.values
    assert counts["out_of_order"] == 1 and counts["nonfinite"] == 1


def test_series_the_store_refuses_are_skipped_not_fatal(receiver: Receiver) -> None:
    bad = ({"__name__": "ok_name", "bad-label": "x"}, [(1.0, T0)])
    no_name = ({"job": "x"}, [(1.0, T0)])
    assert receiver.post(request_of([bad, no_name, up(1, T0)]))[0] == 204
    assert [r[1] for r in receiver.rows()] == ["up"]
    assert receiver.service.remote_write.counts.values["refused"] == 2


def test_the_route_needs_the_owner_api_token(receiver: Receiver) -> None:
    assert receiver.post(request_of([up(1, T0)]), token="wrong")[0] == 401
    assert receiver.rows() == []


def test_many_series_in_one_request_match_value_for_value(receiver: Receiver) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(size=3000)
    series = [({"__name__": f"m_{i % 7}", "i": str(i)}, [(float(values[i]), T0 + i)]) for i in range(3000)]
    assert receiver.post(request_of(series))[0] == 204
    stored = receiver.store.query("SELECT labels['i']::INTEGER, epoch_ms(time), value FROM samples ORDER BY 1")
    assert [(i, T0 + i, float(values[i])) for i in range(3000)] == [(a, b, c) for a, b, c in stored]


def test_a_failed_commit_answers_503_and_the_resend_is_stored(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    from monitorkit.interop import bulk

    batch = request_of([up(1, T0), up(1, T0, "db2:9100")])
    assert receiver.post(request_of([up(1, T0 - 15_000)]))[0] == 204  # the series exist: the group commit path
    real = bulk.pa.concat_tables
    calls = {"n": 0}

    def failing(tables: list) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise duckdb.IOException("IO Error: No space left on device")
        return real(tables)

    monkeypatch.setattr(bulk.pa, "concat_tables", failing)
    status, message = receiver.post(batch)
    assert status == 503 and "No space left on device" in message
    monkeypatch.setattr(bulk.pa, "concat_tables", real)
    assert receiver.post(batch)[0] == 204  # not taken for a duplicate of what was never committed
    assert sorted((r[2]["instance"], r[3]) for r in receiver.rows()) == [
        ("db1:9100", T0 - 15_000), ("db1:9100", T0), ("db2:9100", T0)]


def test_a_stopped_receiver_answers_503_so_the_sender_keeps_its_batch(receiver: Receiver) -> None:
    receiver.service.stop()  # the owner is stopping: its API still answers until it closes
    status, message = receiver.post(request_of([up(1, T0)]))
    assert status == 503 and "retry" in message  # a 404 would make Prometheus drop the batch for good
    assert receiver.rows() == []


def test_a_kept_alive_sender_is_told_to_reconnect_once_the_owner_api_stopped(receiver: Receiver) -> None:
    import http.client

    def post(conn: http.client.HTTPConnection, when: int) -> http.client.HTTPResponse:
        body = bytes(cramjam.snappy.compress_raw(request_of([up(1, when)]).SerializeToString()))
        conn.request("POST", REMOTE_WRITE_PATH, body, {"Authorization": f"Bearer {receiver.api.token}",
                                                        "Content-Type": "application/x-protobuf"})
        answer = conn.getresponse()
        answer.read()
        return answer

    conn = http.client.HTTPConnection("127.0.0.1", receiver.api.port, timeout=10)  # keep-alive, as Prometheus
    try:
        first = post(conn, T0)
        assert first.status == 204 and not first.will_close
        receiver.service.stop()
        receiver.api.stop()  # the owner stops: its listener closes, this connection's thread is still there
        last = post(conn, T0 + 1)
        # a retry is due (503) on a new connection, which reaches the next owner instead of this stopped one
        assert last.status == 503 and last.will_close and last.getheader("Connection") == "close"
    finally:
        conn.close()


def test_the_receivers_counters_are_samples_of_catalogued_metrics(receiver: Receiver) -> None:
    from datetime import UTC, datetime

    from monitorkit.catalog import REGISTRY

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert receiver.service.own_samples(now) == []  # nobody sent yet: nothing built, nothing written
    assert receiver.post(request_of([up(1, T0), ({"bad-label": "x", "__name__": "m"}, [(1.0, T0)])]))[0] == 204
    assert receiver.post(request_of([up(1, T0)]))[0] == 204  # a resend: a duplicate
    assert receiver.post(request_of([up(0, T0)]))[0] == 400  # a new value for a stored time: refused
    answer = request(receiver.api.port, "POST", REMOTE_WRITE_PATH, receiver.api.token, "application/x-protobuf",
                     b"\x05garbage", 30)
    assert answer.status == 400
    got = {(s.name, s.labels["receiver"], s.labels["outcome"]): s.value for s in receiver.service.own_samples(now)}
    assert got == {
        ("monitorkit_receiver_requests_total", "remote_write", "ok"): 2.0,
        ("monitorkit_receiver_requests_total", "remote_write", "bad"): 1.0,
        ("monitorkit_receiver_requests_total", "remote_write", "refused"): 1.0,
        ("monitorkit_receiver_requests_total", "remote_write", "failed"): 0.0,
        ("monitorkit_receiver_samples_total", "remote_write", "written"): 1.0,
        ("monitorkit_receiver_samples_total", "remote_write", "duplicate"): 1.0,
        ("monitorkit_receiver_samples_total", "remote_write", "refused"): 1.0,
        ("monitorkit_receiver_samples_total", "remote_write", "out_of_order"): 0.0,
        ("monitorkit_receiver_samples_total", "remote_write", "nonfinite"): 0.0,
    }
    for name, _, _ in got:
        assert REGISTRY[name].labels == ("receiver", "outcome")


def test_an_owner_restarted_with_api_port_and_token_file_keeps_both_for_remote_write(tmp_path: Path) -> None:
    db, token_file, port = tmp_path / "m.duckdb", tmp_path / "secrets" / "api.token", free_port()
    now = int(time.time() * 1000) - 60_000  # recent: an old sample would fall to retention at the restart
    settings = isolated_settings(**{"store.path": str(db), "store.flush_interval": "0.2s", "receivers.otlp": False,
                                    "owner.api_port": port, "owner.api_token_file": str(token_file)})
    published = []
    for start in range(2):
        with owner_thread(settings, ("monitorkit.interop.receivers:ReceiverService",)) as ctx:
            info = read_owner(db)
            assert info is not None
            published.append((info.extra["api_port"], info.extra["api_token"]))
            # what a Prometheus holds across the restart: the port in its config and the token file's content
            token = token_file.read_text().strip()
            body = bytes(cramjam.snappy.compress_raw(request_of([up(1, now + start * 15_000)]).SerializeToString()))
            assert request(port, "POST", REMOTE_WRITE_PATH, token, "application/x-protobuf", body, 30).status == 204
            store = ctx.owner.store
            counted = wait_for(lambda store=store: store.query(  # type: ignore[misc]
                "SELECT value FROM latest WHERE name = 'monitorkit_receiver_requests_total' "
                "AND labels['outcome'] = 'ok'"), 30, "the receiver's counter written on a tick")
            assert counted == [(1.0,)]  # counts start again with each owner
    assert published[0] == published[1] == (port, token_file.read_text().strip())
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    with Store(db, schema=SCHEMA) as store:
        assert store.query("SELECT epoch_ms(time) FROM samples WHERE name = 'up' ORDER BY time") == [(now,), (now + 15_000,)]
