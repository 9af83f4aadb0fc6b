"""Shared pieces of the rule and alert tests: rule files, settings, samples, clocks (receivers: receivers.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from store_helpers import isolated_settings

from monitorkit.config import Settings
from monitorkit.rules.engine import Engine
from monitorkit.samples import Sample
from monitorkit.store import Store

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)

# A rule that fires on the last value of `trigger` above 50 within the last minute.
TRIGGER_SQL = """
SELECT host, labels['key'] AS key, last AS value
FROM gauge_window('trigger', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE last > 50
"""


def write_rule(folder: Path, name: str, sql: str = TRIGGER_SQL, **header: str) -> Path:
    """Write ``<folder>/<name>.sql`` with a header (``for_`` stands for ``for``) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = {"name": name, "kind": "resource", "severity": "warning", **header}
    if "for_" in fields:
        fields["for"] = fields.pop("for_")
    lines = [f"-- {k}: {v}" for k, v in fields.items()]
    path = folder / f"{name}.sql"
    path.write_text("\n".join(lines) + "\n" + sql.strip() + "\n")
    return path


def rule_settings(rules_dir: Path, *, defaults: bool = False, alerting: dict[str, Any] | None = None,
                  **overrides: Any) -> Settings:
    """Return isolated settings loading rules from ``rules_dir`` (and the shipped ones if ``defaults``)."""
    values: dict[str, Any] = {"rules.dirs": [str(rules_dir)], "rules.defaults": defaults, "rules.poll": "0s"}
    for key, value in (alerting or {}).items():
        values[f"alerting.{key}"] = value
    values.update(overrides)
    return isolated_settings(**values)


def trigger(at: datetime, value: float, key: str = "a", host: str = "h1") -> Sample:
    """Return a `trigger` sample."""
    return Sample(at, "trigger", {"key": key}, value, host)


def series(name: str, start: datetime, values: Iterable[float], step: float = 10.0,
           labels: dict[str, str] | None = None, host: str = "h1") -> list[Sample]:
    """Return samples of one series from ``start``, one every ``step`` seconds."""
    return [Sample(start + timedelta(seconds=step * i), name, labels or {}, float(v), host)
            for i, v in enumerate(values)]


def events(store: Store, rule: str | None = None) -> list[tuple[Any, ...]]:
    """Return (alert_id, event, state, labels) of every state transition, in order (no notifications)."""
    where = "AND rule = ?" if rule else ""
    return store.query(
        "SELECT alert_id, event, state, labels FROM alert_events "
        f"WHERE event IN ('pending', 'firing', 'resolved', 'inactive') {where} ORDER BY time, rowid",
        [rule] if rule else None)


class FakeClock:
    """A monotonic clock and a wall clock that move only when told: ``Engine(..., clock=c.monotonic, now=c.utcnow)``."""

    def __init__(self, start: datetime = T0) -> None:
        self.wall = start
        self.mono = 1000.0

    def monotonic(self) -> float:
        """Return the monotonic seconds."""
        return self.mono

    def utcnow(self) -> datetime:
        """Return the wall-clock time."""
        return self.wall

    def advance(self, seconds: float) -> None:
        """Move both clocks ``seconds`` forward."""
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@contextmanager
def engine_for(store: Store, settings: Settings | None = None, **kwargs: Any) -> Iterator[Engine]:
    """Start an Engine on ``store`` and close it afterwards."""
    engine = Engine(store, settings or store.settings, **kwargs)
    engine.start()
    try:
        yield engine
    finally:
        engine.close()


def webhook_alerting(url: str, fmt: str = "json", **route: Any) -> dict[str, Any]:
    """Return an [alerting] section sending everything at once to one webhook."""
    return {
        "receiver": "hook", "group_wait": "0s", "group_interval": "0s", "repeat_interval": "4h",
        "receivers": [{"name": "hook", "channels": [{"type": "webhook", "url": url, "format": fmt}]}],
        "retry_backoff": "0.05s", "retry_attempts": 3, "timeout": "2s", **route,
    }
