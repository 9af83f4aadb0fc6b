"""The grid of panels: cards on a 12-column GridStack that users drag to move and to resize.

GridStack's JavaScript is the copy bundled in Panel's wheel, served by the dashboard (or inlined
in a notebook), never a CDN. Positions are in columns (``x``, 0-11) and rows of ``ROW`` pixels
(``y``); the grid packs cards upwards like GridStack itself, so Python and the browser agree.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import panel as pn
import param
from panel.io.document import unlocked
from panel.layout.gridstack import GridStack

from monitorkit.dashboard.bokehfixes import BOKEH_FIXES_JS
from monitorkit.dashboard.layouts import GRID_COLUMNS, MAX_HEIGHT, MIN_HEIGHT, ROW, PanelSpec
from monitorkit.dashboard.panels.base import PanelView
from monitorkit.dashboard.style import html_pane

GAP = 14  # pixels between cards (each card keeps GAP / 2 of margin inside its grid cell)
WIDTHS = (3, 4, 6, 8, 9, 12)
HEIGHT_STEP = 60
MIN_WIDTH = 2
Box = tuple[int, int, int, int]  # x, y, w, h in columns and rows


class Card:
    """One panel on the grid under its title, with its place: ``x``, ``y`` (rows), width (columns), height (px)."""

    def __init__(self, panel: PanelView) -> None:
        self.panel = panel
        self.width = panel.spec.width
        self.height = panel.spec.height
        self.x, self.y = panel.spec.x, panel.spec.y
        title = html_pane(f"<b>{html.escape(panel.title)}</b>", margin=(4, 8), height=26)
        self.view = pn.Column(title, panel.body, css_classes=["mk-card", f"mk-card-{panel.kind}"], margin=GAP // 2,
                              sizing_mode="stretch_width",
                              styles={"background": "#fff", "border": "1px solid #e4e7ec", "border-radius": "6px",
                                      "overflow": "hidden"})
        self.resize()

    def configure(self, spec: PanelSpec) -> None:
        """Take ``spec``'s place, size and options (a layout being loaded keeps this panel)."""
        self.width, self.height, self.x, self.y = spec.width, spec.height, spec.x, spec.y
        self.panel.configure(spec)
        self.resize()

    def resize(self) -> None:
        """Give the card its height (the grid gives it its width)."""
        self.view.height = self.height - GAP
        self.panel.set_height(self.height - GAP)

    @property
    def rows(self) -> int:
        """Return the card's height in grid rows."""
        return max(1, round(self.height / ROW))

    def spec(self) -> PanelSpec:
        """Return the PanelSpec of the card as it is now (place, size, and the console's query)."""
        current = getattr(self.panel, "current_spec", None)
        base = current() if callable(current) else self.panel.spec
        return base._replace(width=self.width, height=self.height, x=self.x, y=self.y)

    def act(self, action: str) -> bool:
        """Resize the card for a resize action; return whether it was one."""
        if action in ("wider", "narrower"):
            if action == "wider":
                self.width = next((w for w in WIDTHS if w > self.width), GRID_COLUMNS)
            else:
                self.width = next((w for w in reversed(WIDTHS) if w < self.width), WIDTHS[0])
            if self.x is not None:
                self.x = min(self.x, GRID_COLUMNS - self.width)
        elif action in ("taller", "shorter"):
            delta = HEIGHT_STEP if action == "taller" else -HEIGHT_STEP
            self.height = min(MAX_HEIGHT, max(MIN_HEIGHT, self.height + delta))
        else:
            return False
        self.resize()
        return True


def place(sizes: Sequence[tuple[int | None, int | None, int, int]]) -> list[Box]:
    """Return where each ``(x, y, w, h)`` lands: placed ones in (y, x) order, then the rest left to right, all packed up.

    >>> place([(None, None, 6, 16), (None, None, 6, 16), (None, None, 12, 18)])
    [(0, 0, 6, 16), (6, 0, 6, 16), (0, 16, 12, 18)]
    """
    tops = [0] * GRID_COLUMNS  # the lowest occupied row + 1 of each column
    out: list[Box | None] = [None] * len(sizes)
    placed = sorted((i for i, s in enumerate(sizes) if s[0] is not None), key=lambda i: (sizes[i][1] or 0, sizes[i][0]))
    flowing = [i for i, s in enumerate(sizes) if s[0] is None]
    cursor = 0
    for i in placed + flowing:
        x, _, w, h = sizes[i]
        w = min(max(1, w), GRID_COLUMNS)
        if x is None:
            if cursor + w > GRID_COLUMNS:
                cursor = 0
            x = cursor
            cursor += w
        x = min(max(0, x), GRID_COLUMNS - w)
        y = max(tops[x:x + w])  # as far up as it goes: GridStack packs the same way (float: false)
        tops[x:x + w] = [y + h] * w
        out[i] = (x, y, w, h)
    return [box for box in out if box is not None]


