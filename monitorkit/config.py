"""Settings from defaults, monitorkit.toml and MONITORKIT_* environment variables, with their sources."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from monitorkit.errors import ConfigError

DEFAULTS: dict[str, dict[str, Any]] = {
    "store": {
        "path": "data/monitorkit.duckdb",
        "queue_max_samples": 1_000_000,
        "rollup_every": "1m",
        "rollup_lateness": "5s",
        # Samples arriving within this interval share one commit. 100 ms keeps a collector sample
        # to a firing alert under 250 ms (p99) at about one commit per tick; "5s" batches more.
        "flush_interval": "100ms",
        # DuckDB threads of the owner (0: DuckDB's default, one per core). One keeps small rule and
        # rollup queries from waking a worker pool each time (collect: ~1.0 -> ~0.8 % of a core);
        # GLOBAL in DuckDB, so queries shipped to the owner run on one thread too.
        "threads": 1,
        # Distinct series the owner accepts (0: no limit); samples of series past it are refused,
        # counted in monitorkit_samples_dropped_total{reason="series_limit"} and alerted on.
        "max_series": 100_000,
        # DuckDB's memory limit for the owner's file (buffer pool, joins, sorts), e.g. "1GB" or "25%".
        "memory_limit": "1GB",
    },
    "retention": {"raw": "14d", "1m": "90d", "1h": "1095d", "executions": "90d"},
    "collect": {"interval": 1.0},
    "collectors": {},
    "instrument": {"autostart": False, "interval": 1.0},
    "serve": {"address": "127.0.0.1", "port": 5006, "system_malloc": True},
    # Queries other processes run on the owner (monitorkit.connect(), monitorkit sql): each is
    # interrupted past `timeout` or when its client goes away, and its result is bounded in MiB.
    "readers": {"timeout": "60s", "max_result_mb": 256},
    # The owner API (ingest, actions, receivers): a fixed port and a token kept in a 0600 file let a
    # long-running peer (a Prometheus remote-writing here) survive owner restarts; 0 / "": random each start.
    "owner": {"api_port": 0, "api_token_file": ""},
}
ENV_PREFIX = "MONITORKIT_"
# Top-level arrays of tables allowed in monitorkit.toml, and the key of their section that holds them.
LIST_SECTIONS = {"scrape": "jobs"}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: object) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"14d"`` or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ConfigError(f"invalid duration {value!r}: write a number with a unit, e.g. '30s', '5m', '14d'")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class Settings:
    """Effective settings: ``settings["store"]["path"]`` plus ``source("store.path")``."""

    def __init__(self, values: dict[str, dict[str, Any]], sources: dict[str, str]) -> None:
        self._values = values
        self._sources = sources

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self._values[section]

    def get(self, dotted: str, default: Any = None) -> Any:
        """Return the value at ``section.key`` (or ``default``)."""
        section, _, key = dotted.partition(".")
        return self._values.get(section, {}).get(key, default)

    def source(self, dotted: str) -> str:
        """Return where ``section.key`` came from: default, a file, the environment or an override."""
        return self._sources.get(dotted, "default")

    def items(self) -> list[tuple[str, Any, str]]:
        """Return ``(section.key, value, source)`` for every setting, sorted."""
        rows = []
        for section, values in sorted(self._values.items()):
            for key, value in sorted(values.items()):
                rows.append((f"{section}.{key}", value, self.source(f"{section}.{key}")))
        return rows

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "command line") -> Settings:
        """Return a copy with ``{"section.key": value}`` overrides applied (None values skipped)."""
        values = copy.deepcopy(self._values)
        sources = dict(self._sources)
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, key = dotted.partition(".")
            values.setdefault(section, {})[key] = value
            sources[dotted] = source
        return Settings(values, sources)

    def retention(self) -> dict[str, timedelta]:
        """Return each tier's retention as a timedelta."""
        return {tier: parse_duration(v) for tier, v in self._values["retention"].items()}


def find_config_file(start: Path | None = None) -> Path | None:
    """Return ``$MONITORKIT_CONFIG`` or ``monitorkit.toml`` in the working folder, if present."""
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    if env:
        return Path(env)
    candidate = (start or Path.cwd()) / "monitorkit.toml"
    return candidate if candidate.exists() else None


def load_settings(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Merge defaults, the TOML file and ``MONITORKIT_SECTION__KEY`` environment variables."""
    values = copy.deepcopy(DEFAULTS)
    sources: dict[str, str] = {}
    file = Path(path) if path is not None else find_config_file()
    if file is not None:
        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
        for section, table in data.items():
            if section in LIST_SECTIONS and isinstance(table, list):
                table = {LIST_SECTIONS[section]: table}  # [[scrape]] tables are kept as scrape.jobs
            if not isinstance(table, dict):
                raise ConfigError(f"{file}: top-level key {section!r} must be a [table]")
            values.setdefault(section, {}).update(table)
            for key in table:
                sources[f"{section}.{key}"] = str(file)
    environ = os.environ if env is None else env
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        values.setdefault(section, {})[key] = _parse_env(raw)
        sources[f"{section}.{key}"] = f"env {name}"
    settings = Settings(values, sources)
    settings.retention()  # refuse bad durations at load time, not hours later
    return settings


def _parse_env(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
