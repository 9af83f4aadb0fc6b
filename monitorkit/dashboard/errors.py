"""Typed errors of the dashboard: layouts, the SQL console, login and the server."""

from __future__ import annotations

from monitorkit.errors import MonitorkitError, QueryError


class DashboardError(MonitorkitError):
    """The dashboard server cannot start or a dashboard action failed."""


class LayoutError(DashboardError, ValueError):
    """A layout spec is malformed (unknown panel kind, bad size, bad JSON)."""


class LayoutNotFoundError(LayoutError, KeyError):
    """No layout is saved under that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such layout"


class ConsoleRefusedError(QueryError):
    """The SQL console refused a statement (a write, a file read, a setting) before running it."""


class ConsoleTimeoutError(QueryError):
    """A SQL console query ran past its time limit and was interrupted."""


class AlertActionError(DashboardError):
    """Acknowledging or silencing an alert failed or is not available."""
