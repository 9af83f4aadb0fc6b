"""``monitorkit export``: samples to zstd Parquet partitioned by day (a thin layer over monitorkit.interop.export)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from monitorkit.cli.options import config_option, db_option, parse_when, settings_for


@click.command()
@db_option
@config_option
@click.option("--from", "start", required=True, help="Start: 2026-12-01, 2026-12-01T10:00, now or a duration ago (7d).")
@click.option("--to", "end", default="now", show_default=True, help="End (excluded), same forms as --from.")
@click.option("--metric", "metrics", multiple=True,
              help="A metric name or pattern (net_*); repeat for more. Default: every metric.")
@click.option("--format", "fmt", type=click.Choice(["parquet"]), default="parquet", show_default=True,
              help="File format: zstd-compressed Parquet.")
@click.option("--tier", type=click.Choice(["raw", "1m", "1h"]), default="raw", show_default=True,
              help="raw samples, or the 1-minute / 1-hour rollups (min, max, sum, count, avg, last).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="exports", show_default=True,
              help="Folder to write day=YYYY-MM-DD/part-0.parquet into.")
@click.option("--overwrite", is_flag=True, help="Replace day files that exist already.")
def export(db: str | None, config_path: str | None, start: str, end: str, metrics: tuple[str, ...], fmt: str,
           tier: str, out: str, overwrite: bool) -> None:
    """Export samples to zstd Parquet files partitioned by day, readable by pandas, polars and DuckDB.

    Reads live from the running owner (or the file when none runs), one hour at a time. Example:
    monitorkit export --from 7d --metric cpu_percent --metric 'net_*' --out exports/
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from monitorkit.interop.export import export_parquet

    settings = settings_for(db, config_path)
    now = datetime.now(UTC)
    first, last = parse_when(start, now), parse_when(end, now)
    show = sys.stderr.isatty()
    bar = Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TextColumn("hours, {task.fields[rows]:,} rows"),
                   TimeRemainingColumn(), transient=True, disable=not show)
    with bar:
        task = bar.add_task("export", total=None, rows=0)
        summary = export_parquet(settings.get("store.path"), Path(out), first, last, metrics=metrics, tier=tier,
                                 overwrite=overwrite,
                                 progress=lambda done, total, rows: bar.update(task, completed=done, total=total,
                                                                               rows=rows))
    if not summary.files:
        click.echo(f"monitorkit: no samples between {first.isoformat()} and {last.isoformat()}"
                   f"{' for ' + ', '.join(metrics) if metrics else ''}; nothing written", err=True)
        return
    click.echo(f"wrote {summary.rows:,} rows in {len(summary.files)} day file(s), "
               f"{summary.bytes / 2**20:.1f} MiB, under {out}/")
    for path in summary.files:
        click.echo(str(path))
