"""The owner API and ingest trust no client: bodies bounded, idle sockets closed, every bad field a 400 with a reason."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import isolated_settings

from monitorkit.owner import api as api_module
from monitorkit.owner import client
from monitorkit.owner.ingest import IngestService
from monitorkit.owner.owner import Owner
from monitorkit.owner.runtime import OwnerContext, serving
from monitorkit.owner.scheduler import Scheduler

JSON_LINES = "application/x-ndjson"
T = 1_772_366_400_000_000  # 2026-03-01 in microseconds


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnerContext]:
    db = tmp_path_factory.mktemp("inputs") / "m.duckdb"
    settings = isolated_settings(**{"store.path": str(db)})
    with Owner(db, settings=settings) as owner, serving(owner, Scheduler(owner.store, []), settings,
                                                         threading.Event()) as ctx:
        ingest = IngestService(max_body_bytes=8 * 2**20)
        ingest.start(ctx)
        yield ctx
        ingest.stop()


def raw(ctx: OwnerContext, head: str, body: bytes = b"", timeout: float = 10) -> str:
    with socket.create_connection(("127.0.0.1", ctx.api.port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def post(ctx: OwnerContext, body: bytes) -> client.Answer:
    return client.request(ctx.api.port, "POST", "/v1/samples", ctx.api.token, JSON_LINES, body, 30)


def line(**fields: object) -> bytes:
    base: dict[str, object] = {"time": T, "name": "x_total", "labels": {}, "value": 1.0, "host": "h"}
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize("length", ["-1", "abc", "1e9", " "])
def test_a_content_length_that_is_not_a_size_is_refused(ctx: OwnerContext, length: str) -> None:
    answer = raw(ctx, f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.api.token}\r\n"
                      f"Content-Length: {length}\r\nConnection: close")
    assert answer.startswith("HTTP/1.1 400") and "Content-Length" in answer


def test_a_missing_content_length_is_refused(ctx: OwnerContext) -> None:
    answer = raw(ctx, f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.api.token}\r\nConnection: close")
    assert answer.startswith("HTTP/1.1 411")


def test_a_body_over_the_limit_is_refused_before_it_is_read(ctx: OwnerContext) -> None:
    answer = raw(ctx, f"POST /v1/samples HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.api.token}\r\n"
                      f"Content-Length: {200 * 2**20}\r\nConnection: close")
    assert answer.startswith("HTTP/1.1 413")


@pytest.mark.parametrize(("body", "reason"), [
    (line(time=-62135596800000000), "before 1970"),           # year 1
    (line(time=253402300799000000), "more than a day ahead"),  # year 9999
    (line(time=10**30), "out of range"),
    (line(labels={f"l{i}": "v" * 1000 for i in range(5000)}), "at most 64 per sample"),
    (line(labels={"k": "v" * 5000}), "longer than 1024"),
    (b'{"time": ' + b"9" * 5000 + b', "name": "x", "value": 1, "host": "h"}', "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (line(value=float("nan")), "finite"),
])
def test_every_bad_field_is_a_400_with_the_reason(ctx: OwnerContext, body: bytes, reason: str) -> None:
    answer = post(ctx, body)
    assert answer.status == 400 and reason in answer.message, answer


def test_idle_and_surplus_connections_do_not_pin_threads(ctx: OwnerContext) -> None:
    idle = [socket.create_connection(("127.0.0.1", ctx.api.port)) for _ in range(api_module.MAX_CONNECTIONS + 20)]
    try:
        end = time.monotonic() + 10  # the server accepts them one by one: give it time to see all
        while ctx.api.refused_connections < 20 and time.monotonic() < end:
            time.sleep(0.05)
        assert ctx.api.refused_connections >= 20  # past the cap, connections are closed at once
    finally:
        for sock in idle:
            sock.close()
    end = time.monotonic() + 10
    while time.monotonic() < end:  # the slots come back: a good client is served again
        try:
            if post(ctx, line()).status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail("the API never served again after idle connections closed")


def test_an_idle_client_is_disconnected_after_the_timeout(ctx: OwnerContext) -> None:
    with socket.create_connection(("127.0.0.1", ctx.api.port), timeout=api_module.IDLE_TIMEOUT + 10) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # the server closed it
        assert time.monotonic() - started < api_module.IDLE_TIMEOUT + 5


def test_the_api_still_answers_after_every_attack(ctx: OwnerContext) -> None:
    assert post(ctx, line()).status == 200
    assert client.request(ctx.api.port, "GET", "/health", "", "", b"", 5).status == 200


def test_the_database_and_its_wal_are_private_to_the_owner(tmp_path: Path) -> None:
    import stat

    from monitorkit import Sample
    from monitorkit.samples import utcnow

    db = tmp_path / "m.duckdb"
    db_loose = tmp_path / "loose.duckdb"
    with Owner(db_loose, settings=isolated_settings()):
        pass
    db_loose.chmod(0o644)  # a file made by an older monitorkit, or copied in
    for path in (db, db_loose):
        with Owner(path, settings=isolated_settings()) as owner:
            owner.store.write([Sample(utcnow(), "x_total", {}, 1.0, "h")])
            owner.store.flush()
            wal = Path(f"{path}.wal")
            for made in (path, wal) if wal.exists() else (path,):
                assert stat.S_IMODE(made.stat().st_mode) & 0o077 == 0, f"{made.name} is readable by others"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_while_the_owner_starts_an_unregistered_route_is_a_503_to_retry_not_a_404(tmp_path: Path) -> None:
    with Owner(tmp_path / "s.duckdb", settings=isolated_settings(), starting=True) as owner:
        assert owner.api is not None
        api = (owner.api.port, owner.api.token)
        assert client.request(api[0], "POST", "/api/v1/write", api[1], "application/x-protobuf", b"", 5).status == 503
        owner.api.starting = False  # what run_owner does once every service registered its routes
        assert client.request(api[0], "POST", "/api/v1/write", api[1], "application/x-protobuf", b"", 5).status == 404
