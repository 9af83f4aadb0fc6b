"""The hub: one process anywhere that maintains the lake and evaluates fleet rules over it.

``Hub(settings).run(stop)``: on its own thread, rollups every ``[hub] rollup_every``, DuckLake
maintenance (flush inlined rows, merge adjacent files, expire snapshots, delete old files)
every ``maintenance_every`` and retention every ``retention_every``; on the main loop, the
rule engine every ``rules_every``. The rules are the same SQL files a host runs; on the hub
``samples_raw``, ``series``, ``latest``, ``gauge_window`` ... are the lake's, so every row
carries the host it came from and ``host`` becomes an alert label. Alert state, silences and
notifications live in the hub's own DuckDB file (``[hub] db``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from monitorkit.config import Settings
from monitorkit.errors import ConfigError
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS_SCHEMA
from monitorkit.lake.catalog import attach, lake_error, open_lake
from monitorkit.lake.config import HubConfig, LakeConfig, hub_config, lake_config
from monitorkit.lake.errors import LakeError
from monitorkit.lake.maintenance import Maintenance, enforce_retention, maintain, rollup
from monitorkit.lake.schema import ensure_schema
from monitorkit.rules.dispatch import Sender
from monitorkit.rules.engine import Engine
from monitorkit.rules.health import make_heartbeat, submit_heartbeat
from monitorkit.rules.notify import send
from monitorkit.rules.schema import SCHEMA as RULES_SCHEMA
from monitorkit.samples import utcnow
from monitorkit.store import Store

log = logging.getLogger(__name__)
COMPONENT = "lake_hub"


class HubStore(Store):
    """The hub's own file (alert state); the lake is attached read-only and its relations come first for readers.

    Every cursor searches the lake before the hub's file, so a rule's ``samples_raw`` or
    ``gauge_window`` is the fleet's while ``alerts`` or ``silences`` stay the hub's own.
    """

    def __init__(self, path: str | Path, *, settings: Settings, lake: LakeConfig) -> None:
        self._search_path: str | None = None
        super().__init__(path, settings=settings, schema=(EXECUTIONS_SCHEMA, RULES_SCHEMA))
        try:
            own = self.query("SELECT current_database()")[0][0]
            self.lake_alias = "fleet_lake" if own == "lake" else "lake"
            self.submit(lambda con: attach(con, lake, read_only=True, alias=self.lake_alias)).result()
        except BaseException:
            self.close()
            raise
        self._search_path = f"{self.lake_alias}.main,{own}.main"

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Return a cursor that resolves names in the lake first, then in the hub's file."""
        cur = super().cursor()
        if self._search_path:
            cur.execute(f"SET search_path = '{self._search_path}'")
        return cur


class Job:
    """A periodic job of the hub: run ``fn`` every ``every``; keep its last result, error and duration."""

    def __init__(self, name: str, every: timedelta, fn: Callable[[], Any]) -> None:
        self.name = name
        self.every = every.total_seconds()
        self.fn = fn
        self.next_due = 0.0
        self.last: Any = None
        self.error: str | None = None
        self.seconds = 0.0
        self.runs = 0

    def run_if_due(self, mono: float) -> bool:
        """Run once if due at monotonic ``mono``; return whether it ran. A LakeError is kept, not raised."""
        if mono < self.next_due:
            return False
        self.next_due = mono + self.every
        started = time.perf_counter()
        try:
            self.last = self.fn()
            self.error = None
        except LakeError as exc:
            self.error = str(exc)
            log.warning("hub %s failed: %s", self.name, exc)
        self.seconds = time.perf_counter() - started
        self.runs += 1
        return True


