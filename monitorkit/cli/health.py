"""The `monitorkit health` command."""

from __future__ import annotations

import click

from monitorkit.cli import output
from monitorkit.cli.alerts import open_db
from monitorkit.cli.options import config_option, db_option


@click.command()
@db_option
@config_option
@click.option("--history", "show_history", is_flag=True, help="Show the latest status changes too.")
@output.format_options
def health(db: str | None, config_path: str | None, show_history: bool, fmt: str | None) -> None:
    """Show every component's health (live from the health views) and the overall status."""
    from monitorkit.rules.report import health_report

    con = open_db(db, config_path)
    try:
        report = health_report(con, history=20 if show_history else 0)
    finally:
        con.close()
    if fmt == "json":
        click.echo(output.to_json({"overall": report.overall, "components": report.rows, "history": report.history}))
        return
    output.emit(report.rows, ["component", "status", "reason", "since", "check_name"], fmt,
                empty="no health checks installed")
    if fmt != "csv":
        click.echo(f"overall: {report.overall} ({report.components} components, {report.degraded} degraded, "
                   f"{report.failing} failing)")
    if show_history:
        output.emit(report.history, ["time", "component", "previous", "status", "reason"], fmt, empty="no history")
