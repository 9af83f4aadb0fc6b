"""The sidecar file a running owner writes next to its database: where and how to reach it.

Kept free of DuckDB so an instrumented application can find its owner without loading it.
"""

from __future__ import annotations

import json
import os
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
    return info if pid_alive(info.pid) else None


def write_sidecar(path: Path, info: OwnerInfo) -> None:
    """Replace the sidecar at ``path`` atomically, readable by its owner only (0600)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info._asdict(), fh)
    os.replace(tmp, path)
