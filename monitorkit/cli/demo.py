"""The `monitorkit demo` command: write the deterministic demo database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from monitorkit.cli import output


def parse_end(value: str | None, days: int, step: int) -> datetime | None:
    """Return the start time for ``--end`` ('now' or an ISO time), or None for the fixed default start."""
    from monitorkit.demo import DemoArgumentError

    if value is None:
        return None
    if value == "now":
        end = datetime.now(UTC)
    else:
        try:
            end = datetime.fromisoformat(value)
        except ValueError as exc:
            raise DemoArgumentError(f"--end must be 'now' or an ISO time like 2026-01-08T00:00:00+00:00, got {value!r}") from exc
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
    epoch = int(end.timestamp()) // step * step  # whole steps keep sample times aligned
    return datetime.fromtimestamp(epoch, UTC) - timedelta(days=days)


@click.command()
@click.option("--db", "db", type=click.Path(dir_okay=False), default="data/demo.duckdb", show_default=True,
              help="Database file to create.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed: the same seed writes the same rows.")
@click.option("--days", type=int, default=3, show_default=True, help="Days of history.")
@click.option("--hosts", type=int, default=3, show_default=True, help="Hosts (web-1, db-1, worker-1, web-2, ...).")
@click.option("--step", type=int, default=10, show_default=True, help="Seconds between samples.")
@click.option("--end", "end", default=None,
              help="End the history 'now' or at an ISO time (default: start 2026-01-05 00:00 UTC, deterministic).")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
def demo(db: str, seed: int, days: int, hosts: int, step: int, end: str | None, force: bool, quiet: bool) -> None:
    """Write a realistic demo database: several hosts and days with documented incidents."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from monitorkit.demo import DemoConfig, check_config, generate

    start = parse_end(end, days, step) if step > 0 and days > 0 else None
    config = DemoConfig(seed=seed, days=days, hosts=hosts, step=step)
    if start is not None:
        config = config._replace(start=start)
    check_config(config)
    console = Console(stderr=True, quiet=quiet)
    columns = (TextColumn("[bold]demo[/]"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("writing", total=config.steps + 1)
        report = generate(db, config, force=force, progress=lambda done, total: bar.update(task, completed=done))
    if quiet:
        return
    click.echo(
        f"wrote {report.samples:,} samples in {report.series} series and {report.executions:,} tool runs to {report.path} "
        f"({config.start:%Y-%m-%d %H:%M} to {config.end:%Y-%m-%d %H:%M} UTC, every {config.step} s)", err=True
    )
    click.echo("injected incidents (monitorkit.demo.INCIDENTS, docs/notebooks.md):", err=True)
    rows = [{"kind": i.kind, "host": i.host, "from": f"{i.start:%m-%d %H:%M}", "to": f"{i.end:%m-%d %H:%M}",
             "metric": i.metric} for i in report.incidents]
    output.emit(rows, ["kind", "host", "from", "to", "metric"], None, err=True)
