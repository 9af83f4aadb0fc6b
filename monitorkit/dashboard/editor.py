"""The layout toolbar: save, load, make default, delete, export and import layouts; edit the panels on the grid.

Saved layouts and the built-in ones are listed together; replacing or deleting a saved layout
asks first. While **Edit panels** is on, cards are dragged to move and resized by their corner
(``grid.py``), and the labelled buttons act on the highlighted card.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import panel as pn
from panel.io.document import unlocked

from monitorkit.dashboard.errors import LayoutError
from monitorkit.dashboard.grid import Card, CardGrid
from monitorkit.dashboard.layouts import (
    BUILTIN_LAYOUTS,
    Layout,
    LayoutInfo,
    PanelSpec,
    check_saveable,
    from_file_json,
    to_file_json,
)
from monitorkit.dashboard.style import html_pane

__all__ = ["ACTIONS", "Card", "LayoutHost", "LayoutStore", "LayoutToolbar"]

ACTIONS = {"left": "Move left", "right": "Move right", "narrower": "Narrower", "wider": "Wider",
           "shorter": "Shorter", "taller": "Taller", "remove": "Remove"}
BUILTIN = "built-in"


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

    def clear_default(self) -> None:
        """Make the built-in overview the layout new sessions open with."""
        ...

    def delete(self, name: str) -> None:
        """Delete the layout ``name``."""
        ...


class LayoutHost(Protocol):
    """What the layout toolbar needs of the view it edits (``app.DashboardView``)."""

    layout_name: str
    cards: list[Card]
    panel_kinds: dict[str, str]  # kind -> title of the panels this view can add (no fleet without a lake)

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
        """Add a panel to the grid."""
        ...

    def card_action(self, card: Card, action: str) -> None:
        """Move, resize or remove ``card``."""
        ...


class LayoutToolbar:
    """Name, save, load, make default, delete, export and import layouts; edit panels on the grid.

    ``switched`` holds callbacks called with the layout's name whenever the view shows another
    layout (loaded, imported, or saved under a new name): the address bar follows them.
    """

    def __init__(self, host: LayoutHost, grid: CardGrid | None = None) -> None:
        self.host = host
        self.grid = grid
        self.switched: list[Callable[[str], None]] = []
        # Built on first use: two dozen widgets a session mostly never opens cost a fifth of its start.
        self.toggle = pn.widgets.Toggle(label="Layouts", value=False, width=90, css_classes=["mk-layouts"])
        self.panels = pn.Column(sizing_mode="stretch_width", visible=False)
        self.built = False
        self._pending: Callable[[], str] | None = None
        self.toggle.param.watch(lambda e: self.open(bool(e.new)), "value")
        if grid is not None:
            grid.on_select = self._picked

    def open(self, show: bool = True) -> None:
        """Show (building it the first time) or hide the layout toolbar."""
        if show and not self.built:
            self._build()
        self.panels.visible = show

    def _build(self) -> None:
        host = self.host
        writable = host.layouts.writable
        self.name = pn.widgets.TextInput(label="Layout", value=host.layout_name, width=160, css_classes=["mk-layout-name"])
        self.save = pn.widgets.Button(label="Save", color="primary", width=70, css_classes=["mk-save"], disabled=not writable)
        self.saved = pn.widgets.Select(label="Layouts", options={}, width=190, css_classes=["mk-saved"])
        self.load = pn.widgets.Button(label="Load", width=70, css_classes=["mk-load"])
        self.make_default = pn.widgets.Button(label="Set default", width=100, css_classes=["mk-default"],
                                              disabled=not writable)
        self.delete = pn.widgets.Button(label="Delete", width=70, color="danger", css_classes=["mk-delete"],
                                        disabled=not writable)
        self.export = pn.widgets.FileDownload(callback=self._export_file, filename=f"{host.layout_name}.json",
                                              label="Export", color="default", width=90, css_classes=["mk-export"])
        self.upload = pn.widgets.FileInput(accept=".json", width=200, css_classes=["mk-import"])
        # One set of edit controls acting on the chosen panel: per-card buttons (77 widgets for the
        # default layout) froze the browser for seconds while it laid them out.
        self.editing = pn.widgets.Toggle(label="Edit panels", value=False, width=110, css_classes=["mk-edit"])
        self.target = pn.widgets.Select(label="Panel", options={}, width=180, css_classes=["mk-target"])
        self.actions = []
        for action, label in ACTIONS.items():
            button = pn.widgets.Button(label=label, margin=(5, 2), color="light", css_classes=[f"mk-{action}"],
                                       description=f"{label} (the highlighted panel)")
            button.on_click(partial(self._act, action))
            self.actions.append(button)
        self.add_kind = pn.widgets.Select(label="Add panel", options={v: k for k, v in host.panel_kinds.items()},
                                        width=170)
        self.add = pn.widgets.Button(label="Add", width=60, css_classes=["mk-add"])
        hint = html_pane("<small>Drag a panel to move it, its lower right corner to resize it.</small>", width=170)
        self.edit_row = pn.Row(self.target, *self.actions, self.add_kind, self.add, hint, visible=False,
                               styles={"align-items": "flex-end", "flex-wrap": "wrap"})
        self.message = html_pane("", css_classes=["mk-layout-message"], width=360)
        self.question = html_pane("", css_classes=["mk-confirm-text"])
        self.yes = pn.widgets.Button(label="Replace", color="danger", width=90, css_classes=["mk-confirm"])
        self.no = pn.widgets.Button(label="Cancel", width=80, css_classes=["mk-cancel"])
        self.confirm_row = pn.Row(self.question, self.yes, self.no, visible=False, css_classes=["mk-confirm-row"],
                                  styles={"align-items": "center", "background": "#fffaeb", "border-radius": "4px"})
        self.save.on_click(lambda e: self.run(self._save))
        self.load.on_click(lambda e: self.run(self._load))
        self.make_default.on_click(lambda e: self.run(self._default))
        self.delete.on_click(lambda e: self.run(self._delete))
        self.yes.on_click(lambda e: self.run(self._confirmed))
        self.no.on_click(lambda e: self.run(self._cancelled))
        self.add.on_click(self._add)
        self.upload.param.watch(lambda e: self.run(self._import), "value")
        self.name.param.watch(lambda e: setattr(self.export, "filename", f"{e.new}.json"), "value")
        self.editing.param.watch(self._edit, "value")
        self.target.param.watch(self._targeted, "value")
        self.refresh()
        self.panel = pn.Row(self.name, self.save, self.saved, self.load, self.make_default, self.delete, self.export,
                            self.upload, self.editing, self.message, sizing_mode="stretch_width",
                            styles={"flex-wrap": "wrap", "align-items": "flex-end"})
        self.panels.objects = [self.panel, self.confirm_row, self.edit_row]
        self.built = True

    # -- messages and confirmation ---------------------------------------------------------

    def run(self, action: Callable[[], str]) -> None:
        """Run a layout action and report its outcome (plain text: names come from users and files)."""
        try:
            with unlocked():  # see _edit
                text = action()
        except LayoutError as exc:
            self.message.object = f"<span class='mk-error'>{html.escape(str(exc), quote=False)}</span>"
            return
        self.message.object = f"<span class='mk-done'>{html.escape(text, quote=False)}</span>"

    def ask(self, question: str, verb: str, then: Callable[[], str]) -> str:
        """Show ``question`` with ``verb`` and Cancel; ``then`` runs only on ``verb``."""
        self._pending = then
        self.question.object = f"<b>{html.escape(question, quote=False)}</b>"
        self.yes.label = verb
        self.confirm_row.visible = True
        return ""

    def _confirmed(self) -> str:
        then, self._pending = self._pending, None
        self.confirm_row.visible = False
        return then() if then is not None else ""

    def _cancelled(self) -> str:
        self._pending = None
        self.confirm_row.visible = False
        return "Nothing changed."

    # -- panels ---------------------------------------------------------------------------

    def _edit(self, event: Any) -> None:
        # Panel runs widget callbacks without Bokeh's document lock; the charts' figures are plain Bokeh
        # models, so changes to them go out through unlocked() (as Panel's own updates do), never raise.
        with unlocked():
            self._editing(bool(event.new))

    def _editing(self, on: bool) -> None:
        self.targets()
        self.edit_row.visible = on
        if self.grid is not None:
            self.grid.editing(on)
            if on:
                self._targeted()

    def targets(self) -> None:
        """List the panels on screen in the panel chooser, in grid order."""
        if not self.built:
            return
        cards = self.host.cards
        current = self.target.value
        options = {f"{i + 1}. {c.panel.title}": id(c) for i, c in enumerate(cards)}
        self.target.options = options
        self.target.value = current if current in options.values() else next(iter(options.values()), None)

    def _chosen(self) -> Card | None:
        return next((c for c in self.host.cards if id(c) == self.target.value), None)

    def _targeted(self, event: Any = None) -> None:
        if self.grid is not None and self.editing.value:
            self.grid.select(self._chosen())

    def _picked(self, card: Card | None) -> None:
        # A card clicked on the grid becomes the panel the buttons act on.
        if card is not None and self.built and id(card) in self.target.options.values():
            self.target.value = id(card)

    def _add(self, event: Any = None) -> None:
        with unlocked():
            self.host.add_panel(PanelSpec(str(self.add_kind.value)))
            self.targets()

    def _act(self, action: str, event: Any = None) -> None:
        card = self._chosen()
        if card is not None:
            with unlocked():
                self.host.card_action(card, action)
                self.targets()
                self._targeted()

    # -- layouts --------------------------------------------------------------------------

    def refresh(self) -> None:
        """List the saved layouts, then the built-in ones (always there, so each can be restored)."""
        options: dict[str, tuple[str, str]] = {i.name + (" (default)" if i.is_default else ""): ("saved", i.name)
                                               for i in self.host.layouts.list()}
        options.update({f"{name} ({BUILTIN})": (BUILTIN, name) for name in BUILTIN_LAYOUTS})
        current = self.saved.value
        self.saved.options = options
        self.saved.value = current if current in options.values() else next(iter(options.values()))

    def _select(self, kind: str, name: str) -> None:
        self.refresh()
        if (kind, name) in self.saved.options.values():
            self.saved.value = (kind, name)

    def _picked_layout(self) -> tuple[str, str]:
        if not self.saved.value:
            raise LayoutError("choose a layout first")
        kind, name = self.saved.value
        return str(kind), str(name)

    def _saved_names(self) -> set[str]:
        return {i.name for i in self.host.layouts.list()}

    def _switched(self, name: str) -> None:
        for callback in self.switched:
            callback(name)

    def _save(self) -> str:
        layout = self.host.current_layout(check_saveable(self.name.value or ""))
        if layout.name in self._saved_names() and layout.name != self.host.layout_name:
            return self.ask(f"A layout named '{layout.name}' is saved already. Replace it with this one?", "Replace",
                            lambda: self._store(layout))
        return self._store(layout)

    def _store(self, layout: Layout) -> str:
        self.host.layouts.save(layout)
        renamed = layout.name != self.host.layout_name
        self.host.layout_name = layout.name
        self._select("saved", layout.name)
        if renamed:
            self._switched(layout.name)
        return f"Saved layout '{layout.name}' ({len(layout.panels)} panels)."

    def _load(self) -> str:
        kind, name = self._picked_layout()
        layout = BUILTIN_LAYOUTS[name] if kind == BUILTIN else self.host.layouts.load(name)
        self.name.value = layout.name
        self.host.set_layout(layout)
        self._switched(layout.name)
        return f"Loaded layout '{layout.name}'."

    def _default(self) -> str:
        kind, name = self._picked_layout()
        if kind == BUILTIN:
            if name != next(iter(BUILTIN_LAYOUTS)):
                raise LayoutError(f"save '{name}' under a name of yours first, then make that the default")
            self.host.layouts.clear_default()
        else:
            self.host.layouts.set_default(name)
        self.refresh()
        return f"'{name}' opens by default now."

    def _delete(self) -> str:
        kind, name = self._picked_layout()
        if kind == BUILTIN:
            raise LayoutError(f"'{name}' is built in: it cannot be deleted (and is always here to load)")
        return self.ask(f"Delete the saved layout '{name}'? This cannot be undone.", "Delete",
                        lambda: self._deleted(name))

    def _deleted(self, name: str) -> str:
        self.host.layouts.delete(name)
        self.refresh()
        return f"Deleted layout '{name}'."

    def _export_file(self) -> io.StringIO:
        return io.StringIO(to_file_json(self.host.current_layout(self.name.value)))

    def _import(self) -> str:
        if not self.upload.value:
            return ""
        layout = self._parse(self.upload.value)
        check_saveable(layout.name)
        if layout.name in self._saved_names():
            return self.ask(f"The file's layout '{layout.name}' replaces the saved one of that name. Import it?",
                            "Replace", lambda: self._imported(layout))
        return self._imported(layout)

    def _imported(self, layout: Layout) -> str:
        self.host.layouts.save(layout)
        self._select("saved", layout.name)
        self.name.value = layout.name
        self.host.set_layout(layout)
        self._switched(layout.name)
        return f"Imported and loaded layout '{layout.name}'."

    @staticmethod
    def _parse(data: Any) -> Layout:
        try:
            text = bytes(data).decode()
        except UnicodeDecodeError:
            raise LayoutError("the layout file is not UTF-8 text") from None
        return from_file_json(text)
