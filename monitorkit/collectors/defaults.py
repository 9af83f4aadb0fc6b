"""The default set of host collectors, built from the ``[collectors]`` settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from monitorkit.collectors.base import Collector
from monitorkit.collectors.connections import ConnectionsCollector
from monitorkit.collectors.cpu import CpuCollector
from monitorkit.collectors.disk import DiskIOCollector, DiskUsageCollector
from monitorkit.collectors.kernel import KernelCollector
from monitorkit.collectors.memory import MemoryCollector
from monitorkit.collectors.network import NetworkCollector
from monitorkit.collectors.processes import ProcessesCollector
from monitorkit.collectors.sources import HostSource, PsutilSource
from monitorkit.config import parse_duration
from monitorkit.errors import ConfigError


def _interval(value: object) -> float:
    seconds = parse_duration(value).total_seconds()  # 10, 2.5 or "10s", "1m"
    if seconds <= 0:
        raise ValueError
    return seconds


def _positive_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError
    return value


def _optional_str(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _path(value: object) -> Path:
    if not isinstance(value, (str, Path)):
        raise ValueError
    return Path(value)


# Each option a collector accepts in config: its parser (raises on a bad value) and what it expects.
OPTION_PARSERS: dict[str, tuple[Callable[[object], Any], str]] = {
    "interval": (_interval, "a duration > 0 such as 10, 2.5, '10s' or '1m'"),
    "max_groups": (_positive_int, "an integer > 0"),
    "max_ports": (_positive_int, "an integer > 0"),
    "exclude": (_optional_str, "a regular expression string"),
    "kind": (_str, "a psutil connection kind such as 'all' or 'inet'"),
    "proc_root": (_path, "a directory path"),
}

# Collector name -> (factory given the host source, options it accepts besides `enabled`).
FACTORIES: dict[str, tuple[Callable[..., Collector], tuple[str, ...]]] = {
    "cpu": (lambda source, **kw: CpuCollector(source, **kw), ("interval",)),
    "memory": (lambda source, **kw: MemoryCollector(source, **kw), ("interval",)),
    "disk_usage": (lambda source, **kw: DiskUsageCollector(source, **kw), ("interval",)),
    "disk_io": (lambda source, **kw: DiskIOCollector(source, **kw), ("interval", "exclude")),
    "network": (lambda source, **kw: NetworkCollector(source, **kw), ("interval", "exclude")),
    "connections": (lambda source, **kw: ConnectionsCollector(source, **kw), ("interval", "kind", "max_ports")),
    "processes": (lambda source, **kw: ProcessesCollector(source, **kw), ("interval", "max_groups")),
    "kernel": (lambda source, **kw: KernelCollector(**kw), ("interval", "proc_root")),
}


def _options(name: str, settings: object, allowed: tuple[str, ...]) -> tuple[bool, dict[str, Any]]:
    """Return (enabled, constructor keywords) for one collector's config entry, else raise ConfigError."""
    if not isinstance(settings, Mapping):
        raise ConfigError(f"collectors.{name} must be a table of settings, got {type(settings).__name__}")
    enabled = settings.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"collectors.{name}.enabled must be true or false, got {enabled!r}")
    kwargs: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "enabled":
            continue
        if key not in allowed:
            raise ConfigError(f"collectors.{name} has no setting {key!r}; use one of: enabled, {', '.join(allowed)}")
        parse, meaning = OPTION_PARSERS[key]
        try:
            kwargs[key] = parse(value)
        except (ValueError, ConfigError):
            raise ConfigError(f"collectors.{name}.{key} must be {meaning}, got {value!r}") from None
    return enabled, kwargs


def default_collectors(
    config: Mapping[str, Mapping[str, Any]] | None = None, *, source: HostSource | None = None
) -> list[Collector]:
    """Return the default host collectors, e.g. ``default_collectors({"processes": {"max_groups": 50}})``.

    Keys are collector names (cpu, memory, disk_usage, disk_io, network, connections,
    processes, kernel); ``{"enabled": False}`` drops one. The kernel collector is left
    out where /proc/net/snmp does not exist (anything but Linux). Default cadences: 1 s for
    cpu, memory, disk_io and network; 5 s kernel; 10 s disk_usage and processes; 30 s
    connections (listing every socket makes the kernel walk its whole socket hash).
    """
    config = config or {}
    unknown = sorted(set(config) - set(FACTORIES))
    if unknown:
        raise ConfigError(f"unknown collector(s) {', '.join(unknown)}; known: {', '.join(FACTORIES)}")
    host = source if source is not None else PsutilSource()
    out: list[Collector] = []
    for name, (factory, allowed) in FACTORIES.items():
        enabled, kwargs = _options(name, config.get(name, {}), allowed)
        if not enabled:
            continue
        collector = factory(host, **kwargs)
        if isinstance(collector, KernelCollector) and not collector.available:
            continue
        out.append(collector)
    return out
