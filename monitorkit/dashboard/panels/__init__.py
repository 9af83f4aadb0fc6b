"""The dashboard's panels, one module per kind, and the ``PANELS`` table that builds them.

``build_panel(PanelSpec("cpu"), ctx)`` returns the PanelView of a kind (see ``layouts.PANEL_KINDS``);
every panel class takes ``(spec, ctx)``. A layout may place any kind ``PANELS`` lists.
"""

from __future__ import annotations

from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.alerts import AlertsPanel
from monitorkit.dashboard.panels.app import APP_CHARTS, AppPanel, LatencyChart, histogram_quantile
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView, clock_text
from monitorkit.dashboard.panels.explore import ExplorePanel
from monitorkit.dashboard.panels.fleet import FleetPanel
from monitorkit.dashboard.panels.health import HealthPanel
from monitorkit.dashboard.panels.host import CHARTS, SPLIT_BY, ChartsPanel, ChartSpec, SplitChartsPanel
from monitorkit.dashboard.panels.processes import ProcessesPanel
from monitorkit.dashboard.panels.sql import SqlPanel

PANELS: dict[str, type[PanelView]] = {
    **dict.fromkeys(CHARTS, ChartsPanel),
    **dict.fromkeys(SPLIT_BY, SplitChartsPanel),
    "processes": ProcessesPanel,
    "app": AppPanel,
    "alerts": AlertsPanel,
    "health": HealthPanel,
    "fleet": FleetPanel,
    "explore": ExplorePanel,
    "sql": SqlPanel,
}

__all__ = [
    "APP_CHARTS", "CHARTS", "HEADER", "PANELS", "AlertsPanel", "AppPanel", "ChartSpec", "ChartsPanel", "ExplorePanel",
    "HealthPanel",
    "LatencyChart", "PanelContext", "PanelView", "ProcessesPanel", "SplitChartsPanel", "SqlPanel", "build_panel",
    "cached_metrics", "clock_text", "histogram_quantile",
]


def build_panel(spec: PanelSpec, ctx: PanelContext) -> PanelView:
    """Return the PanelView of ``spec.kind``."""
    return PANELS[spec.kind](spec, ctx)


def cached_metrics() -> set[str]:
    """Return every metric a built-in chart draws: the feed keeps their recent points for new sessions."""
    from monitorkit.dashboard.panels.processes import CHARTED

    traces = [t for specs in (*CHARTS.values(), APP_CHARTS) for c in specs for t in c.traces]
    names = {t.metric for t in traces} | {t.over for t in traces if t.over} | set(CHARTED)
    return names | {f"{LatencyChart.METRIC}_bucket", "tool_run_duration_seconds_bucket"}
