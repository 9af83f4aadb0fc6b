"""The dashboard in a notebook: ``monitorkit.dashboard.dashboard(db=..., panels=["cpu", "alerts"])``.

It reads through the Store when the owner runs in this process (pass the Store or Owner), else
through ``monitorkit.connect()`` (the running owner over Quack, or the file read-only), and
updates live with ``pn.state.add_periodic_callback``. Call ``extension()`` first instead of
``pn.extension()``: it puts Panel's and Bokeh's JavaScript into the notebook itself, so an
air-gapped JupyterLab and exported HTML show the charts (a CDN is never asked).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import panel as pn
import param

from monitorkit.config import load_settings
from monitorkit.dashboard.actions import RulesActions
from monitorkit.dashboard.app import AppContext, DashboardView, LayoutBackend
from monitorkit.dashboard.console import HIDDEN_TABLES, SqlConsole
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, PANEL_KINDS, Layout, PanelSpec
from monitorkit.dashboard.panels import cached_metrics
from monitorkit.dashboard.reader import ConnectionReader, Reader, StoreReader
from monitorkit.errors import MonitorkitError
from monitorkit.owner.client import endpoint, quack_endpoint
from monitorkit.owner.connect import RemoteConnection, connect
from monitorkit.owner.owner import Owner
from monitorkit.owner.sidecar import read_owner
from monitorkit.store import Store


def extension(**kwargs: Any) -> None:
    """Load Panel into this notebook with every resource inline (what ``dashboard()`` needs, GridStack included).

    ``pn.extension()`` alone loads Bokeh and Panel from their CDNs: without the internet, and in
    exported HTML opened offline, the charts stay blank ("Bokeh or Panel library is missing").
    """
    pn.extension("gridstack", inline=True, **kwargs)


def _notebook_user() -> str:
    # Who acknowledges from a notebook: the account running it (the alerts panel lets them change it).
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return ""


class Dashboard(pn.viewable.Viewer):
    """A live dashboard object: display it in a notebook; ``stop()`` ends its updates."""

    view = param.Parameter(doc="The DashboardView shown.")

    def __init__(self, view: DashboardView, period_ms: int, flush: Callable[[], None] | None = None,
                 **params: Any) -> None:
        super().__init__(view=view, **params)
        self._flush = flush
        self.callback = pn.state.add_periodic_callback(self.poll, period=period_ms, start=True)

    def __panel__(self) -> Any:
        return self.view.root

    def poll(self) -> None:
        """Poll once now (what the periodic callback does every tick)."""
        if self._flush is not None:
            self._flush()  # an owner in this process: what it collected is committed, then read
        self.view.poll()

    def stop(self) -> None:
        """Stop updating and close the connections this dashboard opened."""
        self.callback.stop()
        app = self.view.app
        if app.console is not None:
            app.console.close()
        if not isinstance(app.reader, StoreReader):
            app.reader.close()


def _source(db: str | Path | Store | Owner | None) -> tuple[Reader, Path, Any, Store | None]:
    if isinstance(db, Owner):
        return StoreReader(db.store), db.db, db.info, db.store
    if isinstance(db, Store):
        return StoreReader(db), db.path, None, db
    path = Path(db or load_settings().get("store.path"))
    owner = read_owner(path)
    if owner is not None and owner.pid == os.getpid():
        raise MonitorkitError(f"this process owns {path}: pass its Store or Owner, dashboard(db=owner)")
    con = connect(path)
    return ConnectionReader(con), path, con.owner if isinstance(con, RemoteConnection) else None, None


def _layout(panels: Sequence[str | PanelSpec] | None, rng: str) -> Layout:
    if panels is None:
        return DEFAULT_LAYOUT._replace(range=rng)
    specs = []
    for p in panels:
        if isinstance(p, PanelSpec):
            specs.append(p)
        elif p in PANEL_KINDS:
            specs.append(PanelSpec(p, 12 if p in ("processes", "app", "sql") else 6))
        else:
            raise MonitorkitError(f"unknown panel {p!r}; use one of {', '.join(PANEL_KINDS)}")
    return Layout("notebook", tuple(specs), rng)


def dashboard(db: str | Path | Store | Owner | None = None, panels: Sequence[str | PanelSpec] | None = None, *,
              range: str = "15m", tick: float = 1.0, window: float = 900.0) -> Dashboard:
    """Return a live dashboard of ``db`` with ``panels`` (kinds such as "cpu", "alerts"; default: all)."""
    reader, path, owner, store = _source(db)
    feed = Feed(reader, tick=tick, window=window, cached=cached_metrics())
    feed.prime()
    tables = feed.tables - HIDDEN_TABLES
    try:
        console = (SqlConsole.for_owner(*quack_endpoint(owner), tables, api=endpoint(owner)) if owner is not None
                   else SqlConsole.for_file(path, tables) if store is None else SqlConsole.in_owner(store, tables))
    except MonitorkitError:
        console = None
    write = (lambda fn: store.submit(fn).result(30)) if store is not None else None
    app = AppContext(feed, reader, LayoutBackend(reader, write), RulesActions(path), console, tick)
    view = DashboardView(app, _layout(panels, range), user=_notebook_user)
    view.start(feed.snapshot())
    return Dashboard(view, int(tick * 1000), flush=store.flush if store is not None else None)