def current(report: Sequence[dict[str, Any]], generation: int) -> bool:
    """Tell whether a browser's report is about arrangement ``generation`` (not one Python has replaced since)."""
    return bool(report) and all(item.get("gen", generation) == generation for item in report)


class PanelGrid(GridStack):
    """Panel's GridStack with fixed rows of ``row_height`` pixels and a highlighted ``selected`` card."""

    row_height = param.Integer(default=ROW, doc="Pixels per grid row.")
    selected = param.String(default="", doc="The data-id of the highlighted card ('' for none).")
    places = param.Dict(default={}, doc="Where each card goes, by data-id: [x, y, w, h] in cells.")
    generation = param.Integer(default=0, doc="Counts the arrangements Python sent; reports name the one they saw.")

    _template = f"""
    <div id="grid" class="grid-stack" style="width: 100%">
    {{% for key, obj in objects.items() %}}
      <div data-id="{{{{ id(obj) }}}}" class="grid-stack-item" gs-x="{{{{ key[1] }}}}" gs-y="{{{{ key[0] }}}}"
           gs-w="{{{{ key[3] - key[1] }}}}" gs-h="{{{{ key[2] - key[0] }}}}" gs-min-w="{MIN_WIDTH}"
           gs-min-h="{MIN_HEIGHT // ROW}" gs-max-h="{MAX_HEIGHT // ROW}">
        <div id="content" class="grid-stack-item-content">${{obj}}</div>
      </div>
    {{% endfor %}}
    </div>
    """

    _scripts: ClassVar[dict[str, str | list[str]]] = {
        "render": BOKEH_FIXES_JS + """
        const gridstack = GridStack.init({
          column: data.ncols, cellHeight: data.row_height, margin: 0, float: false, animate: false,
          disableResize: !data.allow_resize, disableDrag: !data.allow_drag, alwaysShowResizeHandle: true,
        }, grid)
        function sync_state() {
          const items = []
          for (const node of gridstack.engine.nodes) {
            items.push({id: node.el.getAttribute('data-id'), x0: node.x, y0: node.y, x1: node.x + node.w,
                        y1: node.y + node.h, gen: data.generation})
          }
          data.state = items
        }
        state.sync = sync_state
        gridstack.on('resizestop', () => { sync_state(); view.invalidate_layout() })
        gridstack.on('dragstop', () => sync_state())
        // A click on a card while editing chooses it (the toolbar's buttons then act on it).
        grid.addEventListener('click', (event) => {
          if (!data.allow_drag) return
          for (const el of event.composedPath()) {
            if (el.classList && el.classList.contains('grid-stack-item')) {
              data.selected = el.getAttribute('data-id')
              return
            }
          }
        })
        state.gridstack = gridstack
        state.init = false
        self.places()
        sync_state()
        self.selected()
        """,
        "after_layout": """
        // Panel moves the grid's children after render, dropping the stylesheet GridStack placed
        // beside the grid: without it every card sits at the top with no height.
        const sheet = state.gridstack._styles
        if (!sheet || !sheet.ownerNode || !sheet.ownerNode.isConnected || !sheet.cssRules.length) {
          state.gridstack._updateStyles(true)
        }
        if (!state.init) {
          state.init = true
          view.invalidate_layout()
        }
        """,
        "allow_drag": "state.gridstack.enableMove(data.allow_drag)",
        "allow_resize": "state.gridstack.enableResize(data.allow_resize)",
        "selected": """
        for (const el of grid.querySelectorAll('.grid-stack-item')) {
          el.classList.toggle('mk-selected', el.getAttribute('data-id') === data.selected)
        }
        """,
        # A layout loaded with the same panels keeps their elements: move them where the layout says.
        "places": """
        if (!state.gridstack) return
        state.gridstack.batchUpdate()
        for (const el of grid.querySelectorAll('.grid-stack-item')) {
          const p = data.places[el.getAttribute('data-id')]
          if (p) state.gridstack.update(el, {x: p[0], y: p[1], w: p[2], h: p[3]})
        }
        state.gridstack.batchUpdate(false)
        state.sync()
        """,
        "remove": "state.gridstack.destroy()",
    }

    @param.depends("state", watch=True)
    def _update_objects(self) -> None:
        # Panel's own version fails on an id it does not know: a drag that ends while a new layout is
        # being sent reports the cards of the old one.
        if not current(self.state, self.generation):
            return
        by_id = {str(id(obj)): obj for obj in self}
        moved = {(p["y0"], p["x0"], p["y1"], p["x1"]): by_id[p["id"]] for p in self.state if p.get("id") in by_id}
        if len(moved) == len(by_id):
            self.objects.clear()
            self.objects.update(moved)

    _stylesheets: ClassVar[list[str]] = [*GridStack._stylesheets, """
    .grid-stack-item.mk-selected > .grid-stack-item-content {
      outline: 3px solid #2e90fa; outline-offset: -4px; border-radius: 8px;
    }
    """]


