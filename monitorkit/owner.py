"""One owner process per database file: the sidecar file and the Quack endpoint for readers."""

from __future__ import annotations

import json
import os
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import duckdb

from monitorkit import duck
from monitorkit.config import Settings
from monitorkit.errors import OwnerExistsError, StoreError
from monitorkit.store import Store


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_sidecar(path: Path, info: OwnerInfo) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info._asdict(), fh)
    os.replace(tmp, path)


class Owner:
    """Own ``db``: open the Store, serve it over Quack on loopback and publish the sidecar.

    ``with Owner("data/monitorkit.duckdb") as owner: owner.store.write(...)``
    """

    def __init__(self, db: str | Path, *, settings: Settings | None = None, serve: bool = True) -> None:
        self.db = Path(db)
        live = read_owner(self.db)
        if live is not None and live.pid != os.getpid():
            raise OwnerExistsError(str(self.db), live.pid)
        self.store = Store(self.db, settings=settings)
        self.info: OwnerInfo | None = None
        if serve:
            try:
                self._serve()
            except BaseException:
                self.store.close()
                raise

    def _serve(self) -> None:
        token = secrets.token_urlsafe(24)
        con = self.store.cursor()
        last: Exception | None = None
        for _ in range(5):  # a port picked as free can be taken before quack binds it
            port = _free_port()
            try:
                duck.quack_serve(con, port, token, authorization="monitorkit_read_only")
            except duckdb.Error as exc:
                last = exc
                continue
            self._server_con = con
            self.info = OwnerInfo(
                os.getpid(), port, token, datetime.now(UTC).isoformat(), str(self.db.resolve())
            )
            _write_sidecar(sidecar_path(self.db), self.info)
            return
        raise StoreError(f"could not start the Quack endpoint for {self.db}: {last}")

    def publish(self, **fields: object) -> None:
        """Add ``fields`` to the sidecar's ``extra`` so readers and applications can find them."""
        if self.info is None:
            raise StoreError("this owner does not serve readers (serve=False); nothing to publish")
        self.info = self.info._replace(extra={**self.info.extra, **fields})
        _write_sidecar(sidecar_path(self.db), self.info)

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, remove the sidecar, then flush and close the store."""
        if self.info is not None:
            try:
                duck.quack_stop(self._server_con, self.info.port)
            except duckdb.Error:
                pass  # already stopped; the file is what matters
            side = sidecar_path(self.db)
            current = read_owner(self.db)
            if current is None or current.pid == os.getpid():
                side.unlink(missing_ok=True)
            self.info = None
        self.store.close()
