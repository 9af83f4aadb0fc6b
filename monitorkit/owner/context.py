"""What every service of the owner process gets: the owner, the scheduler, the owner API, settings (records only)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from monitorkit.config import Settings
from monitorkit.owner.api import OwnerApi
from monitorkit.owner.owner import Owner
from monitorkit.owner.scheduler import Scheduler


@dataclass
class OwnerContext:
    """What a service gets: the owner (store, sidecar), the scheduler, the owner API, settings and the stop event."""

    owner: Owner
    scheduler: Scheduler
    settings: Settings
    stop: threading.Event
    api: OwnerApi
    services: dict[str, Service] = field(default_factory=dict)


class Service(Protocol):
    """Something that runs inside the owner process beside the collectors."""

    name: str

    def start(self, ctx: OwnerContext) -> None:
        """Start; may register store hooks, scheduler tick hooks or sidecar fields."""
        ...

    def stop(self) -> None:
        """Stop and release everything; called in reverse start order."""
        ...
