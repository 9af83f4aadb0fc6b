"""The owner's own parts, checked every tick and served from memory: health never says ok while one is broken.

Each tick ``HealthService`` asks every part how it is (the store's writer, rollup and
compaction, the Quack endpoint, the owner API, and every service that has ``parts()``),
keeps the answer in memory for ``GET /v1/health`` and the dashboard's ``/healthz``, and
records changes as heartbeats so the SQL health views and history see them too. When the
disk is full those writes fail, but the answer in memory is still served.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitorkit.owner.api import Request, Response
from monitorkit.rules.health import make_heartbeat, submit_heartbeats
from monitorkit.store.status import Part, worst

if TYPE_CHECKING:
    from monitorkit.owner.context import OwnerContext

log = logging.getLogger(__name__)
HEALTH_PATH = "/v1/health"
REFRESH_EVERY = 30.0  # seconds between heartbeats of an unchanged part
TTL_TICKS = 10  # a part's heartbeat goes stale (failing) after this many ticks without a report


class HealthService:
    """Check every part of the owner once per tick; serve the result from memory."""

    name = "health"

    def __init__(self) -> None:
        self._ctx: OwnerContext | None = None
        self._lock = threading.Lock()
        self._parts: list[Part] = []
        self._written: dict[str, str] = {}  # component -> the status last written
        self._refreshed = -REFRESH_EVERY  # monotonic time of the last write of every part
        self.checked_at = 0.0

    def start(self, ctx: OwnerContext) -> None:
        """Check on every tick and answer ``GET /v1/health``."""
        self._ctx = ctx
        self.ttl = max(60.0, TTL_TICKS * float(ctx.scheduler.tick))
        ctx.api.add_route("GET", HEALTH_PATH, self._answer)
        ctx.scheduler.tick_hooks.append(self.tick)
        self.check()

    def stop(self) -> None:
        """Stop checking."""
        if self._ctx is not None:
            if self.tick in self._ctx.scheduler.tick_hooks:
                self._ctx.scheduler.tick_hooks.remove(self.tick)
            self._ctx.api.remove_route("GET", HEALTH_PATH)

    def check(self) -> list[Part]:
        """Ask every part how it is now; keep and return the answers."""
        assert self._ctx is not None
        owner = self._ctx.owner
        parts = [*owner.store.parts(), *owner.parts()]
        for service in list(self._ctx.services.values()):
            report = getattr(service, "parts", None)
            if callable(report):
                try:
                    parts.extend(report())
                except Exception as exc:  # a part that cannot even say how it is, is failing
                    parts.append(Part(getattr(service, "name", "service"), "failing", f"health check failed: {exc}"))
        with self._lock:
            self._parts = parts
            self.checked_at = time.time()
        return parts

    def snapshot(self) -> tuple[str, list[Part]]:
        """Return the overall status and every part, as last checked."""
        with self._lock:
            parts = list(self._parts)
        return worst(parts), parts

    def tick(self, now: datetime) -> None:
        """Check, then record what changed (and, every REFRESH_EVERY, all parts) as heartbeats.

        A part whose status changed is written at once; every part is refreshed in the same
        statement, reasons included, rather than each on its own clock: one write per refresh
        instead of one per part (each is a DuckDB transaction of ~2.5 ms). ``/v1/health`` answers
        from memory, so it always has the newest reasons.
        """
        assert self._ctx is not None
        mono = time.monotonic()
        parts = self.check()
        refresh = mono - self._refreshed >= REFRESH_EVERY
        due = []
        for part in parts:
            known = self._written.get(part.component)
            if known != part.status:
                level = logging.INFO if part.status == "ok" else logging.ERROR
                log.log(level, "health: %s is %s (%s)", part.component, part.status, part.reason)
            elif not refresh:
                continue  # same status: a new reason (ingest's counts change every tick) waits for the refresh
            self._written[part.component] = part.status
            due.append(make_heartbeat(part.component, part.status, part.reason, self.ttl))
        if refresh:
            self._refreshed = mono
        if not due:
            return
        try:
            submit_heartbeats(self._ctx.owner.store, due)
        except Exception as exc:  # the store is closed or refusing: memory still has the answer
            log.debug("recording health of %s failed: %s", ", ".join(hb.component for hb in due), exc)

    def _answer(self, request: Request) -> Response:
        overall, parts = self.snapshot()
        payload: dict[str, Any] = {"status": overall, "checked_at": self.checked_at,
                                   "parts": [p._asdict() for p in parts]}
        return Response.json(200 if overall != "failing" else 503, payload)
