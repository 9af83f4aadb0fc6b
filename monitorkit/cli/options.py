"""Options and helpers every command module shares: --db, --config and the settings they select."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import click

from monitorkit.config import Settings, load_settings, parse_duration
from monitorkit.errors import ConfigError

db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Database file (default: setting store.path, data/monitorkit.duckdb).",
)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Settings file (default: ./monitorkit.toml or $MONITORKIT_CONFIG).",
)


def settings_for(db: str | None, config_path: str | None) -> Settings:
    """Load settings and apply the --db override."""
    return load_settings(config_path).with_overrides({"store.path": db})


def install_stop_handlers(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT set ``stop`` so the owner shuts down cleanly."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def stop_after(duration: float | None, stop: threading.Event) -> None:
    """Set ``stop`` after ``duration`` seconds (none: never)."""
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()


def parse_when(text: str, now: datetime) -> datetime:
    """Read ``2024-05-01T10:00``, ``2024-05-01 10:00:00+02:00``, ``now`` or a duration ago (``6h``)."""
    if text == "now":
        return now
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now - parse_duration(text)
        except ConfigError:
            raise click.BadParameter(
                f"{text!r} is neither a date-time (2024-05-01T10:00) nor a duration ago (6h)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
