"""The dashboard view (one per browser session or notebook cell) and the objects every view shares.

``DashboardView`` holds the range picker, the host filter, the status line, the layout
toolbar and the grid of panels; ``apply(delta)`` streams one feed delta into all of them.
``AppContext`` is what a server (or a notebook dashboard) shares across its views.
"""

from __future__ import annotations

import html
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import panel as pn
from bokeh.core.property.validation import validate
from panel.io import hold

from monitorkit.dashboard import layouts as lay
from monitorkit.dashboard.actions import AlertActions
from monitorkit.dashboard.console import SqlConsole
from monitorkit.dashboard.editor import Card, LayoutToolbar
from monitorkit.dashboard.errors import DashboardError
from monitorkit.dashboard.feed import Feed, Snapshot
from monitorkit.dashboard.grid import CardGrid
from monitorkit.dashboard.history import TimeRange, load_history, resolve
from monitorkit.dashboard.layoutstore import LayoutBackend
from monitorkit.dashboard.panels import PanelContext, PanelView, build_panel
from monitorkit.dashboard.reader import Reader
from monitorkit.dashboard.records import Delta, Points, SeriesInfo
from monitorkit.dashboard.style import html_pane
from monitorkit.errors import MonitorkitError
from monitorkit.samples import HOST


@contextmanager
def batched() -> Iterator[None]:
    """Send what the block changes as one update, the model graph recomputed once (not per added line)."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        yield  # a notebook or a test: nothing is sent
        return
    with hold(doc, policy="combine", freeze=True):
        yield


def _datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


@dataclass
class AppContext:
    """What every view of one dashboard shares: the feed, the reader, layouts, alert actions, the console."""

    feed: Feed
    reader: Reader
    layouts: LayoutBackend
    actions: AlertActions | None = None
    console: SqlConsole | None = None
    tick: float = 1.0
    default_host: str = HOST
    owner_health: Callable[[], tuple[str, list[Any]]] | None = None  # the owner's HealthService.snapshot, when served


LIVE_VIEWS: weakref.WeakSet[DashboardView] = weakref.WeakSet()  # /metrics reports it: closed tabs must not pile up


class DashboardView:
    """One dashboard on screen: ``view.start(snapshot)`` then ``view.apply(delta)`` per feed poll."""

    def __init__(self, app: AppContext, layout: lay.Layout, *, user: Callable[[], str] = lambda: "dashboard") -> None:
        LIVE_VIEWS.add(self)
        self.app = app
        self.layout_name = layout.name
        # The fleet overview needs a lake's hosts: a single owner's menu does not offer it.
        self.panel_kinds = {k: v for k, v in lay.PANEL_KINDS.items() if k != "fleet" or getattr(app.feed, "fleet", None)}
        self.user = user
        self.series: dict[int, SeriesInfo] = {}
        self.cards: list[Card] = []
        self.rng: TimeRange = resolve(layout.range, tick=app.tick)
        self.points_streamed = 0
        self.deltas = 0
        self.last_seq = -1
        self._loading = False
        self.ctx = PanelContext(app.feed, app.actions, app.console, app.tick * 1000.0, user, self.notify,
                                host=app.default_host, show_query=self.show_query, rng=self.rng)
        self.ctx.extra["load"] = self.history_for
        self.range = pn.widgets.Select(label="Range", options=[*lay.RANGES, "absolute"], value=layout.range, width=100,
                                       css_classes=["mk-range"])
        self.absolute = pn.widgets.DatetimeRangePicker(label="From – to (UTC)", visible=False, width=300)
        self.live = pn.widgets.Toggle(label="", value=layout.live, width=96, css_classes=["mk-live"], margin=(22, 5, 5, 5))
        self._live_look(layout.live)
        self.host = pn.widgets.Select(label="Host", options=[app.default_host], value=app.default_host, width=150,
                                      css_classes=["mk-host"])
        self.status = html_pane(self._status_html(None), css_classes=["mk-status"], width=300)
        self.notice = html_pane("", width=360)
        self.range.param.watch(self._on_range, "value")
        self.absolute.param.watch(lambda e: self.reload(), "value")
        self.live.param.watch(self._on_live, "value")
        self.host.param.watch(self._on_host, "value")
        self.grid = CardGrid()
        self.toolbar = LayoutToolbar(self, self.grid)
        # A FlexBox wraps at any width: a Row of fixed widths made the page wider than a 1440-pixel screen.
        header = pn.FlexBox(html_pane("<h2 style='margin:6px 10px 0 0'>monitorkit</h2>"), self.range, self.absolute,
                            self.live, self.host, self.toolbar.toggle, self.status, self.notice, flex_wrap="wrap",
                            align_items="flex-end", sizing_mode="stretch_width")
        self.root = pn.Column(header, self.toolbar.panels, self.grid.view, sizing_mode="stretch_width")
        self._build(layout)

    # -- panels and layout ------------------------------------------------------------------

    def _build(self, layout: lay.Layout) -> list[PanelView]:
        # Panels of a kind already on screen are kept (resized, reconfigured): the browser then
        # re-renders only what is new, and their data needs no reload.
        pool: dict[str, list[Card]] = {}
        for card in self.cards:
            pool.setdefault(card.panel.kind, []).append(card)
        cards, new = [], []
        for spec in layout.panels:
            kept = pool.get(spec.kind)
            if kept:
                card = kept.pop(0)
                card.configure(spec)
            else:
                card = Card(build_panel(spec, self.ctx))
                card.panel.on_series(self.series.values(), self.host.value)
                new.append(card.panel)
            cards.append(card)
        self.cards = cards
        self.grid.show(self.cards)
        self.toolbar.targets()
        return new

    def current_layout(self, name: str | None = None) -> lay.Layout:
        """Return the layout on screen (panels in order with their sizes, range and live mode)."""
        rng = self.range.value if self.range.value in lay.RANGES else "15m"
        return lay.Layout(lay.check_name(name or self.layout_name), tuple(c.spec() for c in self.cards), rng,
                          bool(self.live.value))

    def set_layout(self, layout: lay.Layout) -> None:
        """Replace the panels with ``layout``'s and reload their data."""
        self.layout_name = layout.name
        changed = (self.range.value, self.live.value) != (layout.range, layout.live)
        self._loading = True
        try:
            self.range.value = layout.range
            self.live.value = layout.live
        finally:
            self._loading = False
        new = self._build(layout)
        if changed:
            self.reload()
        elif new:
            self._reset(new)

    def add_panel(self, spec: lay.PanelSpec) -> None:
        """Add a panel at the end of the grid."""
        card = Card(build_panel(spec, self.ctx))
        card.panel.on_series(self.series.values(), self.host.value)
        self.cards.append(card)
        self.grid.show(self.cards)
        self._reset([card.panel])

    def card_action(self, card: Card, action: str) -> None:
        """Move (left, right), resize (wider, narrower, taller, shorter) or remove a panel."""
        self.grid.act(card, action)

    @property
    def layouts(self) -> LayoutBackend:
        """Return where this view's layouts are saved (what the layout toolbar needs)."""
        return self.app.layouts

    @property
    def panels(self) -> list[PanelView]:
        """Return the panels in grid order."""
        return [c.panel for c in self.cards]

    # -- data -----------------------------------------------------------------------------

    def start(self, snapshot: Snapshot) -> None:
        """Fill the view from the feed's cache (and one history query when the range is longer)."""
        self.last_seq = snapshot.seq
        self._add_series(snapshot.series.values())
        self.reload(snapshot.history)

    def _add_series(self, infos: Iterable[SeriesInfo]) -> None:
        new = [i for i in infos if i.series_id not in self.series]
        if not new:
            return
        for info in new:
            self.series[info.series_id] = info
        hosts = Counter(i.host for i in self.series.values())
        options = sorted(hosts)
        if options != list(self.host.options):
            current = self.host.value if self.host.value in hosts else (
                self.app.default_host if self.app.default_host in hosts else hosts.most_common(1)[0][0])
            self._loading = True
            try:
                self.host.options = options
                self.host.value = current
            finally:
                self._loading = False
            self.ctx.host = self.host.value
        for panel in self.panels:
            panel.on_series(new, self.host.value)

    def _resolve(self) -> TimeRange:
        if self.range.value == "absolute":
            start, end = self.absolute.value or (None, None)
            return resolve("absolute", start=_datetime(start), end=_datetime(end), tick=self.app.tick)
        rng = resolve(self.range.value, tick=self.app.tick)
        return rng if self.live.value else rng._replace(live=False)

    def reload(self, cached: dict[tuple[int, str], Points] | None = None) -> None:
        """Reload every panel for the chosen range: from the feed cache when it covers it, else one query."""
        if not self._loading:
            self._reset(self.panels, cached)

    def _reset(self, panels: list[PanelView], cached: dict[tuple[int, str], Points] | None = None) -> None:
        try:
            rng = self._resolve()
        except DashboardError as exc:
            self.notify(str(exc))
            return
        self.rng = rng
        keys = set().union(*(p.history_keys() for p in panels)) if panels else set()
        history = self.history_for(keys, rng, cached)
        self.ctx.rng = rng
        for panel in panels:
            panel.reset(history, rng)
        end = max(rng.end_ms, self.app.feed.newest_ms or 0) if rng.live else rng.end_ms
        self.ctx.axes.show(end - rng.span * 1000, end)
        self.status.object = self._status_html(self.app.feed.newest_ms)

    def history_for(self, keys: set[tuple[int, str]], rng: TimeRange | None = None,
                    cached: dict[tuple[int, str], Points] | None = None) -> dict[tuple[int, str], Points]:
        """Return the history of ``keys`` over ``rng``: from the feed's cache when it covers them, else one query."""
        rng = rng or self.rng
        feed = self.app.feed
        history: dict[tuple[int, str], Points] = {}
        wanted = set(keys)
        if rng.live and rng.span * 1000 <= feed.window_ms:
            history = dict(cached) if cached is not None else feed.recent(wanted)
            series = feed.series
            wanted = {k for k in wanted if k not in history and (k[0] not in series or series[k[0]].name not in feed.cached)}
        if wanted:
            try:
                history.update(load_history(self.app.reader, rng, [k[0] for k in wanted if k[1] == "v"],
                                            [k[0] for k in wanted if k[1] == "r"]))
            except MonitorkitError as exc:
                self.notify(f"could not load history: {exc}")
        return history

    def apply(self, delta: Delta) -> None:
        """Stream one feed delta into every panel (called on the session's own thread)."""
        if delta.seq <= self.last_seq:
            return
        self.last_seq = delta.seq
        self.deltas += 1
        if delta.new_series:
            self._add_series(delta.new_series)
        rng = self.rng
        # Our values are already typed right: Bokeh's per-assignment property checks were a fifth of the cost.
        with validate(False):
            self.points_streamed += sum(panel.apply(delta, rng) for panel in self.panels)
            if rng.live:
                self.ctx.axes.slide(max(delta.polled_ms, delta.newest_ms or 0), rng.span * 1000)
            # A delta without samples (between a hub's lake batches) keeps the newest sample already seen.
            self.status.object = self._status_html(delta.newest_ms or self.app.feed.newest_ms, delta.polled_ms)

    def poll(self) -> None:
        """Poll the feed and apply the delta (the notebook's periodic callback)."""
        self.apply(self.app.feed.poll())

    # -- header ---------------------------------------------------------------------------

    def _on_range(self, event: Any) -> None:
        self.absolute.visible = event.new == "absolute"
        if event.new == "absolute" and self.absolute.value is None:
            end = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            self.absolute.value = (end.replace(hour=0, minute=0, second=0), end)
            return
        self.reload()

    def _on_live(self, event: Any) -> None:
        self._live_look(bool(event.new))
        self.reload()

    def _live_look(self, on: bool) -> None:
        # On: a green "Live" with a dot; off: a grey "Paused": the two states never look alike.
        self.live.label = "\u25cf Live" if on else "\u275a\u275a Paused"
        self.live.color = "success" if on else "light"

    def show_query(self, sql: str) -> None:
        """Open ``sql`` in the view's SQL console (adding one at the end when the layout has none) and run it."""
        from monitorkit.dashboard.panels import SqlPanel

        panel = next((p for p in self.panels if isinstance(p, SqlPanel)), None)
        if panel is None:
            self.add_panel(lay.PanelSpec("sql", 12, 520, {"query": sql}))
            panel = next(p for p in self.panels if isinstance(p, SqlPanel))
        panel.open(sql)
        self.notify_info("The chart's query is in the SQL console (at the end of the page).")

    def _on_host(self, event: Any) -> None:
        if self._loading:
            return
        self.ctx.host = event.new
        with batched():
            for panel in self.panels:
                panel.clear()
                panel.on_series(self.series.values(), event.new)
            self.reload()

    def notify(self, message: str) -> None:
        """Show a short message in the header."""
        self.notice.object = f"<span class='mk-error'>{html.escape(message)}</span>"

    def notify_info(self, message: str) -> None:
        """Show a short note (not an error) in the header."""
        self.notice.object = f"<span class='mk-note'>{html.escape(message)}</span>"

    def _status_html(self, newest_ms: float | None, polled_ms: float | None = None) -> str:
        mode = "live" if self.rng.live else "paused"
        when = datetime.fromtimestamp(newest_ms / 1000, UTC).strftime("%H:%M:%S") if newest_ms else "no data yet"
        points = sum(p.points for p in self.panels)
        return (f"<div id='mk-status' data-seq='{self.last_seq}' data-newest='{newest_ms or 0:.0f}' "
                f"data-polled='{polled_ms or 0:.0f}' data-points='{points}' data-mode='{mode}'>"
                f"{mode} · {self.rng.tier} · newest sample {when} UTC · {points} points</div>")
