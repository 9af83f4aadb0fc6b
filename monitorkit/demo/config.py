"""What the demo generator makes: its configuration and the incidents it injects (records, no logic)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from monitorkit.errors import MonitorkitError

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DEFAULT_SEED = 42
DEFAULT_DAYS = 3
DEFAULT_HOSTS = 3
DEFAULT_STEP = 10
ROLES = ("web", "db", "worker")
MAX_ROWS = 25_000_000
CHUNK_ROWS = 250_000
HISTOGRAMS = ("protocol_request_duration_seconds", "tool_run_duration_seconds")
ERROR_TYPES = {"timeout": "TimeoutError", "error": "RuntimeError"}

IncidentKind = Literal["cpu_saturation", "disk_fill", "memory_leak", "nic_flapping", "slow_tool", "protocol_errors"]
Direction = Literal["above", "below"]


class DemoArgumentError(MonitorkitError, ValueError):
    """A demo generator argument is out of range, or the target file is in the way."""


class Incident(NamedTuple):
    """One injected incident: ``metric`` (with ``labels``) is past ``threshold`` on ``host`` from start to end.

    ``threshold`` applies to the value the kind implies: a gauge's value, a counter's per-second
    rate over 5 minutes, or a histogram's mean (``_sum`` / ``_count`` increase over 5 minutes).
    """

    kind: IncidentKind
    host: str
    start: datetime
    end: datetime
    metric: str
    description: str
    labels: Mapping[str, str] = {}
    threshold: float = 0.0
    direction: Direction = "above"


class DemoConfig(NamedTuple):
    """What to generate: ``DemoConfig(seed=42, days=3, hosts=3, step=10)``."""

    seed: int = DEFAULT_SEED
    days: int = DEFAULT_DAYS
    hosts: int = DEFAULT_HOSTS
    step: int = DEFAULT_STEP
    start: datetime = DEFAULT_START

    @property
    def end(self) -> datetime:
        """Return the end of the range (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def steps(self) -> int:
        """Return the number of sample times per series."""
        return self.days * 86400 // self.step

    @property
    def host_names(self) -> list[str]:
        """Return the host names: web-1, db-1, worker-1, web-2, ..."""
        return [f"{ROLES[i % len(ROLES)]}-{i // len(ROLES) + 1}" for i in range(self.hosts)]

    def at(self, hours: float) -> datetime:
        """Return the time ``hours`` into the default 3-day range, scaled to this range (whole minutes)."""
        return self.start + timedelta(minutes=round(hours * self.days / DEFAULT_DAYS * 60))
