"""Arrange a view's panels: cards that move, resize and close, and the layout toolbar (save, load, export)."""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import panel as pn

from monitorkit.dashboard.errors import LayoutError
from monitorkit.dashboard.layouts import (
    MAX_HEIGHT,
    MIN_HEIGHT,
    PANEL_KINDS,
    Layout,
    LayoutInfo,
    PanelSpec,
    from_file_json,
    to_file_json,
)
from monitorkit.dashboard.panels.base import PanelView
from monitorkit.dashboard.style import html_pane

WIDTHS = (3, 4, 6, 8, 9, 12)
HEIGHT_STEP = 60
GAP = 14
ACTIONS = {"left": "◀", "right": "▶", "narrower": "−", "wider": "+", "shorter": "▲", "taller": "▼", "remove": "✕"}


class Card:
    """One panel in the grid under its title; the layout toolbar moves, resizes and removes it."""

    def __init__(self, panel: PanelView) -> None:
        self.panel = panel
        self.width = panel.spec.width
        self.height = panel.spec.height
        title = html_pane(f"<b>{html.escape(panel.title)}</b>", margin=(4, 8), height=26)
        self.view = pn.Column(title, panel.body, css_classes=["mk-card", f"mk-card-{panel.kind}"], margin=(GAP // 2))
        self.resize()

    def configure(self, spec: PanelSpec) -> None:
        """Take ``spec``'s size and options (a layout being loaded keeps this panel)."""
        self.width, self.height = spec.width, spec.height
        self.panel.configure(spec)
        self.resize()

    def resize(self) -> None:
        """Apply the card's width (12ths of the row) and height."""
        share = self.width / 12 * 100
        self.view.styles = {"flex": f"0 0 calc({share:.3f}% - {GAP}px)", "max-width": f"calc({share:.3f}% - {GAP}px)",
                            "background": "#fff", "border": "1px solid #e4e7ec", "border-radius": "6px",
                            "min-height": f"{self.height}px", "overflow": "hidden"}
        self.panel.set_height(self.height)

    def spec(self) -> PanelSpec:
        """Return the PanelSpec of the card as it is now (size, and the console's query)."""
        current = getattr(self.panel, "current_spec", None)
        base = current() if callable(current) else self.panel.spec
        return base._replace(width=self.width, height=self.height)

    def act(self, action: str) -> bool:
        """Resize the card for a resize action; return whether it was one."""
        if action in ("wider", "narrower"):
            if action == "wider":
                self.width = next((w for w in WIDTHS if w > self.width), 12)
            else:
                self.width = next((w for w in reversed(WIDTHS) if w < self.width), WIDTHS[0])
        elif action in ("taller", "shorter"):
            delta = HEIGHT_STEP if action == "taller" else -HEIGHT_STEP
            self.height = min(MAX_HEIGHT, max(MIN_HEIGHT, self.height + delta))
        else:
            return False
        self.resize()
        return True



class LayoutStore(Protocol):
    """Where saved layouts live (``app.LayoutBackend``)."""

    @property
    def writable(self) -> bool:
        """Tell whether layouts can be saved from here."""
        ...

    def list(self) -> list[LayoutInfo]:
        """Return the saved layouts."""
        ...

    def load(self, name: str) -> Layout:
        """Return the layout saved as ``name``."""
        ...

    def save(self, layout: Layout, default: bool = False) -> None:
        """Save ``layout`` under its name."""
        ...

    def set_default(self, name: str) -> None:
        """Make ``name`` the layout new sessions open with."""
        ...

    def delete(self, name: str) -> None:
        """Delete the layout ``name``."""
        ...


class LayoutHost(Protocol):
    """What the layout toolbar needs of the view it edits (``app.DashboardView``)."""

    layout_name: str
    cards: list[Card]

    @property
    def layouts(self) -> LayoutStore:
        """Return where this view's layouts are saved."""
        ...

    def current_layout(self, name: str | None = None) -> Layout:
        """Return the layout on screen, named ``name``."""
        ...

    def set_layout(self, layout: Layout) -> None:
        """Show ``layout``."""
        ...

    def add_panel(self, spec: PanelSpec) -> None:
        """Add a panel at the end of the grid."""
        ...

    def card_action(self, card: Card, action: str) -> None:
        """Move, resize or remove ``card``."""
        ...


class LayoutToolbar:
    """Name, save, load, make default, delete, export and import layouts; add panels."""

    def __init__(self, host: LayoutHost) -> None:
        self.host = host
        # Built on first use: two dozen widgets a session mostly never opens cost a fifth of its start.
        self.toggle = pn.widgets.Toggle(label="Layouts", value=False, width=90, css_classes=["mk-layouts"])
        self.panels = pn.Column(sizing_mode="stretch_width", visible=False)
        self.built = False
        self.toggle.param.watch(lambda e: self.open(bool(e.new)), "value")

    def open(self, show: bool = True) -> None:
        """Show (building it the first time) or hide the layout toolbar."""
        if show and not self.built:
            self._build()
        self.panels.visible = show

    def _build(self) -> None:
        host = self.host
        backend = host.layouts
        self.name = pn.widgets.TextInput(label="Layout", value=host.layout_name, width=160, css_classes=["mk-layout-name"])
        self.save = pn.widgets.Button(label="Save", color="primary", width=70, css_classes=["mk-save"],
                                      disabled=not backend.writable)
        self.saved = pn.widgets.Select(label="Saved layouts", options=[], width=170, css_classes=["mk-saved"])
        self.load = pn.widgets.Button(label="Load", width=70, css_classes=["mk-load"])
        self.make_default = pn.widgets.Button(label="Set default", width=100, css_classes=["mk-default"],
                                              disabled=not backend.writable)
        self.delete = pn.widgets.Button(label="Delete", width=70, color="danger", css_classes=["mk-delete"],
                                        disabled=not backend.writable)
        self.export = pn.widgets.FileDownload(callback=self._export_file, filename=f"{host.layout_name}.json",
                                              label="Export", color="default", width=90, css_classes=["mk-export"])
        self.upload = pn.widgets.FileInput(accept=".json", width=200, css_classes=["mk-import"])
        # One set of edit controls acting on the chosen panel: per-card buttons (77 widgets for the
        # default layout) froze the browser for seconds while it laid them out.
        self.editing = pn.widgets.Toggle(label="Edit panels", value=False, width=110, css_classes=["mk-edit"])
        self.target = pn.widgets.Select(label="Panel", options={}, width=180, css_classes=["mk-target"])
        self.actions = []
        for action, symbol in ACTIONS.items():
            button = pn.widgets.Button(label=symbol, width=34, margin=(5, 2), color="light", css_classes=[f"mk-{action}"],
                                       description=f"{action} the chosen panel")
            button.on_click(partial(self._act, action))
            self.actions.append(button)
        self.add_kind = pn.widgets.Select(label="Add panel", options={v: k for k, v in PANEL_KINDS.items()}, width=170)
        self.add = pn.widgets.Button(label="Add", width=60, css_classes=["mk-add"])
        self.edit_row = pn.Row(self.target, *self.actions, self.add_kind, self.add, visible=False,
                               styles={"align-items": "flex-end"})
        self.message = html_pane("", css_classes=["mk-layout-message"], width=360)
        self.save.on_click(lambda e: self.run(self._save))
        self.load.on_click(lambda e: self.run(self._load))
        self.make_default.on_click(lambda e: self.run(self._default))
        self.delete.on_click(lambda e: self.run(self._delete))
        self.add.on_click(self._add)
        self.upload.param.watch(lambda e: self.run(self._import), "value")
        self.name.param.watch(lambda e: setattr(self.export, "filename", f"{e.new}.json"), "value")
        self.editing.param.watch(self._edit, "value")
        self.refresh()
        self.panel = pn.Row(self.name, self.save, self.saved, self.load, self.make_default, self.delete, self.export,
                            self.upload, self.editing, self.message, sizing_mode="stretch_width",
                            styles={"flex-wrap": "wrap", "align-items": "flex-end"})
        self.panels.objects = [self.panel, self.edit_row]
        self.built = True

    def run(self, action: Callable[[], str]) -> None:
        """Run a layout action and report its outcome (plain text: names come from users and files)."""
        try:
            text = action()
        except LayoutError as exc:
            self.message.object = f"<span class='mk-error'>{html.escape(str(exc), quote=False)}</span>"
            return
        self.message.object = f"<span class='mk-done'>{html.escape(text, quote=False)}</span>"

    def _edit(self, event: Any) -> None:
        self.targets()
        self.edit_row.visible = bool(event.new)

    def targets(self) -> None:
        """List the panels on screen in the panel chooser, in grid order."""
        if not self.built:
            return
        cards = self.host.cards
        current = self.target.value
        options = {f"{i + 1}. {c.panel.title}": id(c) for i, c in enumerate(cards)}
        self.target.options = options
        self.target.value = current if current in options.values() else next(iter(options.values()), None)

    def _add(self, event: Any = None) -> None:
        self.host.add_panel(PanelSpec(str(self.add_kind.value)))
        self.targets()

    def _act(self, action: str, event: Any = None) -> None:
        card = next((c for c in self.host.cards if id(c) == self.target.value), None)
        if card is not None:
            self.host.card_action(card, action)
            self.targets()

    def refresh(self) -> None:
        """Reload the saved layout names."""
        infos = self.host.layouts.list()
        self.saved.options = [i.name for i in infos]
        if infos and self.saved.value not in self.saved.options:
            self.saved.value = infos[0].name

    def _save(self) -> str:
        layout = self.host.current_layout(self.name.value)
        self.host.layouts.save(layout)
        self.host.layout_name = layout.name
        self.refresh()
        self.saved.value = layout.name
        return f"Saved layout '{layout.name}' ({len(layout.panels)} panels)."

    def _load(self) -> str:
        if not self.saved.value:
            raise LayoutError("no saved layout to load yet")
        layout = self.host.layouts.load(self.saved.value)
        self.name.value = layout.name
        self.host.set_layout(layout)
        return f"Loaded layout '{layout.name}'."

    def _default(self) -> str:
        if not self.saved.value:
            raise LayoutError("save a layout first")
        self.host.layouts.set_default(self.saved.value)
        self.refresh()
        return f"'{self.saved.value}' opens by default now."

    def _delete(self) -> str:
        name = self.saved.value
        if not name:
            raise LayoutError("no saved layout selected")
        self.host.layouts.delete(name)
        self.refresh()
        return f"Deleted layout '{name}'."

    def _export_file(self) -> io.StringIO:
        return io.StringIO(to_file_json(self.host.current_layout(self.name.value)))

    def _import(self) -> str:
        if not self.upload.value:
            return ""
        layout = self._parse(self.upload.value)
        self.host.layouts.save(layout)
        self.refresh()
        self.saved.value = layout.name
        self.name.value = layout.name
        self.host.set_layout(layout)
        return f"Imported and loaded layout '{layout.name}'."

    @staticmethod
    def _parse(data: Any) -> Layout:
        try:
            text = bytes(data).decode()
        except UnicodeDecodeError:
            raise LayoutError("the layout file is not UTF-8 text") from None
        return from_file_json(text)
