"""The sidecar file a running owner writes next to its database: where and how to reach it.

Kept free of DuckDB so an instrumented application can find its owner without loading it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import NamedTuple


class OwnerInfo(NamedTuple):
    """What a running owner writes next to its database: where and how to reach it.

    ``extra`` holds what services publish (e.g. the ingest port, the dashboard URL).
    """

    pid: int
    port: int
    token: str
    started: str
    path: str
    extra: dict[str, object] = {}  # noqa: RUF012  replaced, never mutated in place


def sidecar_path(db: str | Path) -> Path:
    """Return the sidecar file of database ``db`` (``<db>.owner.json``)."""
    return Path(f"{db}.owner.json")


def pid_alive(pid: int) -> bool:
    """Tell whether a process with ``pid`` exists."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> str | None:
    """Return when process ``pid`` started (clock ticks since boot, from /proc), or None where unknown.

    A PID alone is not an identity: after a crash and a reboot or wrap-around another process may
    hold it; the start time tells the owner that wrote a sidecar from a stranger with its PID.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name in parentheses may contain spaces
    return fields[19] if len(fields) > 19 else None


def read_owner(db: str | Path) -> OwnerInfo | None:
    """Return the live owner of ``db``, or None when none runs (a dead owner's sidecar is ignored)."""
    path = sidecar_path(db)
    try:
        data = json.loads(path.read_text())
        info = OwnerInfo(
            int(data["pid"]), int(data["port"]), str(data["token"]), str(data["started"]), str(data["path"]),
            dict(data.get("extra") or {}),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(info.pid):
        return None
    started = info.extra.get("proc_start")
    now_started = process_start(info.pid)
    if started is not None and now_started is not None:
        # The PID now belongs to another process when the start times differ: that owner is gone.
        return info if now_started == started else None
    # No start time to compare (an older sidecar, or no /proc): trust it only if its endpoint listens
    # (the Quack port is 0 until a reader asks for it: then the owner API's).
    port = info.port or info.extra.get("api_port")
    return info if isinstance(port, int) and _listening(port) else None


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago (the Quack endpoint, tests and benchmarks bind it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    """Tell whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def write_sidecar(path: Path, info: OwnerInfo) -> None:
    """Replace the sidecar at ``path`` atomically, readable by its owner only (0600)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info._asdict(), fh)
    os.replace(tmp, path)
