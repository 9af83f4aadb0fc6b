"""The fleet overview panel: one row per host of a lake with its health and key figures.

The rows come from a ``FleetSource`` the hub's feed carries (``feed.fleet``, refreshed by the
hub, never by a session); on a dashboard without one (a single owner) the panel says where
the fleet is shown.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import panel as pn

from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView
from monitorkit.dashboard.records import Delta
from monitorkit.dashboard.style import html_pane

STATUS_COLORS = {"ok": "#12b76a", "degraded": "#f79009", "failing": "#d92d20"}
NO_FLEET = ("The fleet overview lists every host of a lake: it is shown on the hub's dashboard "
            "(<code>monitorkit hub --serve</code>).")


class FleetRow(NamedTuple):
    """One host of the fleet: its health, latest key figures and how far its data reached the lake."""

    host: str
    status: str
    reason: str
    cpu_percent: float | None
    memory_percent: float | None
    disk_used_percent: float | None
    last_sample: datetime | None
    shipped_through: datetime | None
    last_ship: datetime | None
    ship_lag_s: float | None
    firing: int = 0


class FleetSource(Protocol):
    """Where the panel reads its rows: ``version`` changes whenever ``rows()`` or ``error`` do."""

    version: int
    error: str | None

    def rows(self) -> Sequence[FleetRow]:
        """Return the hosts, the worst first."""
        ...


def fleet_source(ctx: PanelContext) -> FleetSource | None:
    """Return the fleet rows' source of this dashboard's feed, or None on a dashboard without a fleet."""
    source: Any = getattr(ctx.feed, "fleet", None)
    return source if source is not None and hasattr(source, "rows") else None


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} %"


def _clock(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def lag_text(seconds: float | None) -> str:
    """Return a ship lag as ``12 s``, ``4.5 min`` or ``2.0 h``."""
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def fleet_html(rows: Sequence[FleetRow], error: str | None = None) -> str:
    """Return the overview table; every text from the lake or the rules is escaped."""
    counts = {s: sum(1 for r in rows if r.status == s) for s in STATUS_COLORS}
    summary = " · ".join(f"{n} {html.escape(s)}" for s, n in counts.items() if n) or "no host has shipped yet"
    body = "".join(
        f"<tr data-host='{html.escape(r.host, quote=True)}' data-status='{html.escape(r.status, quote=True)}'>"
        f"<td><span class='mk-dot' style='background:{STATUS_COLORS.get(r.status, '#98a2b3')}'></span> "
        f"{html.escape(r.host)}</td><td>{html.escape(r.status)}</td><td>{html.escape(r.reason)}</td>"
        f"<td>{_percent(r.cpu_percent)}</td><td>{_percent(r.memory_percent)}</td><td>{_percent(r.disk_used_percent)}</td>"
        f"<td>{_clock(r.last_sample)}</td><td>{_clock(r.shipped_through)}</td><td>{lag_text(r.ship_lag_s)}</td></tr>"
        for r in rows
    )
    problem = f"<div class='mk-error'>{html.escape(error)}</div>" if error else ""
    return (f"<div id='mk-fleet' data-hosts='{len(rows)}'>{problem}<b>{len(rows)} hosts</b>: {summary}"
            "<table class='mk-table'><tr><th>host</th><th>status</th><th>reason</th><th>CPU</th><th>memory</th>"
            "<th>disk (fullest)</th><th>last sample (UTC)</th><th>in the lake through</th><th>ship lag</th></tr>"
            f"{body}</table></div>")


class FleetPanel(PanelView):
    """Every host of the fleet in one table; redrawn when the hub's overview changes."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.source = fleet_source(ctx)
        self.table = html_pane(NO_FLEET if self.source is None else "", sizing_mode="stretch_width")
        self._version: int | None = None
        body = pn.Column(self.table, sizing_mode="stretch_width", scroll=True, margin=0)
        super().__init__(spec, ctx, (), body)
        self.render()

    def set_height(self, height: int, charts_height: int | None = None) -> None:
        self.body.height = max(120, height - HEADER)

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        self.render()
        return 0

    def render(self) -> None:
        """Redraw the table if the overview changed since the last draw."""
        if self.source is None or self.source.version == self._version:
            return
        self._version = self.source.version
        self.table.object = fleet_html(self.source.rows(), self.source.error)
