"""CLI commands over the store: collect, sql, status, config, metrics."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click
from rich.console import Console
from rich.table import Table

from monitorkit.cli import config_option, db_option
from monitorkit.config import Settings, load_settings


def settings_for(db: str | None, config_path: str | None) -> Settings:
    """Load settings and apply the --db override."""
    return load_settings(config_path).with_overrides({"store.path": db})


def install_stop_handlers(stop: threading.Event) -> None:
    """Make SIGTERM and SIGINT set ``stop`` so the owner shuts down cleanly."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


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
        if duration is not None:
            timer = threading.Timer(duration, stop.set)
            timer.daemon = True
            timer.start()

    run_owner(settings, stop, on_ready=ready)
    click.echo("monitorkit: stopped; last batch written", err=True)


@click.command()
@click.argument("query")
@db_option
@config_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to this file instead of stdout.")
def sql(query: str, db: str | None, config_path: str | None, fmt: str, output: str | None) -> None:
    """Run a read-only SQL QUERY against the database, live while the owner writes."""
    import duckdb

    from monitorkit.errors import QueryError
    from monitorkit.owner.connect import connect

    settings = settings_for(db, config_path)
    con = connect(settings.get("store.path"))
    try:
        table = con.execute(query).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from exc
    finally:
        con.close()
    if fmt == "table":
        _print_table(table, output)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        if output is None and sys.stdout.isatty():
            raise click.UsageError("parquet is binary: pass --output FILE or redirect stdout")
        pq.write_table(table, output or sys.stdout.buffer)
    else:
        text = _to_csv(table) if fmt == "csv" else json.dumps(table.to_pylist(), default=str, indent=1)
        if output:
            Path(output).write_text(text)
        else:
            click.echo(text, nl=False)


def _to_csv(table: object) -> str:
    import io

    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    pcsv.write_csv(table, buf)  # type: ignore[arg-type]
    return buf.getvalue().decode()


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        return "{" + ", ".join(f"{k}={v}" for k, v in value) + "}"  # a MAP column
    return str(value)


def _print_table(table: object, output: str | None) -> None:
    import pyarrow as pa

    assert isinstance(table, pa.Table)
    rich_table = Table(*table.column_names)
    for row in table.to_pylist():
        rich_table.add_row(*(_cell(v) for v in row.values()))
    console = Console(file=open(output, "w") if output else None, width=None if not output else 200)
    console.print(rich_table)
    console.print(f"{table.num_rows} rows", style="dim")


@click.command()
@db_option
@config_option
def status(db: str | None, config_path: str | None) -> None:
    """Show the owner, rows and time span per tier, and the file size."""
    from monitorkit.owner.connect import connect
    from monitorkit.owner.sidecar import read_owner

    settings = settings_for(db, config_path)
    path = Path(settings.get("store.path"))
    owner = read_owner(path)
    console = Console()
    console.print(f"database: {path}")
    console.print(f"owner: pid {owner.pid}, quack port {owner.port}, since {owner.started}" if owner else "owner: none running")
    size = path.stat().st_size if path.exists() else 0
    wal = Path(f"{path}.wal")
    console.print(f"file size: {size / 1e6:.2f} MB" + (f" (+ WAL {wal.stat().st_size / 1e6:.2f} MB)" if wal.exists() else ""))
    con = connect(path)
    try:
        rows = con.execute("SELECT tier, rows, oldest, newest FROM tier_status").fetchall()
        series = con.execute("SELECT count(*) FROM series").fetchone()
    finally:
        con.close()
    table = Table("tier", "rows", "oldest", "newest", "retention")
    retention = settings["retention"]
    for tier, count, oldest, newest in rows:
        table.add_row(tier, f"{count:,}", str(oldest or "-"), str(newest or "-"), str(retention.get(tier, "-")))
    console.print(table)
    console.print(f"series: {series[0] if series else 0:,}")


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def config(config_path: str | None, as_json: bool) -> None:
    """Show the effective settings and where each came from."""
    settings = load_settings(config_path)
    if as_json:
        click.echo(json.dumps([{"key": k, "value": v, "source": s} for k, v, s in settings.items()], default=str, indent=1))
        return
    table = Table("setting", "value", "source")
    for key, value, source in settings.items():
        table.add_row(key, json.dumps(value, default=str), source)
    Console().print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def metrics(as_json: bool) -> None:
    """List every metric monitorkit collects, with kind, unit, labels and help."""
    import monitorkit.collectors  # noqa: F401  registers the collectors' metrics
    from monitorkit.catalog import all_metrics

    infos = all_metrics()
    if as_json:
        click.echo(json.dumps([i._asdict() for i in infos], indent=1))
        return
    table = Table("name", "kind", "unit", "labels", "help")
    for i in infos:
        table.add_row(i.name, i.kind, i.unit, ",".join(i.labels), i.help)
    Console().print(table)
