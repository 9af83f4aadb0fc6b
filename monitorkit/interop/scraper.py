"""The scrape service inside the owner: one thread per target, targets from ``[[scrape]]`` and their files.

Each target scrapes on its own thread at its job's interval (offset by a hash of its URL, as
Prometheus spreads targets), with a total deadline of the job's timeout, and queues its samples
for the writer without waiting: a slow or dead target delays nobody, collection included.
Health and last error per target are in ``scrape_targets`` and on ``GET /api/v1/targets``.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from monitorkit.errors import StoreClosedError
from monitorkit.interop.schema import SCHEMA, replace_rows
from monitorkit.interop.scrape import ScrapeJob, Target, TargetFiles, jobs_from_settings, resolve_targets
from monitorkit.owner.api import Request, Response
from monitorkit.samples import utcnow

if TYPE_CHECKING:
    from monitorkit.interop.targets import TargetState
    from monitorkit.owner.api import OwnerApi
    from monitorkit.owner.context import OwnerContext
    from monitorkit.store import Store

log = logging.getLogger(__name__)
TARGETS_PATH = "/api/v1/targets"
FILE_POLL = 1.0  # seconds between looks at target files' modification times
STATE_EVERY = 60.0  # seconds between rewrites of an unchanged target's row


class TargetLoop:
    """Scrape one target on its own thread until stopped: ``TargetLoop(target, store).start()``."""

    def __init__(self, target: Target, store: Store, on_state: Callable[[TargetLoop], None] | None = None) -> None:
        from monitorkit.interop.targets import TargetScraper  # http, ssl and the parser: only when scraping

        self.scraper = TargetScraper(target)
        self.store = store
        self.on_state = on_state
        self.stop_event = threading.Event()
        self.removed = False  # stopped because the target left its job: its series end (see remove)
        self.scrapes = 0
        self._thread = threading.Thread(target=self._run, name=f"monitorkit-scrape-{target.job.job}-{target.address}",
                                        daemon=True)

    @property
    def target(self) -> Target:
        """Return the target scraped."""
        return self.scraper.target

    def start(self) -> None:
        """Start scraping."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop after the scrape in progress (bounded by the job's timeout)."""
        self.stop_event.set()

    def remove(self) -> None:
        """Stop because the target was removed: as Prometheus, mark every series of its last scrape stale.

        A plain ``stop`` (the owner stopping, or the target replaced under the same key) writes
        none: Prometheus too writes no markers on shutdown, expecting to carry on where it was.
        """
        self.removed = True
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (it closes its connection on the way out)."""
        self._thread.join(timeout)

    def next_delay(self, now: float) -> float:
        """Return seconds until this target's next slot: interval-aligned plus its stable offset."""
        interval = self.target.job.interval
        offset = (zlib.crc32(f"{self.target.job.job}|{self.target.url}".encode()) % 10_000) / 10_000 * interval
        slot = (now - offset) // interval * interval + offset + interval
        return max(0.0, slot - now)

    def _run(self) -> None:
        from monitorkit.rules.staleness import SeriesTracker, submit_stale

        seen = SeriesTracker()  # as Prometheus: a series the next scrape lacks (all, if it fails) gets a stale marker
        try:
            while not self.stop_event.wait(self.next_delay(time.time())):
                report = self.scraper.scrape()
                self.scrapes += 1
                try:
                    self.store.write(report.samples, validate=False)
                    gone = seen.vanished(report.samples)
                    if gone:
                        submit_stale(self.store, gone, report.started)
                except StoreClosedError:
                    return
                if self.on_state is not None:
                    self.on_state(self)
            if self.removed:
                gone = seen.vanished([])
                if gone:
                    submit_stale(self.store, gone, utcnow())
        except StoreClosedError:
            return
        finally:
            self.scraper.close()


