"""Protocol and tool-run helpers: sync, async, decorator and context manager; every outcome recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from monitorkit.errors import InvalidLabelError, InvalidValueError
from monitorkit.instrument import Registry, outbox, tool, tool_run, track
from monitorkit.instrument.blocks import outcome_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def reg() -> Registry:
    return Registry()


def values(reg: Registry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in reg.collect(NOW) if s.name == name}


def outcomes(reg: Registry) -> dict[tuple[str, str], float]:
    return {(dict(k)["tool"], dict(k)["outcome"]): v for k, v in values(reg, "tool_runs_total").items()}


def test_tool_run_context_manager_records_ok_and_error(reg: Registry) -> None:
    with tool_run("resize", {"size": "big"}, registry=reg) as run:
        run.set_label("format", "png")
    with pytest.raises(ValueError, match="bad pixel"), tool_run("resize", registry=reg):
        raise ValueError("bad pixel")
    rows = outbox(reg).take()
    assert [(r.tool, r.outcome, r.error_type, r.error_message) for r in rows] == [
        ("resize", "ok", None, None),
        ("resize", "error", "ValueError", "bad pixel"),
    ]
    assert rows[0].labels == {"size": "big", "format": "png"}
    assert rows[0].run_id != rows[1].run_id and len(rows[0].run_id) == 32
    assert all(r.duration_s >= 0 and r.started.tzinfo is not None for r in rows)
    assert outcomes(reg) == {("resize", "ok"): 1.0, ("resize", "error"): 1.0}
    assert values(reg, "tool_run_duration_seconds_count") == {(("tool", "resize"),): 2.0}
    assert outbox(reg).take() == []


def test_runs_wait_in_the_outbox_of_their_registry_oldest_dropped_past_its_bound(reg: Registry) -> None:
    other = Registry()
    box = outbox(reg)
    assert outbox(reg) is box and outbox(other) is not box
    box.max_size = 2
    for name in ("a", "b", "c"):
        with tool_run(name, registry=reg):
            pass
    assert (len(box), box.dropped) == (2, 1)
    assert [r.tool for r in box.take()] == ["b", "c"]
    assert outbox(other).take() == [] and len(box) == 0


def test_tool_decorator_sync_records_each_call_and_keeps_the_result(reg: Registry) -> None:
    @tool("parse", registry=reg)
    def parse(text: str) -> int:
        if not text:
            raise TimeoutError("took too long")
        return len(text)

    assert parse("abc") == 3
    assert parse.__name__ == "parse"
    with pytest.raises(TimeoutError):
        parse("")
    assert outcomes(reg) == {("parse", "ok"): 1.0, ("parse", "timeout"): 1.0}
    assert [r.error_type for r in outbox(reg).take()] == [None, "TimeoutError"]


def test_bare_tool_decorator_uses_the_function_name() -> None:
    reg = Registry()

    @tool(registry=reg)
    def thumbnail() -> None:
        pass

    thumbnail()
    assert outcomes(reg) == {("thumbnail", "ok"): 1.0}


def test_async_tool_outcomes_ok_timeout_cancelled(reg: Registry) -> None:
    @tool("fetch", registry=reg)
    async def fetch(delay: float) -> str:
        await asyncio.sleep(delay)
        return "done"

    async def main() -> None:
        assert await fetch(0) == "done"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(fetch(10), 0.01)  # the call itself is cancelled, its caller times out
        async with tool_run("deadline", registry=reg):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.sleep(10), 0.01)
        with pytest.raises(TimeoutError):
            async with tool_run("deadline", registry=reg):
                await asyncio.wait_for(asyncio.sleep(10), 0.01)
        task = asyncio.create_task(fetch(10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert outcomes(reg) == {
        ("fetch", "ok"): 1.0,
        ("fetch", "cancelled"): 2.0,
        ("deadline", "ok"): 1.0,
        ("deadline", "timeout"): 1.0,
    }
    cancelled = [r for r in outbox(reg).take() if r.outcome == "cancelled"]
    assert {r.error_type for r in cancelled} == {"CancelledError"}


def test_async_with_tool_run_records_an_error(reg: Registry) -> None:
    async def main() -> None:
        async with tool_run("upload", {"bucket": "b1"}, registry=reg) as run:
            run.fail("QuotaExceeded", "bucket b1 is full")

    asyncio.run(main())
    (row,) = outbox(reg).take()
    assert (row.outcome, row.error_type, row.error_message, row.labels) == (
        "error", "QuotaExceeded", "bucket b1 is full", {"bucket": "b1"})


def test_outcome_of_maps_exception_types() -> None:
    import concurrent.futures

    assert outcome_of(None) == "ok"
    assert outcome_of(TimeoutError()) == "timeout"
    assert outcome_of(TimeoutError()) == "timeout"
    assert outcome_of(asyncio.CancelledError()) == "cancelled"
    assert outcome_of(concurrent.futures.CancelledError()) == "cancelled"
    assert outcome_of(KeyboardInterrupt()) == "cancelled"
    assert outcome_of(OSError()) == "error"


def test_tool_names_and_labels_are_checked_at_the_api(reg: Registry) -> None:
    with pytest.raises(InvalidLabelError, match="tool name must be a non-empty string"):
        tool_run("", registry=reg)
    with pytest.raises(InvalidLabelError, match="invalid label name '1x'"):
        tool_run("ok", {"1x": "y"}, registry=reg)
    with pytest.raises(InvalidLabelError, match="must be strings"):
        tool_run("ok", {"n": 3}, registry=reg)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="generator"):
        tool("gen", registry=reg)(lambda: (yield))
    assert outbox(reg).take() == []


def test_track_context_manager_records_requests_bytes_and_status(reg: Registry) -> None:
    with track(protocol="http", method="GET", registry=reg) as ex:
        ex.status = 200
        ex.request_bytes = 120
        ex.response_bytes = 2048
    with track(protocol="http", method="GET", registry=reg) as ex:
        ex.status = 503
        ex.fail("ServiceUnavailable")
    with pytest.raises(ConnectionResetError), track(protocol="http", method="POST", registry=reg):
        raise ConnectionResetError
    assert values(reg, "protocol_requests_total") == {
        (("method", "GET"), ("protocol", "http"), ("status", "200")): 1.0,
        (("method", "GET"), ("protocol", "http"), ("status", "503")): 1.0,
        (("method", "POST"), ("protocol", "http"), ("status", "error")): 1.0,
    }
    assert values(reg, "protocol_request_bytes_total") == {(("method", "GET"), ("protocol", "http")): 120.0}
    assert values(reg, "protocol_response_bytes_total") == {(("method", "GET"), ("protocol", "http")): 2048.0}
    assert values(reg, "protocol_errors_total") == {
        (("error_type", "ServiceUnavailable"), ("method", "GET"), ("protocol", "http")): 1.0,
        (("error_type", "ConnectionResetError"), ("method", "POST"), ("protocol", "http")): 1.0,
    }
    assert values(reg, "protocol_request_duration_seconds_count") == {
        (("method", "GET"), ("protocol", "http")): 2.0,
        (("method", "POST"), ("protocol", "http")): 1.0,
    }


def test_track_decorator_and_async_with(reg: Registry) -> None:
    @track(protocol="grpc", method="Search", registry=reg)
    def search(q: str) -> str:
        return q.upper()

    @track(protocol="grpc", method="Fetch", registry=reg)
    async def fetch(fail: bool) -> None:
        if fail:
            raise TimeoutError

    async def main() -> None:
        await fetch(False)
        with pytest.raises(TimeoutError):
            await fetch(True)
        async with track(protocol="ws", method="send", registry=reg) as ex:
            ex.request_bytes = 10
        task = asyncio.create_task(fetch_forever())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def fetch_forever() -> None:
        async with track(protocol="ws", method="recv", registry=reg):
            await asyncio.sleep(10)

    assert search("x") == "X"
    asyncio.run(main())
    got = {(dict(k)["method"], dict(k)["status"]): v for k, v in values(reg, "protocol_requests_total").items()}
    assert got == {("Search", "ok"): 1.0, ("Fetch", "ok"): 1.0, ("Fetch", "timeout"): 1.0,
                   ("send", "ok"): 1.0, ("recv", "cancelled"): 1.0}
    errors = {(dict(k)["method"], dict(k)["error_type"]) for k in values(reg, "protocol_errors_total")}
    assert errors == {("Fetch", "TimeoutError"), ("recv", "CancelledError")}


def test_track_refuses_bad_labels_and_byte_counts(reg: Registry) -> None:
    with pytest.raises(InvalidLabelError, match="must be strings"):
        track(protocol="http", method=None, registry=reg)  # type: ignore[arg-type]
    with track(protocol="http", method="GET", registry=reg) as ex:
        with pytest.raises(InvalidValueError, match="response_bytes"):
            ex.response_bytes = -1
        with pytest.raises(InvalidValueError, match="request_bytes"):
            ex.request_bytes = "10"  # type: ignore[assignment]
    assert values(reg, "protocol_response_bytes_total") == {}
