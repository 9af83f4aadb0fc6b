"""Readers' queries run on the owner under limits: stopped when the client dies or presses Ctrl-C, bounded in time and size."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from store_helpers import isolated_settings, spawn_python

from monitorkit import Owner, Sample
from monitorkit.errors import QueryError
from monitorkit.owner import client
from monitorkit.owner.connect import RemoteConnection, connect
from monitorkit.owner.readers import QueryRefused
from monitorkit.owner.sidecar import read_owner

SLOW = "SELECT count(*) FROM range(100000000000) t(a) WHERE a % 7 = 99"


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Owner]:
    settings = isolated_settings(**{"readers.timeout": "3s", "readers.max_result_mb": 8})
    with Owner(tmp_path / "m.duckdb", settings=settings) as owner:
        owner.store.write([Sample(datetime.now(UTC), "cpu_percent", {"cpu": "0"}, 1.0, "h")])
        owner.store.flush()
        yield owner


def wait_until_idle(owner: Owner, cancelled: int, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end and (owner.queries.running or owner.queries.cancelled < cancelled):
        time.sleep(0.05)
    assert owner.queries.running == 0 and owner.queries.cancelled >= cancelled


def owner_cpu_over(seconds: float) -> float:
    me = psutil.Process()
    before = sum(me.cpu_times()[:2])
    time.sleep(seconds)
    return sum(me.cpu_times()[:2]) - before


def test_connect_reads_through_the_owner_api(owner: Owner) -> None:
    with connect(owner.db) as con:
        assert isinstance(con, RemoteConnection)
        assert con.execute("SELECT name, value FROM latest").fetchall() == [("cpu_percent", 1.0)]
        assert con.sql("SELECT count(*) AS n FROM series s JOIN latest l USING (series_id)").fetchone() == (1,)
        assert list(con.execute("SELECT 1 AS a").df()["a"]) == [1]


def test_a_reader_killed_mid_query_stops_costing_the_owner(owner: Owner) -> None:
    child = spawn_python(f"""
        import sys
        from monitorkit.owner.connect import connect
        print("ready", flush=True)
        connect(sys.argv[1]).execute({SLOW!r})
    """, str(owner.db))
    assert child.stdout is not None and child.stdout.readline().startswith("ready")
    end = time.monotonic() + 10
    while owner.queries.running == 0 and time.monotonic() < end:
        time.sleep(0.05)
    assert owner.queries.running == 1, "the slow query never reached the owner"
    child.kill()
    child.wait(10)
    wait_until_idle(owner, cancelled=1, deadline=2.0)
    assert owner_cpu_over(1.0) < 0.5, "the owner still burns a core for a reader that is gone"


def test_ctrl_c_in_monitorkit_sql_stops_the_query_on_the_owner(owner: Owner) -> None:
    proc = spawn_python("from monitorkit.cli import main; main(prog_name='monitorkit')", "sql", SLOW, "--db", str(owner.db))
    end = time.monotonic() + 15
    while owner.queries.running == 0 and time.monotonic() < end:
        time.sleep(0.05)
    assert owner.queries.running == 1
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    wait_until_idle(owner, cancelled=1, deadline=2.0)


def test_a_query_past_the_time_limit_is_stopped_with_a_message(owner: Owner) -> None:
    with connect(owner.db) as con, pytest.raises(QueryError, match=r"readers.timeout \(3 s\)"):
        con.execute(SLOW)
    wait_until_idle(owner, cancelled=1)


def test_a_result_over_the_size_limit_is_refused_with_a_message(owner: Owner) -> None:
    rss = psutil.Process().memory_info().rss
    with connect(owner.db) as con, pytest.raises(QueryError, match=r"over readers.max_result_mb \(8 MiB\)"):
        con.execute("SELECT repeat('x', 1000) AS s FROM range(100000)")  # ~100 MB of text
    assert psutil.Process().memory_info().rss - rss < 100 * 2**20


def test_refusals_and_syntax_errors_say_what_happened(owner: Owner) -> None:
    with connect(owner.db) as con:
        with pytest.raises(QueryError, match=r'syntax error at or near "SELEC"[\s\S]*LINE 1: SELEC 1') as caught:
            con.execute("SELEC 1")
        assert not isinstance(caught.value, QueryRefused) and "quack_query" not in str(caught.value)
        with pytest.raises(QueryRefused, match="read_text"):
            con.execute("SELECT * FROM read_text('/etc/shadow')")
        with pytest.raises(QueryRefused, match="INSERT is refused"):
            con.execute("INSERT INTO series VALUES (1, 'h', 'n', MAP {}, 'k', now())")


def test_the_query_route_needs_the_token(owner: Owner) -> None:
    info = read_owner(owner.db)
    assert info is not None
    port = int(info.extra["api_port"])  # type: ignore[call-overload]
    answer = client.request(port, "POST", "/v1/query", "wrong-token", "application/json", b'{"sql": "SELECT 1"}', 5)
    assert answer.status == 401


def test_a_fixed_api_port_and_token_file_survive_a_restart(tmp_path: Path) -> None:
    import socket
    import stat

    from monitorkit.errors import StoreError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token_file = tmp_path / "api.token"
    settings = isolated_settings(**{"owner.api_port": port, "owner.api_token_file": str(token_file)})
    seen = []
    for _ in range(2):
        with Owner(tmp_path / "m.duckdb", settings=settings) as owner:
            assert owner.api is not None
            seen.append((owner.api.port, owner.api.token))
            assert client.request(port, "POST", "/v1/query", owner.api.token, "application/json",
                                  b'{"sql": "SELECT 1"}', 10).status == 200
    assert seen[0] == seen[1] == (port, token_file.read_text().strip())
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    with Owner(tmp_path / "a.duckdb", settings=settings), pytest.raises(StoreError, match="cannot listen"):
        Owner(tmp_path / "b.duckdb", settings=settings)  # the port is taken by the first
