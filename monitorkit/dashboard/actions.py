"""Acknowledge and silence alerts from the dashboard, through monitorkit.rules' own actions.

The rule engine keeps alert state, so the dashboard never writes the ``alerts`` tables itself:
it calls ``monitorkit.rules.actions`` (which goes through the owner's control endpoint when
one runs). ``AlertActions`` is the small interface the alerts panel needs; tests substitute it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from monitorkit.dashboard.errors import AlertActionError
from monitorkit.dashboard.records import AlertRow
from monitorkit.errors import MonitorkitError


class AlertActions(Protocol):
    """What the alerts panel can do to an alert."""

    def acknowledge(self, alert: AlertRow, *, by: str, comment: str) -> None:
        """Record that ``by`` is handling ``alert``."""
        ...

    def silence(self, alert: AlertRow, *, duration: timedelta, by: str, comment: str) -> int:
        """Silence alerts with ``alert``'s labels for ``duration``; return the silence id."""
        ...


def silence_matchers(alert: AlertRow) -> list[str]:
    """Return matchers that select exactly ``alert``'s label set (``alertname`` included)."""
    labels = {"alertname": alert.rule, **dict(alert.labels)}
    return [f'{k}="{v}"' for k, v in sorted(labels.items()) if '"' not in v]


class RulesActions:
    """Alert actions on database ``db`` through ``monitorkit.rules.actions`` (the owner's control routes)."""

    def __init__(self, db: str | Path, settings: Any = None) -> None:
        self.db = Path(db)
        self.settings = settings

    def acknowledge(self, alert: AlertRow, *, by: str, comment: str) -> None:
        """Acknowledge ``alert`` as ``by``."""
        from monitorkit.rules.actions import ack_alert

        try:
            ack_alert(self.db, alert.id, by=by, comment=comment, settings=self.settings)
        except MonitorkitError as exc:
            raise AlertActionError(f"could not acknowledge alert {alert.id}: {exc}") from exc

    def silence(self, alert: AlertRow, *, duration: timedelta, by: str, comment: str) -> int:
        """Silence ``alert``'s label set for ``duration``; return the silence id."""
        from monitorkit.rules.actions import add_silence

        try:
            answer = add_silence(self.db, silence_matchers(alert), duration=duration, by=by, comment=comment,
                                 settings=self.settings)
        except MonitorkitError as exc:
            raise AlertActionError(f"could not silence alert {alert.id}: {exc}") from exc
        return int(answer.get("id", 0))