class Hub:
    """Maintain the lake of ``[lake]`` and alert over it: ``with Hub(settings) as hub: hub.run(stop)``."""

    def __init__(self, settings: Settings, *, lake: LakeConfig | None = None, sender: Sender = send) -> None:
        cfg = lake or lake_config(settings)
        if cfg is None:
            raise ConfigError("the hub needs a lake: set [lake] catalog (and data_path) in monitorkit.toml")
        self.cfg = cfg
        self.settings = settings
        self.config: HubConfig = hub_config(settings)
        self.retention = settings.retention()
        self.lake = open_lake(cfg)
        try:
            ensure_schema(self.lake)
            self.store = HubStore(self.config.db, settings=settings, lake=cfg)
        except duckdb.Error as exc:
            self.lake.close()
            raise lake_error(exc, cfg, "preparing the lake") from None
        except BaseException:
            self.lake.close()
            raise
        self.engine = Engine(self.store, settings, sender=sender)
        self.jobs: Sequence[Job] = (
            Job("rollup", self.config.rollup_every, lambda: self._lake_call(rollup, "rolling up")),
            Job("maintenance", self.config.maintenance_every, self.maintain),
            Job("retention", self.config.retention_every, self.enforce_retention),
        )
        self._started = False
        self._lake_lock = threading.Lock()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Load rules and alert state and start the notification dispatcher."""
        if not self._started:
            self.engine.start()
            self._started = True

    def _lake_call(self, fn: Callable[..., Any], doing: str, *args: Any, **kwargs: Any) -> Any:
        with self._lake_lock:
            try:
                return fn(self.lake, *args, **kwargs)
            except duckdb.Error as exc:
                raise lake_error(exc, self.cfg, doing) from None

    def maintain(self) -> Maintenance:
        """Flush inlined rows, merge adjacent files, expire snapshots and delete unreferenced files now."""
        return self._lake_call(maintain, "maintaining the lake", expire_after=self.config.expire_snapshots_after,
                               cleanup_after=self.config.cleanup_files_after)

    def enforce_retention(self, now: datetime | None = None) -> dict[str, int]:
        """Delete what is past ``[retention]`` in the lake (and old ledger rows) now."""
        return self._lake_call(enforce_retention, "enforcing retention in the lake", now or utcnow(), self.retention,
                               keep_log=self.config.ship_log_keep)

    def rollup(self) -> dict[str, int]:
        """Roll up every host's shipped, closed minutes and hours now."""
        return self._lake_call(rollup, "rolling up")

    def evaluate(self) -> None:
        """Evaluate the due fleet rules now, write their state and queue notifications; wait for it."""
        self.start()
        self.engine.run()

    def run_jobs(self, stop: threading.Event | None = None) -> None:
        """Run each due maintenance job once; report the hub's health as a heartbeat."""
        ran = False
        for job in self.jobs:
            if stop is not None and stop.is_set():
                return
            ran = job.run_if_due(time.monotonic()) or ran
        if ran:
            failed = [f"{job.name}: {job.error}" for job in self.jobs if job.error]
            status, reason = ("degraded", "; ".join(failed)[:500]) if failed else ("ok", "rollups and maintenance current")
            ttl = 3 * min(job.every for job in self.jobs) + 60
            submit_heartbeat(self.store, make_heartbeat(COMPONENT, status, reason, ttl))

    def run(self, stop: threading.Event) -> None:
        """Evaluate rules every ``rules_every`` and run the lake's jobs on a second thread until ``stop``."""
        self.start()
        worker = threading.Thread(target=self._jobs_loop, args=(stop,), name="monitorkit-hub-jobs", daemon=True)
        worker.start()
        every = self.config.rules_every.total_seconds()
        try:
            while not stop.is_set():
                started = time.monotonic()
                self.evaluate()
                stop.wait(max(0.0, every - (time.monotonic() - started)))
        finally:
            stop.set()
            worker.join(60)

    def _jobs_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_jobs(stop)
            stop.wait(1.0)

    def status(self) -> dict[str, Any]:
        """Return each job's runs, last duration, last result and error."""
        return {job.name: {"runs": job.runs, "seconds": job.seconds, "error": job.error,
                           "last": job.last._asdict() if hasattr(job.last, "_asdict") else job.last} for job in self.jobs}

    def close(self) -> None:
        """Stop the dispatcher, close the hub's file and the lake connection."""
        if self._started:
            self.engine.close()
            self._started = False
        self.store.close()
        with self._lake_lock:
            self.lake.close()
