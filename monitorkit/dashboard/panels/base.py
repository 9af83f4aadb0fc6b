"""What every panel shares: the per-view context, the PanelView base, and the clock text of a time."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import panel as pn

from monitorkit.dashboard.actions import AlertActions
from monitorkit.dashboard.charts import Key, SharedAxes, TimeChart
from monitorkit.dashboard.console import SqlConsole
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PANEL_KINDS, PanelSpec
from monitorkit.dashboard.records import Delta, Points, SeriesInfo
from monitorkit.dashboard.style import html_pane

HEADER = 40  # pixels the card header takes from a panel's height
CHART_HEADER = 22  # a chart's title (what it draws and from which metrics)
LEGEND = 22
CHART_WIDTH = 380  # pixels a chart likes: the panel puts as many side by side as its width holds
CHART_MIN_WIDTH = 230  # narrower than this, charts go on more rows (and the panel scrolls)
CHART_MIN_ROW = 190  # a chart's title, plot and legend: below this the panel scrolls instead of squeezing
# A scrolling body keeps its scrollbar's room: a bar that comes and goes changes the width, which rewraps
# the charts, which changes the height... (the browser would re-lay the page out forever).
STABLE = {"scrollbar-gutter": "stable"}
PAGE_WIDTH = 1440  # the width the grid's twelfths are guessed from (the browser wraps by min-width anyway)


@dataclass
class PanelContext:
    """What panels share within one view: the feed, actions, the console, shared axes and a way to tell the user."""

    feed: Feed
    actions: AlertActions | None = None
    console: SqlConsole | None = None
    tick_ms: float = 1000.0
    user: Callable[[], str] = lambda: "dashboard"
    notify: Callable[[str], None] = lambda message: None
    host: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    axes: SharedAxes = field(default_factory=SharedAxes)
    show_query: Callable[[str], None] = lambda sql: None
    rng: TimeRange | None = None

    def cpus(self, host: str) -> float | None:
        """Return how many CPUs ``host`` has: its per-core series, else its latest cpu_count."""
        infos = list(self.feed.series.items())
        cores = sum(1 for _, i in infos if i.host == host and i.name == "cpu_percent" and "cpu" in i.labels)
        if cores:
            return float(cores)
        latest = self.feed.latest
        return next((latest[sid][1] for sid, i in infos if i.host == host and i.name == "cpu_count" and sid in latest),
                    None)


class PanelView:
    """One panel in one view: its body, its charts, and how it takes history and deltas."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext, charts: Iterable[TimeChart] = (), body: Any = None,
                 queries: Sequence[Callable[[str | None, TimeRange | None], str] | None] = ()) -> None:
        self.spec = spec
        self.ctx = ctx
        self.kind = spec.kind
        self.title = PANEL_KINDS.get(spec.kind, spec.kind)
        self.charts = list(charts)
        self.note: Any = None  # the source line sql_menu makes
        self.queries = [*queries, *[None] * (len(self.charts) - len(queries))]
        self.boxes = [chart_box(c) for c in self.charts]
        self.grid = pn.FlexBox(*self.boxes, flex_wrap="wrap", sizing_mode="stretch_width", margin=0)
        self.menu = sql_menu(self, self.queries) if self.charts else None
        top = [self.menu] if self.menu is not None else []
        self.body = body if body is not None else pn.Column(*top, self.grid, sizing_mode="stretch_width", margin=0,
                                                             scroll="y-auto", styles=STABLE)
        self.set_height(spec.height)

    def configure(self, spec: PanelSpec) -> None:
        """Take a new spec's options (sizes are the card's)."""
        self.spec = spec
        self.set_height(spec.height)

    def layout(self, height: int, n: int | None = None) -> tuple[int, int]:
        """Return (columns, pixels per row) for ``n`` charts in ``height`` pixels at the panel's width."""
        n = len(self.charts) if n is None else n
        width = self.spec.width * PAGE_WIDTH / 12
        widest = max(1, min(n, int(width // CHART_MIN_WIDTH)))
        liked = max(1, min(n, round(width / CHART_WIDTH)))
        fit = max(1, height // CHART_MIN_ROW)  # rows that fit without scrolling
        cols = min(widest, max(liked, math.ceil(n / fit)))
        rows = math.ceil(n / cols) if n else 1
        return cols, max(CHART_MIN_ROW, height // rows)

    def set_height(self, height: int) -> None:
        """Give the panel ``height`` pixels: the charts share it by rows, never below a readable plot (it scrolls)."""
        if self.charts:
            self.size_charts(height - HEADER - 26)
            self.body.height = max(60, height - HEADER)

    def size_charts(self, available: int) -> None:
        """Share ``available`` pixels among the charts' rows (at the panel's width)."""
        cols, each = self.layout(available)
        wide = self.spec.width * PAGE_WIDTH / 12 / cols
        for chart, box in zip(self.charts, self.boxes, strict=True):
            chart.set_height(each - CHART_HEADER - LEGEND - 8)
            ticker = chart.axes.x_ticker_for(wide)
            if chart.figure.xaxis[0].ticker is not ticker:
                chart.figure.xaxis.ticker = ticker
            box.styles = {"flex": f"1 1 calc({100 / cols:.2f}% - 10px)", "min-width": f"{CHART_MIN_WIDTH - 20}px"}

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        """Add the lines of any new series this panel draws."""
        series = list(series)
        for chart in self.charts:
            chart.on_series(series, host)
        self.show_drawn()

    def show_drawn(self) -> None:
        """Show only the charts that have something to draw (a hidden chart costs the browser nothing per tick)."""
        for chart, box in zip(self.charts, self.boxes, strict=False):
            if box.visible != bool(chart.lines):
                box.visible = bool(chart.lines)
        if self.note is not None:
            metrics = sorted({t.metric for c in self.charts for t in c.traces})
            text = source_html(metrics, drawn=any(c.lines for c in self.charts))
            if self.note.object != text:
                self.note.object = text

    def history_keys(self) -> set[Key]:
        """Return the (series, kind) keys whose history the panel shows."""
        return {key for chart in self.charts for key in chart.history_keys()}

    def reset(self, history: Mapping[Key, Points], rng: TimeRange) -> None:
        """Show range ``rng`` from ``history``."""
        for chart in self.charts:
            chart.reset(history, rng, self.ctx.tick_ms, self.ctx.feed.newest_ms)

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        """Take one delta; return how many points were streamed."""
        return sum(chart.apply(delta, rng, self.ctx.tick_ms) for chart in self.charts)

    def clear(self) -> None:
        """Forget every line (the host filter changed)."""
        for chart in self.charts:
            chart.clear()
        self.show_drawn()

    @property
    def points(self) -> int:
        """Return how many points the panel's charts hold."""
        return sum(chart.points for chart in self.charts)


def chart_box(chart: TimeChart, ctx: PanelContext | None = None, query: Any = None) -> Any:
    """Return the chart's view, titled with what it draws and its source metrics (the panel's SQL menu has its query)."""
    metrics = sorted({t.metric for t in chart.traces} | {t.over for t in chart.traces if t.over})
    source = ", ".join(metrics) or getattr(chart, "source_text", "")
    if source:
        shown = source if len(source) <= 44 else source[:41] + "..."
        chart.heading.text = f"{chart.title}  ·  {shown}"
    chart.view.css_classes = ["mk-chart", f"mk-chart-{_slug(chart.title)}"]
    chart.view.margin = (0, 4, 6, 4)
    return chart.view


def sql_menu(panel: PanelView, queries: Sequence[Callable[[str | None, TimeRange | None], str] | None]) -> Any:
    """Return the panel's top line: its source metrics and an "SQL" menu opening any chart's query in the console."""
    items = [(chart.title, str(i)) for i, (chart, q) in enumerate(zip(panel.charts, queries, strict=False)) if q]
    metrics = sorted({t.metric for c in panel.charts for t in c.traces} | {t.over for c in panel.charts for t in c.traces
                                                                            if t.over})
    text = html_pane(source_html(metrics, drawn=True), sizing_mode="stretch_width", height=20, margin=(0, 6))
    panel.note = text
    if not items:
        return text
    menu = pn.widgets.MenuButton(label="SQL", items=items, width=64, height=24, margin=(0, 6, 0, 0),
                                 css_classes=["mk-show-query"])

    def chosen(event: Any) -> None:
        i = int(event.new)
        panel.ctx.show_query(panel.queries[i](panel.ctx.host, panel.ctx.rng))  # type: ignore[misc]

    menu.on_click(chosen)
    return pn.Row(text, menu, sizing_mode="stretch_width", height=26, margin=0)


def source_html(metrics: Sequence[str], drawn: bool) -> str:
    """Return the panel's source line: the metrics it reads, or that none of them is collected here."""
    if not metrics:
        return ""
    listed = html.escape(", ".join(metrics))
    if drawn:
        return f"<div class='mk-chart-head'><span class='mk-source' title='{listed}'>from {listed}</span></div>"
    return f"<div class='mk-chart-head'><span class='mk-empty'>Nothing to draw on this host yet: no {listed}</span></div>"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def clock_text(ms: float | None) -> str:
    """Return epoch milliseconds as ``2026-12-01 10:00:00`` (UTC), or "" for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
