"""Pieces shared by the instrument and ingest tests: an owner in-process or in a child process."""

from __future__ import annotations

import select
import signal
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from shared_helpers import child_env
from store_helpers import PYTHON, isolated_settings

from monitorkit.owner.ingest import IngestService
from monitorkit.owner.owner import Owner
from monitorkit.owner.runtime import OwnerContext, serving
from monitorkit.owner.scheduler import Scheduler

# An owner with no collectors and only the ingest service; prints "ready <port>" once it serves.
OWNER_SCRIPT = textwrap.dedent(
    """
    import copy, signal, sys, threading
    from monitorkit.config import DEFAULTS, Settings
    from monitorkit.owner.runtime import run_owner

    settings = Settings(copy.deepcopy(DEFAULTS), {}).with_overrides(
        {"store.path": sys.argv[1], "collect.interval": 0.5})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    timer = threading.Timer(float(sys.argv[2]), stop.set)  # never outlives the test
    timer.daemon = True
    timer.start()

    def ready(ctx):
        print("ready", ctx.api.port, flush=True)

    run_owner(settings, stop, collectors=[], services=("monitorkit.owner.ingest:IngestService",), on_ready=ready)
    print("stopped", flush=True)
    """
)


class OwnerProcess:
    """A child process owning ``db`` with the ingest service: ``with OwnerProcess(db) as owner: ...``."""

    def __init__(self, db: Path, *, lifetime: float = 60.0, timeout: float = 30.0) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            [PYTHON, "-c", OWNER_SCRIPT, str(db), str(lifetime)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )
        line = self._readline(timeout)
        if not line.startswith("ready"):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise RuntimeError(f"owner did not start: {line!r} {err[-2000:]}")
        self.port = int(line.split()[1])

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if ready else ""

    def stop(self, timeout: float = 30.0) -> str:
        """Stop cleanly (SIGTERM) and return what the owner printed last."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err[-2000:]
        return out.strip()

    def __enter__(self) -> OwnerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()


class LocalOwner(NamedTuple):
    """An owner in this process with its ingest service and scheduler."""

    owner: Owner
    ingest: IngestService
    scheduler: Scheduler
    ctx: OwnerContext


@contextmanager
def local_owner(db: Path, **ingest_options: float) -> Iterator[LocalOwner]:
    """Own ``db`` in this process and run IngestService on it (no collectors, no scheduler thread)."""
    settings = isolated_settings(**{"store.path": str(db)})
    with Owner(db, settings=settings) as owner:
        scheduler = Scheduler(owner.store, [])
        service = IngestService(**ingest_options)  # type: ignore[arg-type]
        with serving(owner, scheduler, settings, threading.Event()) as ctx:
            service.start(ctx)
            ctx.services[service.name] = service
            try:
                yield LocalOwner(owner, service, scheduler, ctx)
            finally:
                service.stop()