class ScrapeService:
    """Scrape every ``[[scrape]]`` target into the store; re-read target files when they change."""

    name = "scrape"

    def __init__(self, jobs: Sequence[ScrapeJob] | None = None, *, base: Path | None = None) -> None:
        self._jobs = list(jobs) if jobs is not None else None
        self.base = base
        self.loops: dict[tuple[str, str], TargetLoop] = {}
        self.files = TargetFiles(base)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._api: OwnerApi | None = None
        self._written: dict[tuple[str, str], tuple[str, str | None, float]] = {}

    def start(self, ctx: OwnerContext) -> None:
        """Read the jobs, create the targets table, start one loop per target and the target-file watcher."""
        self.store = ctx.owner.store
        if self._jobs is None:
            self._jobs = jobs_from_settings(ctx.settings)
            source = ctx.settings.source("scrape.jobs")
            if self.base is None and source.endswith(".toml"):
                self.files.base = Path(source).parent
        self.store.apply_schema(SCHEMA)
        self.reconcile()
        if any(job.target_files for job in self._jobs):
            self._watcher = threading.Thread(target=self._watch, name="monitorkit-scrape-files", daemon=True)
            self._watcher.start()
        self._api = ctx.api
        ctx.api.add_route("GET", TARGETS_PATH, self._targets_route, max_body=0)

    def start_on(self, store: Store) -> None:
        """Start without an owner context (tests, notebooks): scrape into ``store``."""
        self.store = store
        self._jobs = self._jobs or []
        self.store.apply_schema(SCHEMA)
        self.reconcile()
        if any(job.target_files for job in self._jobs):
            self._watcher = threading.Thread(target=self._watch, name="monitorkit-scrape-files", daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        """Stop every loop (each ends after its scrape in progress) and the watcher; take the route off."""
        self._stop.set()
        if self._api is not None:
            self._api.remove_route("GET", TARGETS_PATH)
            self._api = None
        with self._lock:
            loops = list(self.loops.values())
            self.loops.clear()
        for loop in loops:
            loop.stop()
        for loop in loops:
            loop.join(loop.target.job.timeout + 1.0)
        if self._watcher is not None:
            self._watcher.join(FILE_POLL + 1.0)

    def targets(self) -> list[TargetState]:
        """Return every target's state, sorted by job and instance."""
        with self._lock:
            loops = list(self.loops.values())
        return sorted((loop.scraper.state() for loop in loops), key=lambda s: (s.job, s.instance))

    def reconcile(self) -> tuple[int, int]:
        """Start loops for new targets and stop those of removed ones; return (started, stopped)."""
        wanted = {t.key: t for t in resolve_targets(self._jobs or [], self.files)}
        for path, error in self.files.errors.items():
            log.warning("target file %s kept its previous targets: %s", path, error)
        with self._lock:
            gone = [loop for key, loop in self.loops.items() if key not in wanted or loop.target != wanted[key]]
            for loop in gone:
                del self.loops[loop.target.key]
            new = [t for key, t in wanted.items() if key not in self.loops]
            for t in new:
                loop = self.loops[t.key] = TargetLoop(t, self.store, on_state=self._record)
                loop.start()
        for loop in gone:
            if loop.target.key in wanted:
                loop.stop()  # the same target with new settings: its next loop carries its series on
            else:
                loop.remove()
        if gone:
            keys = [loop.target.key for loop in gone if loop.target.key not in wanted]
            self._forget(keys)
        return len(new), len(gone)

    def _watch(self) -> None:
        while not self._stop.wait(FILE_POLL):
            self.reconcile()

    def _record(self, loop: TargetLoop) -> None:
        """Write the target's row when its health or error changed, or once a minute."""
        state = loop.scraper.state()
        key = (state.job, state.instance)
        known = self._written.get(key)
        now = time.monotonic()
        if known is not None and known[:2] == (state.health, state.last_error) and now - known[2] < STATE_EVERY:
            return
        self._written[key] = (state.health, state.last_error, now)
        import pyarrow as pa  # not at import: an owner without [[scrape]] does not load it for this

        table = pa.table({
            "job": [state.job], "instance": [state.instance], "url": [state.url], "host": [state.host],
            "labels": pa.array([list(state.labels.items())], pa.map_(pa.string(), pa.string())),
            "health": [state.health], "last_error": pa.array([state.last_error], pa.string()),
            "last_scrape": pa.array([state.last_scrape], pa.timestamp("us", tz="UTC")),
            "last_duration_s": [state.last_duration], "samples": pa.array([state.samples], pa.int64()),
        })
        written = replace_rows(self.store, "scrape_targets", table)
        if written is not None:
            written.add_done_callback(_log_failure)

    def _forget(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            self._written.pop(key, None)

        def delete(con: duckdb.DuckDBPyConnection) -> None:
            for job, instance in keys:
                con.execute("DELETE FROM scrape_targets WHERE job = ? AND instance = ?", [job, instance])

        if keys:
            try:
                self.store.submit(delete, urgent=False).add_done_callback(_log_failure)
            except StoreClosedError:
                pass

    def _targets_route(self, request: Request) -> Response:
        states = [s._asdict() for s in self.targets()]
        return Response.json(200, {"status": "success", "data": {"activeTargets": states}})


def _log_failure(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("recording a scrape target's state failed: %s", exc)
