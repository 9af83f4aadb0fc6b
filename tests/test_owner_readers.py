"""One owner writes while other processes read live; a second owner is refused; stale sidecars are ignored."""

from __future__ import annotations

import importlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest
from store_helpers import isolated_settings, monitorkit_cli, read_line, run_python, spawn_python

import monitorkit
from monitorkit import Owner, OwnerExistsError, Store
from monitorkit.errors import QueryError
from monitorkit.owner.connect import connect
from monitorkit.owner.sidecar import read_owner, sidecar_path

# Writes 10 samples every 100 ms, flushing each batch, until a line arrives on stdin (or 60 s pass).
OWNER_CHILD = """
    import os, sys, threading, time
    from datetime import datetime, timezone
    from monitorkit import Owner, Sample
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    with Owner(sys.argv[1]) as owner:
        print("ready", os.getpid(), flush=True)
        n, deadline = 0, time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            now = datetime.now(timezone.utc)
            owner.store.write([Sample(now, "live_test", {"i": str(i)}, float(n + i)) for i in range(10)])
            owner.store.flush()
            n += 10
            print("committed", n, flush=True)
            stop.wait(0.1)
    print("closed", n, flush=True)
"""

# Queries the live file every 0.4 s through monitorkit.connect(): a join (the samples view) and a count.
READER_CHILD = """
    import sys, time
    import monitorkit
    con = monitorkit.connect(sys.argv[1])
    print("kind", type(con).__name__, flush=True)
    for _ in range(int(sys.argv[2])):  # a count of reads, not a time window: load cannot make it fewer
        (count,) = con.execute("SELECT count(*) FROM samples WHERE name = 'live_test'").fetchone()
        print("count", count, flush=True)
        time.sleep(0.4)
    con.close()
"""


class LiveOwner(NamedTuple):
    db: Path
    pid: int
    proc: subprocess.Popen[str]


@pytest.fixture(scope="module")
def live_owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveOwner]:
    """An owner process writing into a fresh database for the whole module."""
    folder = tmp_path_factory.mktemp("live")
    db = folder / "live.duckdb"
    proc = spawn_python(OWNER_CHILD, str(db), cwd=folder)
    try:
        pid = int(read_line(proc, "ready").split()[1])
        read_line(proc, "committed")
        yield LiveOwner(db, pid, proc)
    finally:
        if proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        try:
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def running(live_owner: LiveOwner) -> LiveOwner:
    """The module's owner, failing the test if it has stopped."""
    if live_owner.proc.poll() is not None:
        pytest.fail("the module's owner process stopped early")
    return live_owner


@pytest.mark.slow
def test_second_owner_is_refused_with_the_pid(running: LiveOwner) -> None:
    for opener in (Owner, Store):
        with pytest.raises(OwnerExistsError) as info:
            opener(running.db, settings=isolated_settings())
        message = str(info.value)
        assert f"process {running.pid}" in message
        assert "monitorkit.connect()" in message and "monitorkit sql" in message
        assert info.value.pid == running.pid


@pytest.mark.slow
def test_second_owner_is_refused_by_the_cli(running: LiveOwner) -> None:
    result = monitorkit_cli(["collect", "--db", str(running.db), "--duration", "1"], cwd=running.db.parent)
    assert result.returncode != 0
    assert f"owned by process {running.pid}" in result.stderr
    assert "monitorkit.connect()" in result.stderr and "monitorkit sql" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_reader_cannot_write(running: LiveOwner) -> None:
    copy_target = running.db.parent / "copied.csv"
    con = connect(running.db)
    try:
        for statement in (
            "INSERT INTO samples_raw VALUES (now(), 1, 1.0)",
            "DELETE FROM samples_raw",
            "CREATE TABLE evil (x INTEGER)",
            f"COPY samples_raw TO '{copy_target}'",
        ):
            with pytest.raises(QueryError, match="read-only"):
                con.execute(statement)
        assert con.execute("SELECT count(*) FROM series").fetchone() == (10,)
    finally:
        con.close()
    assert not copy_target.exists()


@pytest.mark.slow
def test_sidecar_is_private_and_names_the_owner(running: LiveOwner) -> None:
    side = sidecar_path(running.db)
    assert stat.S_IMODE(side.stat().st_mode) == 0o600
    info = read_owner(running.db)
    assert info is not None and info.pid == running.pid and len(info.token) >= 16
    with connect(running.db) as con:
        assert con.execute("SELECT 42").fetchone() == (42,)


@pytest.mark.slow
def test_reader_process_sees_rows_grow_while_owner_writes(running: LiveOwner) -> None:
    # Last of the live-owner tests: it stops the owner.
    live_owner = running
    reader = run_python(READER_CHILD, str(live_owner.db), "10", cwd=live_owner.db.parent, timeout=60)
    assert reader.returncode == 0, reader.stderr
    assert "lock" not in reader.stderr.lower()
    lines = reader.stdout.split("\n")
    assert lines[0] == "kind RemoteConnection"
    counts = [int(line.split()[1]) for line in lines if line.startswith("count")]
    assert len(counts) == 10
    assert all(b > a for a, b in pairwise(counts)), f"counts must strictly grow: {counts}"

    # Stop the owner: every committed row is in the file, readable directly once it has gone.
    assert live_owner.proc.stdin is not None
    live_owner.proc.stdin.write("stop\n")
    live_owner.proc.stdin.flush()
    out, err = live_owner.proc.communicate(timeout=30)
    assert live_owner.proc.returncode == 0, err
    final = int(out.strip().splitlines()[-1].split()[1])
    assert final >= counts[-1]
    assert not sidecar_path(live_owner.db).exists()
    con = connect(live_owner.db)
    try:
        assert isinstance(con, duckdb.DuckDBPyConnection)
        assert con.execute("SELECT count(*) FROM samples").fetchone() == (final,)
    finally:
        con.close()


def test_direct_read_only_connection_cannot_write(tmp_db: Path) -> None:
    Store(tmp_db, settings=isolated_settings()).close()
    con = connect(tmp_db)
    try:
        assert isinstance(con, duckdb.DuckDBPyConnection)
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("INSERT INTO samples_raw VALUES (now(), 1, 1.0)")
    finally:
        con.close()


def dead_pid() -> int:
    """Return the pid of a process that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_stale_sidecar_is_ignored(tmp_db: Path) -> None:
    with Store(tmp_db, settings=isolated_settings()) as store:
        store.write([monitorkit.make_sample("up", 1.0)])
    stale = {"pid": dead_pid(), "port": 1, "token": "gone", "started": "2020-01-01T00:00:00+00:00", "path": str(tmp_db)}
    sidecar_path(tmp_db).write_text(json.dumps(stale))
    assert read_owner(tmp_db) is None
    con = connect(tmp_db)
    try:
        assert isinstance(con, duckdb.DuckDBPyConnection)
        assert con.execute("SELECT count(*) FROM samples").fetchone() == (1,)
    finally:
        con.close()
    with Owner(tmp_db, settings=isolated_settings()) as owner:
        info = read_owner(tmp_db)
        assert info is not None and info.pid == os.getpid() and info == owner.info
    assert not sidecar_path(tmp_db).exists()


def test_public_connect_is_the_function_and_its_module_imports_plainly() -> None:
    # No submodule shares a public name, so importing one never rebinds monitorkit.connect.
    module = importlib.import_module("monitorkit.owner.connect")
    assert monitorkit.connect is module.connect, "monitorkit.connect is not the connect function"
    import monitorkit.owner.connect as mc

    assert mc is module and callable(mc.connect)
