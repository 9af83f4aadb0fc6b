"""The ship service inside an owner: ship closed batches to the lake every ``[lake] ship_interval``.

Without a ``[lake]`` section it does nothing. While the lake is unreachable the host goes on
collecting and alerting on its own file; its ``lake`` heartbeat says ``degraded: lake
unreachable since ...``, and once the lake answers again the shipper catches up from its
watermark (as far back as the local retention still holds samples).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitorkit.errors import StoreClosedError
from monitorkit.lake.config import LakeConfig, lake_config
from monitorkit.lake.errors import LakeConflictError, LakeError, LakeUnreachableError, ShipperClashError
from monitorkit.owner.api import Request, Response
from monitorkit.rules.health import make_heartbeat, submit_heartbeat
from monitorkit.samples import utcnow

if TYPE_CHECKING:
    from monitorkit.lake.ship import Shipper, ShipReport
    from monitorkit.owner.context import OwnerContext
    from monitorkit.store import Store
    from monitorkit.store.writer import CommitInfo

log = logging.getLogger(__name__)
COMPONENT = "lake"
STATUS_PATH = "/v1/lake"
CONFLICT_RETRIES = 3  # DuckLake serializes commits: a conflict is retried at once, a few times


class ShipService:
    """Run a Shipper on its own thread beside the owner's collectors (``[lake]`` configured) or do nothing."""

    name = "lake"

    def __init__(self) -> None:
        self.cfg: LakeConfig | None = None
        self.shipper: Shipper | None = None
        self.unreachable_since: datetime | None = None
        self.last_error: str | None = None
        self.last_report: ShipReport | None = None
        self.ships = 0
        self._committed: datetime | None = None
        self._store: Store | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: OwnerContext | None = None

    def start(self, ctx: OwnerContext) -> None:
        """Start shipping when ``[lake]`` names a catalog; otherwise return at once."""
        self.cfg = lake_config(ctx.settings)
        if self.cfg is None:
            return
        # Only an owner with a [lake] loads the shipper: it needs pyarrow (~40 MiB), which `collect` does not.
        from monitorkit.lake.ship import Shipper
        from monitorkit.lake.source import LocalSource

        self._ctx = ctx
        self._store = store = ctx.owner.store
        self._committed = utcnow()  # what the file holds at start is committed
        self.shipper = Shipper(self.cfg, LocalSource(store.cursor), limit=lambda: self._committed)
        store.add_hook(self._on_commit)
        ctx.api.add_route("GET", STATUS_PATH, self._status_route)
        self._thread = threading.Thread(target=self._run, name="monitorkit-lake-ship", daemon=True)
        self._thread.start()
        log.info("shipping to the lake at %s as host %s every %s", self.cfg.display, self.cfg.host, self.cfg.ship_interval)

    def stop(self) -> None:
        """Stop after the batch in progress, ship what is left if the lake answers, close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.cfg.connect_timeout.total_seconds() + 10 if self.cfg else 10)
            alive = self._thread.is_alive()
            self._thread = None
            if not alive:
                self._final_ship()
        if self._ctx is not None:
            self._ctx.api.remove_route("GET", STATUS_PATH)
            self._ctx = None
        if self.shipper is not None:
            self.shipper.close()

    def _final_ship(self) -> None:
        # The collectors have stopped: ship up to the newest committed sample, so a clean stop
        # leaves the lake holding all the host has. An unreachable lake is not waited for.
        if self.shipper is None or self._store is None or self.unreachable_since is not None:
            return
        try:
            self._store.flush(self.cfg.connect_timeout.total_seconds() if self.cfg else 10)
            self.shipper.ship(utcnow(), final=True)
        except LakeError as exc:
            log.warning("the last batch stays local until the next start: %s", exc)

    def _on_commit(self, info: CommitInfo) -> None:
        high = info.max_time
        if isinstance(high, datetime) and (self._committed is None or high > self._committed):
            self._committed = high

    # -- the ship loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        assert self.cfg is not None
        interval = self.cfg.ship_interval.total_seconds()
        # Hosts started together would all ship at the same instant: each takes its own phase.
        self._stop.wait(random.uniform(0.5, max(0.5, min(interval, 5.0))))
        while not self._stop.is_set():
            started = time.monotonic()
            self.ship_now()
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def ship_now(self) -> ShipReport | None:
        """Ship what is closed now (retrying conflicts); record health; return the report, None on failure."""
        assert self.shipper is not None and self.cfg is not None
        deadline = time.monotonic() + max(self.cfg.ship_interval.total_seconds(), 5.0)
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                report = self.shipper.ship(utcnow(), deadline=deadline, stop=self._stop.is_set)
            except LakeConflictError as exc:
                if attempt < CONFLICT_RETRIES:
                    continue  # the hub or a catch-up committed first: the batch is simply shipped again
                self._failed(exc)
                return None
            except LakeError as exc:
                self._failed(exc)
                return None
            self._shipped(report)
            return report
        return None

    def _failed(self, exc: LakeError) -> None:
        if self.unreachable_since is None:
            self.unreachable_since = utcnow()
            log.warning("shipping to the lake failed; samples stay local and ship later: %s", exc)
        self.last_error = str(exc)
        when = self.unreachable_since.strftime("%Y-%m-%d %H:%M:%S UTC")
        what = {LakeUnreachableError: "lake unreachable", LakeConflictError: "lake busy (commits keep conflicting)",
                ShipperClashError: "another owner ships as this host"}.get(type(exc), "lake refuses batches")
        self._heartbeat("degraded", f"{what} since {when}: {str(exc)[:300]}")

    def _shipped(self, report: ShipReport) -> None:
        assert self.shipper is not None
        if self.unreachable_since is not None:
            log.info("the lake answers again; shipped %d samples in %d batches", report.samples, report.batches)
        self.unreachable_since, self.last_error, self.last_report = None, None, report
        self.ships += 1
        wm = report.watermark
        behind = (utcnow() - wm).total_seconds() if wm else 0.0
        reason = f"shipped through {wm:%Y-%m-%d %H:%M:%S} UTC ({behind:.0f} s behind)" if wm else "nothing to ship yet"
        status = "ok"
        if not report.caught_up:
            reason, status = f"catching up: {reason}", "degraded"
        if self.shipper.gap is not None:
            lo, hi = self.shipper.gap
            status = "degraded"
            reason += f"; samples from {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC were removed locally before shipping"
        self._heartbeat(status, reason)

    def _heartbeat(self, status: str, reason: str) -> None:
        if self._store is None or self.cfg is None:
            return
        # Three missed ships and the heartbeat expires: a stuck shipper shows as failing.
        ttl = max(3 * self.cfg.ship_interval.total_seconds(), 90.0)
        try:
            submit_heartbeat(self._store, make_heartbeat(COMPONENT, status, reason, ttl))
        except StoreClosedError:
            pass  # the owner is closing under a last ship: nothing left to report to

    # -- status ------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Return the shipper's state: host, watermark, last report, unreachable since, last error."""
        report = self.last_report
        return {
            "host": self.cfg.host if self.cfg else None,
            "catalog": self.cfg.display if self.cfg else None,
            "watermark": self.shipper.watermark.isoformat() if self.shipper and self.shipper.watermark else None,
            "ships": self.ships,
            "last_batch_seconds": self.shipper.last_batch_seconds if self.shipper else None,
            "last_report": report._asdict() if report else None,
            "unreachable_since": self.unreachable_since.isoformat() if self.unreachable_since else None,
            "last_error": self.last_error,
        }

    def _status_route(self, request: Request) -> Response:
        return Response.json(200, self.status())
