"""A stale sidecar whose PID now belongs to another live process (PID reuse) is not trusted."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from store_helpers import isolated_settings

from monitorkit import Owner
from monitorkit.owner.connect import connect
from monitorkit.owner.sidecar import read_owner, sidecar_path


def test_without_a_start_time_a_sidecar_is_live_only_while_its_api_listens(tmp_path: Path) -> None:
    # The Quack port is 0 until a reader opens the endpoint: the owner API's port is what must listen.
    db = tmp_path / "m.duckdb"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        sidecar_path(db).write_text(json.dumps({"pid": os.getpid(), "port": 0, "token": "tttt", "started": "",
                                                "path": str(db), "extra": {"api_port": port, "api_token": "t"}}))
        assert read_owner(db) is not None
    assert read_owner(db) is None  # closed: nothing answers there any more


def test_a_sidecar_whose_pid_belongs_to_another_process_is_stale(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    with Owner(db, settings=isolated_settings()):
        pass
    # PID 1 is alive but is not a monitorkit owner: with no start time to match and no endpoint
    # listening, the sidecar is stale; with another process's start time, too.
    for extra in ({}, {"proc_start": "1", "api_port": 9, "api_token": "t"}):
        sidecar_path(db).write_text(json.dumps({"pid": 1, "port": 9, "token": "tttt", "started": "", "path": str(db),
                                                "extra": extra}))
        os.chmod(sidecar_path(db), 0o600)
        assert read_owner(db) is None
        with connect(db) as con:  # reads the file instead of failing
            assert con.execute("SELECT count(*) FROM series").fetchone() == (0,)
        with Owner(db, settings=isolated_settings()) as again:  # and a new owner is not refused
            assert read_owner(db) == again.info
