"""CLI commands over the store: collect, status, config, metrics."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import click

from monitorkit.cli import output
from monitorkit.cli.options import config_option, db_option, install_stop_handlers, settings_for, stop_after
from monitorkit.config import load_settings


@click.command()
@db_option
@config_option
@click.option("--interval", type=float, default=None, help="Seconds between ticks (default: collect.interval, 1).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until stopped).")
def collect(db: str | None, config_path: str | None, interval: float | None, duration: float | None) -> None:
    """Own the database, collect host metrics and evaluate rules until Ctrl-C or SIGTERM."""
    from monitorkit.owner.runtime import OwnerContext, run_owner

    settings = settings_for(db, config_path).with_overrides({"collect.interval": interval})
    stop = threading.Event()
    install_stop_handlers(stop)

    def ready(ctx: OwnerContext) -> None:
        click.echo(f"monitorkit: collecting into {ctx.owner.db} (pid {ctx.owner.info.pid if ctx.owner.info else '?'}); "
                   "Ctrl-C to stop", err=True)
        stop_after(duration, stop)

    run_owner(settings, stop, on_ready=ready)
    click.echo("monitorkit: stopped; last batch written", err=True)


@click.command()
@db_option
@config_option
@output.format_options
def status(db: str | None, config_path: str | None, fmt: str | None) -> None:
    """Show the owner, its dashboard, rows and time span per tier, and the file size."""
    from monitorkit.owner.connect import connect
    from monitorkit.owner.sidecar import read_owner

    settings = settings_for(db, config_path)
    path = Path(settings.get("store.path"))
    owner = read_owner(path)
    size = path.stat().st_size if path.exists() else 0
    wal = Path(f"{path}.wal")
    con = connect(path)
    try:
        counts = con.execute("SELECT tier, rows, oldest, newest FROM tier_status").fetchall()
        series = con.execute("SELECT count(*) FROM series").fetchone()
    finally:
        con.close()
    retention = settings["retention"]
    tiers = [{"tier": tier, "rows": count, "oldest": oldest, "newest": newest, "retention": retention.get(tier)}
             for tier, count, oldest, newest in counts]
    dashboard = owner.extra.get("dashboard_url") if owner else None
    if fmt == "json":
        click.echo(output.to_json({
            "database": str(path), "size_bytes": size, "wal_bytes": wal.stat().st_size if wal.exists() else None,
            "owner": None if owner is None else {"pid": owner.pid, "quack_port": owner.port or None, "since": owner.started,
                                                 "dashboard_url": dashboard},
            "tiers": tiers, "series": series[0] if series else 0}))
        return
    click.echo(f"database: {path}")
    quack = f"quack port {owner.port}" if owner and owner.port else "quack opens on a reader's first request"
    click.echo(f"owner: pid {owner.pid}, {quack}, since {owner.started}" if owner else "owner: none running")
    if owner is not None:
        click.echo(f"dashboard: {dashboard} (`monitorkit token` prints a login URL)" if dashboard else
                   "dashboard: not served (this owner was started by `monitorkit collect`)")
    click.echo(f"file size: {size / 1e6:.2f} MB" + (f" (+ WAL {wal.stat().st_size / 1e6:.2f} MB)" if wal.exists() else ""))
    shown = [{**t, "rows": f"{t['rows']:,}"} for t in tiers]
    output.emit(shown, ["tier", "rows", "oldest", "newest", "retention"], fmt)
    click.echo(f"series: {series[0] if series else 0:,}")


@click.command()
@config_option
@output.format_options
def config(config_path: str | None, fmt: str | None) -> None:
    """Show the effective settings and where each came from."""
    settings = load_settings(config_path)
    rows = [{"key": k, "value": v, "source": s} for k, v, s in settings.items()]
    if fmt not in ("json", "csv"):
        rows = [{**r, "value": json.dumps(r["value"], default=str)} for r in rows]
    output.emit(rows, ["key", "value", "source"], fmt)


@click.command()
@output.format_options
def metrics(fmt: str | None) -> None:
    """List every metric monitorkit collects, with kind, unit, labels and help."""
    from monitorkit.catalog import all_metrics

    rows = [i._asdict() for i in all_metrics()]
    output.emit(rows, ["name", "kind", "unit", "labels", "help"], fmt)
