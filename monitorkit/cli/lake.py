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
              help="Roll up, maintain, enforce retention and evaluate the rules once; print what was done.")
def hub(config_path: str | None, catalog: str | None, duration: float | None, once: bool) -> None:
    """Maintain the fleet lake and evaluate fleet rules over every host until Ctrl-C or SIGTERM.

    Rollups 1m/1h follow each host's shipped watermark; DuckLake's maintenance (flush inlined
    rows, merge adjacent files, expire snapshots, delete old files) and [retention] run on
    the [hub] schedule; rule state and notifications live in [hub] db. See docs/fleet.md.
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
        click.echo(f"monitorkit: hub over {fleet.cfg.display} (state in {fleet.config.db}); Ctrl-C to stop", err=True)
        stop_after(duration, stop)
        fleet.run(stop)
    click.echo("monitorkit: hub stopped", err=True)