class CardGrid:
    """The cards of one view on a PanelGrid: ``show(cards)`` places them; drags and resizes come back to them.

    ``cards`` (the view's own list) is kept in grid order, top to bottom then left to right.
    """

    def __init__(self, on_select: Callable[[Card | None], None] | None = None) -> None:
        self.cards: list[Card] = []
        self.on_select = on_select
        self.view = PanelGrid(ncols=GRID_COLUMNS, sizing_mode="stretch_width", allow_drag=False, allow_resize=False,
                              styles={"background": "#f4f6f8"}, min_height=200)
        self.view.param.watch(self._moved, "state")
        self.view.param.watch(self._chosen, "selected")

    def show(self, cards: list[Card]) -> None:
        """Place ``cards`` (packed up, in their saved places or left to right) and show them."""
        self.cards = cards
        boxes = place([(c.x, c.y, c.width, c.rows) for c in cards])
        for card, (x, y, w, _) in zip(cards, boxes, strict=True):
            card.x, card.y, card.width = x, y, w
        cards.sort(key=lambda c: (c.y or 0, c.x or 0))
        boxes = self._boxes(cards)
        self.view.generation += 1  # what the browser reports from now on is about this arrangement
        self.view.objects = {(y, x, y + h, x + w): c.view for c, (x, y, w, h) in zip(cards, boxes, strict=True)}
        self.view.places = self._places(cards, boxes)

    @staticmethod
    def _places(cards: list[Card], boxes: list[Box]) -> dict[str, list[int]]:
        return {str(id(c.view)): list(box) for c, box in zip(cards, boxes, strict=True)}

    @staticmethod
    def _boxes(cards: list[Card]) -> list[Box]:
        return [(c.x or 0, c.y or 0, c.width, c.rows) for c in cards]

    def editing(self, on: bool) -> None:
        """Let the user drag and resize the cards (off: the charts take the mouse)."""
        self.view.param.update(allow_drag=on, allow_resize=on)
        if not on:
            self.view.selected = ""

    def select(self, card: Card | None) -> None:
        """Highlight ``card`` (None: no card)."""
        self.view.selected = str(id(card.view)) if card is not None else ""

    def act(self, card: Card, action: str) -> None:
        """Resize, move (left: before the previous card, right: after the next) or remove ``card``."""
        if card.act(action):
            self.show(self.cards)
            return
        cards = self.cards
        i = cards.index(card)
        if action == "remove":
            cards.pop(i)
        elif action in ("left", "right"):
            j = i - 1 if action == "left" else i + 1
            if 0 <= j < len(cards):
                other = cards[j]
                (card.x, card.y), (other.x, other.y) = (other.x, other.y), (card.x, card.y)
        self.show(cards)

    def _moved(self, event: Any) -> None:
        # Panel calls this without Bokeh's document lock; resizing touches the charts' Bokeh figures.
        with unlocked():
            self._take(event.new or [])

    def _take(self, report: list[dict[str, Any]]) -> None:
        # The browser's places after a drag or resize: GridStack has packed them already.
        if not current(report, self.view.generation):
            return
        by_id = {str(id(c.view)): c for c in self.cards}
        changed = False
        for item in report:
            card = by_id.get(str(item.get("id")))
            if card is None:
                continue
            x, y, w = int(item["x0"]), int(item["y0"]), int(item["x1"]) - int(item["x0"])
            height = min(MAX_HEIGHT, max(MIN_HEIGHT, (int(item["y1"]) - y) * ROW))
            if (x, y, w) != (card.x, card.y, card.width) or height != card.height:
                resized = height != card.height
                card.x, card.y, card.width, card.height = x, y, w, height
                if resized:
                    card.resize()
                changed = True
        if changed:
            self.cards.sort(key=lambda c: (c.y or 0, c.x or 0))
            # Python's copy of the places follows the browser, so the next layout shown differs from it.
            self.view.places = self._places(self.cards, self._boxes(self.cards))

    def _chosen(self, event: Any) -> None:
        if self.on_select is not None:
            self.on_select(next((c for c in self.cards if str(id(c.view)) == event.new), None))
