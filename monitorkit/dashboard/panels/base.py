"""What every panel shares: the per-view context, the PanelView base, and the clock text of a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import panel as pn

from monitorkit.dashboard.actions import AlertActions
from monitorkit.dashboard.charts import Key, TimeChart
from monitorkit.dashboard.console import SqlConsole
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PANEL_KINDS, PanelSpec
from monitorkit.dashboard.records import Delta, Points, SeriesInfo

HEADER = 40  # pixels the card header takes from a panel's height


@dataclass
class PanelContext:
    """What panels share within one view: the feed, actions, the console and a way to tell the user."""

    feed: Feed
    actions: AlertActions | None = None
    console: SqlConsole | None = None
    tick_ms: float = 1000.0
    user: Callable[[], str] = lambda: "dashboard"
    notify: Callable[[str], None] = lambda message: None
    host: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class PanelView:
    """One panel in one view: its body, its charts, and how it takes history and deltas."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext, charts: Iterable[TimeChart] = (), body: Any = None) -> None:
        self.spec = spec
        self.ctx = ctx
        self.kind = spec.kind
        self.title = PANEL_KINDS[spec.kind]
        self.charts = list(charts)
        self.body = body if body is not None else pn.Column(*(c.view for c in self.charts), sizing_mode="stretch_width")
        self.set_height(spec.height)

    def configure(self, spec: PanelSpec) -> None:
        """Take a new spec's options (sizes are the card's)."""
        self.spec = spec

    def set_height(self, height: int) -> None:
        """Give the panel ``height`` pixels (the charts share what the header leaves)."""
        if self.charts:
            each = max(140, (height - HEADER) // len(self.charts))
            for chart in self.charts:
                chart.set_height(each)

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        """Add the lines of any new series this panel draws."""
        for chart in self.charts:
            for key, trace, info in chart.keys_for(series, host):
                chart.add(key, trace, info)

    def history_keys(self) -> set[Key]:
        """Return the (series, kind) keys whose history the panel shows."""
        return {key for chart in self.charts for key in chart.lines}

    def reset(self, history: Mapping[Key, Points], rng: TimeRange) -> None:
        """Show range ``rng`` from ``history``."""
        for chart in self.charts:
            chart.reset(history, rng, self.ctx.tick_ms)

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        """Take one delta; return how many points were streamed."""
        return sum(chart.apply(delta, rng, self.ctx.tick_ms) for chart in self.charts)

    def clear(self) -> None:
        """Forget every line (the host filter changed)."""
        for chart in self.charts:
            chart.clear()

    @property
    def points(self) -> int:
        """Return how many points the panel's charts hold."""
        return sum(chart.points for chart in self.charts)


def clock_text(ms: float | None) -> str:
    """Return epoch milliseconds as ``2026-12-01 10:00:00`` (UTC), or "" for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
