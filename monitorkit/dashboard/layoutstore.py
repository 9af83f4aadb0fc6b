"""Saved layouts as a dashboard sees them: read through its counted Reader, written through the owner's writer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from monitorkit.dashboard import layouts as lay
from monitorkit.dashboard.errors import LayoutError
from monitorkit.dashboard.reader import Reader

__all__ = ["LayoutBackend", "ReaderConnection"]


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows


class ReaderConnection:
    """Give the layouts module the ``execute(...).fetchall()`` it reads with, over a counted Reader."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    def execute(self, sql: str, params: Iterable[Any] | None = None) -> _Rows:
        """Run ``sql`` and return its rows."""
        table = self.reader.arrow(sql, list(params or []))
        return _Rows([tuple(row.values()) for row in table.to_pylist()])


class LayoutBackend:
    """Saved layouts: read through the dashboard's Reader, written through ``write(fn)`` (the owner's writer)."""

    def __init__(self, reader: Reader, write: Callable[[Callable[[Any], Any]], Any] | None = None) -> None:
        self.con = ReaderConnection(reader)
        self._write = write
        self._default: lay.Layout | None = None  # every write here clears it, so new sessions need no query

    @property
    def writable(self) -> bool:
        """Tell whether layouts can be saved from here (only in the owner process)."""
        return self._write is not None

    def _w(self, fn: Callable[[Any], Any]) -> Any:
        if self._write is None:
            raise LayoutError("layouts are saved by the owner: use the served dashboard or `monitorkit layouts import`")
        self._default = None
        return self._write(fn)

    def list(self) -> list[lay.LayoutInfo]:
        """Return the saved layouts."""
        return lay.list_layouts(self.con)

    def load(self, name: str) -> lay.Layout:
        """Return the layout saved as ``name``."""
        return lay.load_layout(self.con, name)

    def default(self) -> lay.Layout:
        """Return the default layout (the built-in overview when none is set)."""
        if self._default is None or not self.writable:
            self._default = lay.default_layout(self.con)
        return self._default

    def save(self, layout: lay.Layout, default: bool = False) -> None:
        """Save ``layout`` under its name."""
        self._w(lambda con: lay.save_layout(con, layout, default=default))

    def find(self, name: str) -> lay.Layout:
        """Return the layout saved as ``name``, else the built-in one of that name."""
        return lay.find_layout(self.con, name)

    def set_default(self, name: str) -> None:
        """Make ``name`` the layout new sessions open with."""
        self._w(lambda con: lay.set_default(con, name))

    def clear_default(self) -> None:
        """Make the built-in overview the layout new sessions open with."""
        self._w(lay.clear_default)

    def delete(self, name: str) -> None:
        """Delete the layout ``name``."""
        self._w(lambda con: lay.delete_layout(con, name))
