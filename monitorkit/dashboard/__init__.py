"""Panel dashboards over the store: served by ``monitorkit serve`` or shown in a notebook.

``monitorkit.dashboard.dashboard(db="data/monitorkit.duckdb", panels=["cpu", "memory", "alerts"])``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitorkit.dashboard.errors import (
    AlertActionError,
    ConsoleRefusedError,
    ConsoleTimeoutError,
    DashboardError,
    LayoutError,
    LayoutNotFoundError,
)
from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, PANEL_KINDS, RANGES, Layout, PanelSpec

if TYPE_CHECKING:
    from monitorkit.dashboard.notebook import Dashboard

__all__ = [
    "DEFAULT_LAYOUT",
    "PANEL_KINDS",
    "RANGES",
    "AlertActionError",
    "ConsoleRefusedError",
    "ConsoleTimeoutError",
    "DashboardError",
    "Layout",
    "LayoutError",
    "LayoutNotFoundError",
    "PanelSpec",
    "dashboard",
]


def dashboard(*args: Any, **kwargs: Any) -> Dashboard:
    """Return a live Panel dashboard (see ``monitorkit.dashboard.notebook.dashboard``); imports Panel on first use."""
    from monitorkit.dashboard.notebook import dashboard as build

    return build(*args, **kwargs)
