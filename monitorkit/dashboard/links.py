"""A URL per view: ``/?layout=ops&range=6h`` opens that layout over that range, and the address bar follows the view.

``requested(args, layouts)`` reads what a page's query asks for (unknown names and ranges give
the default view and a message saying what exists); ``follow(view, location)`` keeps the
browser's address on the layout and range on screen (``history.pushState``, no reload), so a
copied link opens the same view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

from monitorkit.dashboard.errors import LayoutError
from monitorkit.dashboard.layouts import RANGES, Layout


class Layouts(Protocol):
    """Where a URL's layout is looked up (``app.LayoutBackend``)."""

    def find(self, name: str) -> Layout:
        """Return the saved or built-in layout ``name``."""
        ...

    def default(self) -> Layout:
        """Return the layout new sessions open with."""
        ...


def _arg(args: Mapping[str, Sequence[bytes | str]], name: str) -> str | None:
    values = args.get(name) or []
    if not values:
        return None
    value = values[-1]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def requested(args: Mapping[str, Sequence[bytes | str]], layouts: Layouts) -> tuple[Layout, list[str]]:
    """Return the layout a page's query asks for (``layout``, ``range``) and what could not be honoured.

    The messages quote the user's text as it came: whoever shows them escapes it.
    """
    problems: list[str] = []
    name, rng = _arg(args, "layout"), _arg(args, "range")
    layout = layouts.default()
    if name:
        try:
            layout = layouts.find(name)
        except LayoutError as exc:
            problems.append(f"{exc}; showing '{layout.name}'")
    if rng:
        if rng in RANGES:
            layout = layout._replace(range=rng)
        else:
            problems.append(f"unknown range {rng!r} in the address; use one of {', '.join(RANGES)}")
    return layout, problems


def query(layout: str, rng: str) -> str:
    """Return the query string of a view: ``?layout=ops&range=6h``."""
    return "?" + urlencode({"layout": layout, "range": rng})


class View(Protocol):
    """What the address bar follows (``app.DashboardView``)."""

    layout_name: str
    range: Any  # the range Select widget
    toolbar: Any  # the LayoutToolbar, whose ``switched`` callbacks tell of another layout


def follow(view: View, location: Any) -> None:
    """Keep ``location`` (Panel's ``pn.state.location``) on ``view``'s layout and range."""

    def update(*_: Any) -> None:
        rng = str(view.range.value)
        if rng not in RANGES:
            return  # an absolute range has no short name: the address keeps the last relative one
        search = query(view.layout_name, rng)
        if location.search != search:
            location.search = search

    view.range.param.watch(update, "value")
    view.toolbar.switched.append(update)
