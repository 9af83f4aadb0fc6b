"""CLI over the fleet lake: `monitorkit hub`, and the reader behind `monitorkit sql --lake`."""

from __future__ import annotations

import json
import threading
from typing import Any

import click

from monitorkit.cli.options import config_option, install_stop_handlers, settings_for, stop_after

LAKE_HELP = ("Query the fleet lake instead of the database: its catalog ('postgres:host=... dbname=...'), "
             "or no value after the query to use [lake] catalog.")
# `--lake` alone takes [lake] catalog; `--lake 'postgres:...'` names another.
lake_option = click.option("--lake", "lake", default=None, is_flag=False, flag_value="", help=LAKE_HELP)


def lake_reader(lake: str, config_path: str | None) -> Any:
    """Return a read-only connection over every host of the lake ``lake`` ("" for ``[lake] catalog``)."""
    from monitorkit.lake.connect import connect_lake

    if lake and not lake.removeprefix("ducklake:").startswith("postgres:"):
        raise click.UsageError(f"--lake takes a catalog such as 'postgres:host=db dbname=fleet', not {lake!r}; "
                               "to use [lake] catalog put --lake after the query")
    return connect_lake(lake or None, settings=settings_for(None, config_path))


@click.command()
@config_option
@click.option("--lake", "catalog", default=None, help="The lake's catalog (default: [lake] catalog).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until stopped).")
@click.option("--once", is_flag=True,
              help="Roll up, maintain, enforce retention and evaluate the rules once; print what was done (never serves).")
@click.option("--serve/--no-serve", "serve", default=None,
              help="Serve the fleet dashboard (every host, the fleet overview) while running. Off by default "
                   "(setting hub.serve = true turns it on).")
@click.option("--port", type=int, default=None,
              help="Dashboard port (default: setting hub.port, 5007); 0 picks a free one.")
@click.option("--address", default=None, help="Dashboard address (default: setting hub.address, 127.0.0.1).")
@click.option("--new-token", is_flag=True,
              help="Issue a new dashboard login token; the old one and every open login stop working.")
def hub(config_path: str | None, catalog: str | None, duration: float | None, once: bool, serve: bool | None,
        port: int | None, address: str | None, new_token: bool) -> None:
    """Maintain the fleet lake and evaluate fleet rules over every host until Ctrl-C or SIGTERM.

    Rollups 1m/1h follow each host's shipped watermark; DuckLake's maintenance (flush inlined
    rows, merge adjacent files, expire snapshots, delete old files) and [retention] run on
    the [hub] schedule; rule state and notifications live in [hub] db. With --serve it also
    serves the dashboard over every host and prints its login URL (the token only when it is
    issued: first start, --new-token or hub.token; it is stored as a hash in [hub] db). See
    docs/fleet.md.
    """
    from monitorkit.lake.config import lake_config
    from monitorkit.lake.hub import Hub

    settings = settings_for(None, config_path)
    cfg = lake_config(settings, catalog=catalog)
    with Hub(settings, lake=cfg) as fleet:
        if once:
            fleet.evaluate()
            fleet.run_jobs()
            click.echo(json.dumps(fleet.status(), default=str, indent=2))
            return
        stop = threading.Event()
        install_stop_handlers(stop)
        board = None
        if serve if serve is not None else fleet.config.serve:
            from monitorkit.lake.dashboard import HubDashboard

            board = HubDashboard(fleet, settings, address=address, port=port, new_token=new_token)
            board.start()
        try:
            click.echo(f"monitorkit: hub over {fleet.cfg.display} (state in {fleet.config.db}); Ctrl-C to stop",
                       err=True)
            if board is not None:
                note = "" if board.token else "  (login token unchanged; `monitorkit hub --serve --new-token` issues one)"
                click.echo(f"dashboard: {board.login_url}{note}")
            stop_after(duration, stop)
            fleet.run(stop)
        finally:
            if board is not None:
                board.stop()
    click.echo("monitorkit: hub stopped", err=True)
