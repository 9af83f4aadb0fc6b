"""Run an owner process: the store, the collectors and every service that lives beside them.

``OwnerContext`` and ``Service`` (owner/context.py) are re-exported here, where services are started.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from monitorkit.collectors.base import Collector
from monitorkit.config import Settings
from monitorkit.errors import StoreError
from monitorkit.owner import local
from monitorkit.owner.context import OwnerContext, Service
from monitorkit.owner.owner import Owner
from monitorkit.owner.scheduler import Scheduler

log = logging.getLogger(__name__)

# Services started by `monitorkit collect` (and `serve`, which adds the dashboard), in order.
# Each names "module:Class"; the class takes no arguments and follows the Service protocol.
DEFAULT_SERVICES: tuple[str, ...] = (
    "monitorkit.owner.health:HealthService",
    "monitorkit.owner.ingest:IngestService",
    "monitorkit.rules.service:RuleService",
    "monitorkit.lake.service:ShipService",  # ships to the fleet lake; nothing without a [lake] section
    "monitorkit.interop.scraper:ScrapeService",  # scrapes [[scrape]] targets; nothing without one
    "monitorkit.interop.receivers:ReceiverService",  # POST /api/v1/write (remote_write) and /v1/metrics (OTLP)
)


def load_service(spec: str) -> Service:
    """Import ``module:Class`` and return an instance."""
    module, _, cls = spec.partition(":")
    service: Service = getattr(importlib.import_module(module), cls)()
    return service


def run_owner(
    settings: Settings,
    stop: threading.Event,
    *,
    collectors: Sequence[Collector] | None = None,
    services: Sequence[str] = DEFAULT_SERVICES,
    on_ready: object = None,
) -> None:
    """Own ``store.path``, start services and collect until ``stop`` is set; shut down cleanly."""
    from monitorkit.collectors import default_collectors

    with Owner(settings.get("store.path"), settings=settings, starting=True) as owner:
        scheduler = Scheduler(
            owner.store,
            list(collectors) if collectors is not None else default_collectors(settings["collectors"]),
            tick=float(settings.get("collect.interval")),
        )
        with serving(owner, scheduler, settings, stop) as ctx:
            started: list[Service] = []
            try:
                for spec in services:
                    service = load_service(spec)
                    service.start(ctx)
                    ctx.services[service.name] = service
                    started.append(service)
                ctx.api.starting = False  # every service's routes are registered: unknown ones are 404 now
                if callable(on_ready):
                    on_ready(ctx)
                scheduler.run(stop)
            finally:
                ctx.api.stopping = True  # routes go away from here on: peers are told to retry, not 404
                for service in reversed(started):
                    try:
                        service.stop()
                    except Exception:  # one service failing to stop must not keep the file from closing
                        log.exception("stopping service %s failed", service.name)


@contextmanager
def serving(owner: Owner, scheduler: Scheduler, settings: Settings, stop: threading.Event) -> Iterator[OwnerContext]:
    """Give services their context (the owner's API included) and make the owner findable in this process."""
    if owner.api is None:
        raise StoreError("an owner that does not serve (serve=False) cannot host services")
    ctx = OwnerContext(owner, scheduler, settings, stop, owner.api)
    local.register(owner.db, ctx)
    try:
        yield ctx
    finally:
        local.unregister(owner.db, ctx)


__all__ = ["DEFAULT_SERVICES", "OwnerContext", "Service", "load_service", "run_owner", "serving"]
