"""CLI commands of the dashboard: ``serve`` (owner + Panel server), ``token`` and ``layouts`` (list, export, import)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import click

from monitorkit.cli import output
from monitorkit.cli.options import config_option, db_option, install_stop_handlers, settings_for, stop_after

TOKEN_ROUTE = "/v1/dashboard/token"

DASHBOARD_SERVICE = "monitorkit.dashboard.service:DashboardService"


def restart_with_system_malloc(enabled: bool) -> None:
    """Re-execute this process (same PID and arguments) with ``PYTHONMALLOC=malloc``, once.

    Python's own small-object allocator keeps an arena as long as one object in it lives, so
    the tens of megabytes a closed browser session frees stay in the server's RSS. With the
    system allocator and the ``malloc_trim`` the server runs after sessions end, RSS returns to
    its baseline. Set ``serve.system_malloc = false`` to keep Python's allocator.
    """
    if not enabled or os.environ.get("PYTHONMALLOC") or not sys.platform.startswith("linux"):
        return
    os.environ["PYTHONMALLOC"] = "malloc"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


@click.command()
@db_option
@config_option
@click.option("--port", type=int, default=None, help="Port to listen on (default: setting serve.port, 5006); 0 picks a free one.")
@click.option("--address", default=None, help="Address to listen on (default: setting serve.address, 127.0.0.1).")
@click.option("--interval", type=float, default=None, help="Seconds between ticks (default: collect.interval, 1).")
@click.option("--new-token", is_flag=True, help="Issue a new login token; the old one and every open login stop working.")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until stopped).")
def serve(db: str | None, config_path: str | None, port: int | None, address: str | None, interval: float | None,
          new_token: bool, duration: float | None) -> None:
    """Own the database, collect, evaluate rules and serve the dashboard until Ctrl-C or SIGTERM.

    The login URL is printed like Jupyter's; the token is shown when it is issued (first start,
    --new-token or the serve.token setting) and stored only as a salted hash. With a server
    already running on the file, --new-token asks it for a fresh login URL (as `monitorkit token`).
    """
    from monitorkit.owner import runtime
    from monitorkit.owner.sidecar import read_owner

    overrides = {"serve.port": port, "serve.address": address, "collect.interval": interval,
                 "serve.new_token": True if new_token else None}
    settings = settings_for(db, config_path).with_overrides(overrides)
    if new_token and read_owner(settings.get("store.path")) is not None:
        click.echo(fresh_login_url(settings.get("store.path")))
        return
    restart_with_system_malloc(bool(settings.get("serve.system_malloc", True)))
    stop = threading.Event()
    install_stop_handlers(stop)

    def ready(ctx: runtime.OwnerContext) -> None:
        from monitorkit.dashboard.service import DashboardService

        service = ctx.services["dashboard"]
        assert isinstance(service, DashboardService)
        pid = ctx.owner.info.pid if ctx.owner.info else "?"
        click.echo(f"monitorkit: serving {ctx.owner.db} (pid {pid}); Ctrl-C to stop", err=True)
        note = "" if service.token else "  (login token unchanged; `monitorkit token` prints a fresh login URL)"
        click.echo(f"dashboard: {service.login_url}{note}")
        stop_after(duration, stop)

    runtime.run_owner(settings, stop, services=(*runtime.DEFAULT_SERVICES, DASHBOARD_SERVICE), on_ready=ready)
    click.echo("monitorkit: stopped; last batch written", err=True)


@click.command()
@db_option
@config_option
def token(db: str | None, config_path: str | None) -> None:
    """Print a fresh login URL for the running dashboard, issued through its owner.

    Like `jupyter server list`: use it when the URL printed at start is lost. The server must be
    running (`monitorkit serve`); `monitorkit status` shows its address.
    """
    click.echo(fresh_login_url(settings_for(db, config_path).get("store.path")))


def fresh_login_url(db: str) -> str:
    """Ask the running owner of ``db`` for a new login URL of its dashboard; OwnerApiError/StoreError if it cannot."""
    from monitorkit.errors import StoreError
    from monitorkit.owner.client import call
    from monitorkit.owner.sidecar import read_owner

    owner = read_owner(db)
    if owner is None:
        raise StoreError(f"no owner runs for {db}; `monitorkit serve --db {db}` starts one and prints its login URL")
    if not owner.extra.get("dashboard_url"):
        raise StoreError(f"the owner of {db} (pid {owner.pid}) serves no dashboard: it was started by "
                         "`monitorkit collect`; stop it and run `monitorkit serve`")
    answer = call(owner, TOKEN_ROUTE, {})
    url = answer.get("url")
    if not isinstance(url, str) or not url:
        raise StoreError(f"the owner of {db} (pid {owner.pid}) gave no login URL; is it an older monitorkit? restart it")
    return url


@click.group()
def layouts() -> None:
    """List, export and import dashboard layouts (JSON files you can keep in git)."""


@layouts.command("list")
@db_option
@config_option
@output.format_options
def list_cmd(db: str | None, config_path: str | None, fmt: str | None) -> None:
    """List the saved layouts; the default one is marked."""
    from monitorkit.dashboard.layouts import list_layouts
    from monitorkit.owner.connect import connect

    con = connect(settings_for(db, config_path).get("store.path"))
    try:
        infos = list_layouts(con)
    finally:
        con.close()
    rows = [{"name": i.name, "default": i.is_default, "panels": i.panels, "updated_at": i.updated_at} for i in infos]
    output.emit(rows, ["name", "default", "panels", "updated_at"], fmt,
                empty="no saved layouts; the dashboard opens with the built-in 'overview'")


@layouts.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
@config_option
def export_cmd(name: str, file: str, db: str | None, config_path: str | None) -> None:
    """Write layout NAME to FILE as JSON (the built-in 'overview' when none is saved under that name)."""
    from monitorkit.dashboard.errors import LayoutNotFoundError
    from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, load_layout, to_file_json
    from monitorkit.owner.connect import connect

    con = connect(settings_for(db, config_path).get("store.path"))
    try:
        layout = load_layout(con, name)
    except LayoutNotFoundError:
        if name != DEFAULT_LAYOUT.name:
            raise
        layout = DEFAULT_LAYOUT
    finally:
        con.close()
    Path(file).write_text(to_file_json(layout))
    click.echo(f"exported layout '{layout.name}' ({len(layout.panels)} panels) to {file}", err=True)


@layouts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@db_option
@config_option
@click.option("--name", default=None, help="Save under this name instead of the one in the file.")
@click.option("--default", "make_default", is_flag=True, help="Also make it the layout the dashboard opens with.")
def import_cmd(file: str, db: str | None, config_path: str | None, name: str | None, make_default: bool) -> None:
    """Save the layout in FILE (through the running dashboard when an owner runs)."""
    from monitorkit.dashboard.layouts import install_layout, read_layout_file

    settings = settings_for(db, config_path)
    layout = read_layout_file(file, name)
    how = install_layout(settings.get("store.path"), layout, default=make_default, settings=settings)
    via = "through the running dashboard" if how == "owner" else "into the file"
    click.echo(f"imported layout '{layout.name}' ({len(layout.panels)} panels) {via}", err=True)
