"""The ``[lake]`` and ``[hub]`` settings, parsed once with their defaults and checked.

```toml
[lake]
catalog = "postgres:host=db.internal dbname=fleet user=monitorkit"   # DuckLake's PostgreSQL catalog
data_path = "/mnt/fleet/lake/"     # a folder every host and the hub reach (or s3://bucket/prefix/)
ship_interval = "30s"              # a closed batch every 30 s per host
```

No ``[lake]`` section (or no ``catalog``): the owner ships nothing and behaves as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from monitorkit.config import Settings, parse_duration
from monitorkit.errors import ConfigError
from monitorkit.samples import HOST

LAKE_DEFAULTS: dict[str, Any] = {
    "catalog": "",
    "data_path": "",
    "metadata_schema": "",
    "ship_interval": "30s",
    # Samples younger than this are not shipped yet: the writer commits every store.flush_interval.
    "lateness": "15s",
    # At most this much of one host's time range per lake transaction (catch-up after an outage).
    "max_batch": "10m",
    # Tool runs that reach the owner late (their application buffered them) are still shipped within this.
    "executions_lookback": "1h",
    "host": "",
    "connect_timeout": "10s",
}
HUB_DEFAULTS: dict[str, Any] = {
    "db": "data/hub.duckdb",
    "rules_every": "10s",
    "rollup_every": "1m",
    "maintenance_every": "10m",
    "retention_every": "1h",
    # Snapshots older than this are expired (time travel before it is gone), then their files deleted.
    "expire_snapshots_after": "1h",
    "cleanup_files_after": "1h",
    # ship_log rows older than this are removed (the newest row per host always stays).
    "ship_log_keep": "2d",
    # The fleet dashboard (`monitorkit hub --serve`): off unless asked for, a port beside `serve`'s 5006.
    "serve": False,
    "address": "127.0.0.1",
    "port": 5007,
    "tick": "2s",
    "token": "",
}
_HUB_DURATIONS = ("rules_every", "rollup_every", "maintenance_every", "retention_every", "expire_snapshots_after",
                  "cleanup_files_after", "ship_log_keep", "tick")
_PASSWORD_RE = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class LakeConfig:
    """Where the lake is and how a host ships to it."""

    catalog: str
    data_path: str = ""
    metadata_schema: str = ""
    ship_interval: timedelta = timedelta(seconds=30)
    lateness: timedelta = timedelta(seconds=15)
    max_batch: timedelta = timedelta(minutes=10)
    executions_lookback: timedelta = timedelta(hours=1)
    host: str = HOST
    connect_timeout: timedelta = timedelta(seconds=10)

    @property
    def uri(self) -> str:
        """Return the DuckLake URI to ATTACH: ``ducklake:postgres:...`` (libpq's connect_timeout added if absent)."""
        spec = self.catalog.removeprefix("ducklake:")
        if spec.startswith("postgres:") and "connect_timeout" not in spec:
            # libpq waits forever for a host that drops packets; a shipper must give up and retry.
            spec = f"{spec} connect_timeout={max(1, int(self.connect_timeout.total_seconds()))}"
        return f"ducklake:{spec}"

    @property
    def display(self) -> str:
        """Return the catalog string fit for logs and messages (a password is replaced by ***)."""
        return redact(self.catalog)


@dataclass(frozen=True)
class HubConfig:
    """How often the hub evaluates rules, rolls up, maintains the lake and enforces retention; where it serves."""

    db: Path = Path("data/hub.duckdb")
    rules_every: timedelta = timedelta(seconds=10)
    rollup_every: timedelta = timedelta(minutes=1)
    maintenance_every: timedelta = timedelta(minutes=10)
    retention_every: timedelta = timedelta(hours=1)
    expire_snapshots_after: timedelta = timedelta(hours=1)
    cleanup_files_after: timedelta = timedelta(hours=1)
    ship_log_keep: timedelta = timedelta(days=2)
    serve: bool = False
    address: str = "127.0.0.1"
    port: int = 5007
    tick: timedelta = timedelta(seconds=2)
    token: str = ""


def redact(text: str) -> str:
    """Return ``text`` with any ``password=...`` replaced by ``password=***``."""
    return _PASSWORD_RE.sub(r"\1***", text)


def _section(settings: Settings, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    try:
        given = dict(settings[name])
    except KeyError:
        given = {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f"[{name}]: unknown setting {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
    return {**defaults, **given}


def _duration(section: str, values: Mapping[str, Any], key: str) -> timedelta:
    try:
        value = parse_duration(values[key])
    except ConfigError as exc:
        raise ConfigError(f"[{section}] {key}: {exc}") from None
    if value <= timedelta(0):
        raise ConfigError(f"[{section}] {key} must be longer than 0, not {values[key]!r}")
    return value


def lake_config(settings: Settings, *, catalog: str | None = None) -> LakeConfig | None:
    """Return the ``[lake]`` settings, or None when no catalog is configured (``catalog`` overrides it)."""
    values = _section(settings, "lake", LAKE_DEFAULTS)
    spec = str(catalog if catalog is not None else values["catalog"] or "").strip()
    if not spec:
        return None
    if not spec.removeprefix("ducklake:").startswith("postgres:"):
        raise ConfigError(
            f"[lake] catalog must be a PostgreSQL connection string such as "
            f"'postgres:host=db dbname=fleet', not {redact(spec)!r}: a fleet needs a catalog "
            "several hosts can commit to at once")
    durations = {key: _duration("lake", values, key) for key in
                 ("ship_interval", "lateness", "max_batch", "executions_lookback", "connect_timeout")}
    flush = parse_duration(settings.get("store.flush_interval", 0))
    if durations["lateness"] <= flush:
        raise ConfigError(
            f"[lake] lateness ({values['lateness']}) must be longer than store.flush_interval "
            f"({settings.get('store.flush_interval')}): samples are shipped only once committed")
    host = str(values["host"] or HOST)
    return LakeConfig(
        catalog=spec, data_path=str(values["data_path"] or ""), metadata_schema=str(values["metadata_schema"] or ""),
        host=host, **durations)


def hub_config(settings: Settings) -> HubConfig:
    """Return the ``[hub]`` settings with their defaults."""
    values = _section(settings, "hub", HUB_DEFAULTS)
    durations = {key: _duration("hub", values, key) for key in _HUB_DURATIONS}
    try:
        port = int(values["port"])
    except (TypeError, ValueError):
        raise ConfigError(f"[hub] port must be a number (0 for any free port), not {values['port']!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"[hub] port must be between 0 and 65535, not {port}")
    if not isinstance(values["serve"], bool):
        raise ConfigError(f"[hub] serve must be true or false, not {values['serve']!r}")
    return HubConfig(db=Path(values["db"]), serve=values["serve"], address=str(values["address"]), port=port,
                     token=str(values["token"] or ""), **durations)
