"""One owner process per database file: the Store, the owner API and Quack endpoint for readers, the sidecar."""

from __future__ import annotations

import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from monitorkit.config import Settings
from monitorkit.errors import ConfigError, OwnerExistsError, StoreError
from monitorkit.owner.api import OwnerApi
from monitorkit.owner.quack import QuackDoor
from monitorkit.owner.queries import QueryService
from monitorkit.owner.readers import ReaderPolicy, database_relations
from monitorkit.owner.schema import SCHEMA
from monitorkit.owner.sidecar import OwnerInfo, process_start, read_owner, sidecar_path, write_sidecar
from monitorkit.store import Store
from monitorkit.store.status import Part


def keep_private(db: Path) -> None:
    """Make the database, its WAL and whatever this owner creates readable by its user only (0600).

    The file holds the dashboard's credential hash and everything collected; another local
    user must not copy it. DuckDB creates the WAL anew after each checkpoint with the process
    umask, so the owner process masks group and other bits for good, and tightens existing files.
    """
    os.umask(os.umask(0o077) | 0o077)
    for path in (db, Path(f"{db}.wal")):
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except FileNotFoundError:
            pass


def api_token(path: str | Path) -> str | None:
    """Return the owner API token kept in ``path`` (made, 0600, on first use), or None for a random one per start."""
    if not str(path):
        return None
    file = Path(path).expanduser()
    try:
        token = file.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(24)
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return token
    if len(token) < 16:
        raise ConfigError(f"the owner API token in {file} is shorter than 16 characters; remove the file to get a new one")
    if file.stat().st_mode & 0o077:
        raise ConfigError(f"{file} holds the owner API token but others can read it: chmod 600 {file}")
    return token


class Owner:
    """Own ``db``: open the Store, serve readers (Quack and the owner API on loopback), publish the sidecar.

    ``with Owner("data/monitorkit.duckdb") as owner: owner.store.write(...)``. Services of the
    owner process (ingest, rules, the dashboard) register their routes on ``owner.api``.
    """

    def __init__(self, db: str | Path, *, settings: Settings | None = None, serve: bool = True,
                 starting: bool = False) -> None:
        self.db = Path(db)
        live = read_owner(self.db)
        if live is not None and live.pid != os.getpid():
            raise OwnerExistsError(str(self.db), live.pid)
        keep_private(self.db)
        self.store = Store(self.db, settings=settings, schema=SCHEMA)
        self.info: OwnerInfo | None = None
        # Services publish fields at start, a reader's POST /v1/quack publishes the port from an API
        # thread: one replace-and-write at a time, so neither overwrites the other's field.
        self._info_lock = threading.Lock()
        self.api: OwnerApi | None = None
        if serve:
            try:
                self._serve(starting)
            except BaseException:
                self.store.close()
                raise

    def _serve(self, starting: bool) -> None:
        con = self.store.cursor()
        catalog = str(con.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
        con.close()
        self.readers = ReaderPolicy(database_relations(self.store.cursor, catalog), catalog)
        settings = self.store.settings
        api_port = int(settings.get("owner.api_port", 0) or 0)
        try:
            self.api = OwnerApi(api_token(settings.get("owner.api_token_file", "")), port=api_port)
        except OSError as exc:
            raise StoreError(f"the owner API cannot listen on 127.0.0.1:{api_port} ({exc.strerror}); "
                             "set owner.api_port to a free port, or 0 for any") from exc
        self.quack = QuackDoor(self.store, self.readers, secrets.token_urlsafe(24), self._quack_opened)
        self.quack.register(self.api)
        self.queries = QueryService(self.store, self.readers, self.store.settings)
        self.queries.register(self.api)
        self.api.starting = starting  # run_owner: unknown routes answer 503 until its services are up
        self.api.start()
        # port 0: the Quack endpoint opens on a reader's first POST /v1/quack (owner/quack.py says why).
        self.info = OwnerInfo(
            os.getpid(), 0, self.quack.token, datetime.now(UTC).isoformat(), str(self.db.resolve()),
            {"api_port": self.api.port, "api_token": self.api.token, "proc_start": process_start(os.getpid())},
        )
        write_sidecar(sidecar_path(self.db), self.info)

    def _quack_opened(self, port: int) -> None:
        with self._info_lock:
            if self.info is not None:
                self.info = self.info._replace(port=port)
                write_sidecar(sidecar_path(self.db), self.info)

    def open_quack(self) -> OwnerInfo:
        """Open the Quack endpoint now (as ``POST /v1/quack`` does) and return the sidecar's info with its port."""
        if self.info is None:
            raise StoreError("this owner does not serve readers (serve=False)")
        self.quack.open()
        return self.info

    def parts(self) -> list[Part]:
        """Return the health of the doors readers use: the Quack endpoint and the owner API."""
        if self.info is None or self.api is None:
            return []
        api = (Part("owner_api", "ok", f"answering on 127.0.0.1:{self.api.port}") if self.api.running
               else Part("owner_api", "failing", "the owner API stopped: ingest, acks and connect() are refused"))
        return [self.quack.part(), api]

    def publish(self, **fields: object) -> None:
        """Add ``fields`` to the sidecar's ``extra`` so readers and applications can find them."""
        with self._info_lock:
            if self.info is None:
                raise StoreError("this owner does not serve readers (serve=False); nothing to publish")
            self.info = self.info._replace(extra={**self.info.extra, **fields})
            write_sidecar(sidecar_path(self.db), self.info)

    def __enter__(self) -> Owner:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, remove the sidecar, then flush and close the store."""
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.info is not None:
            self.quack.close()
            side = sidecar_path(self.db)
            current = read_owner(self.db)
            if current is None or current.pid == os.getpid():
                side.unlink(missing_ok=True)
            self.info = None
        self.store.close()
