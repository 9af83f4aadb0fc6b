"""The `monitorkit sql` command: one read-only query, printed or written in the format asked for."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from monitorkit.cli import output
from monitorkit.cli.lake import lake_option, lake_reader
from monitorkit.cli.options import config_option, db_option, settings_for


@click.command()
@click.argument("query")
@db_option
@lake_option
@config_option
@click.option("--format", "fmt", type=click.Choice([*output.FORMATS, "parquet"]), default=None,
              help=output.FORMAT_HELP + " parquet needs --output or a redirected stdout.")
@click.option("--json", "fmt", flag_value="json", help="Same as --format json.")
@click.option("--output", "-o", "output_path", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of stdout.")
def sql(query: str, db: str | None, lake: str | None, config_path: str | None, fmt: str | None,
        output_path: str | None) -> None:
    """Run a read-only SQL QUERY against the database, live while the owner writes.

    A metric name the query spells out (name = '...', metric_range('...', ...)) that neither
    the catalog nor the series table knows is reported on stderr; the result is unchanged.
    """
    import duckdb

    from monitorkit.errors import QueryError
    from monitorkit.owner.connect import connect
    from monitorkit.rules.names import unknown_metrics

    con = connect(settings_for(db, config_path).get("store.path")) if lake is None else lake_reader(lake, config_path)
    try:
        try:
            table = con.execute(query).to_arrow_table()
        except (duckdb.Error, QueryError) as exc:
            raise QueryError(f"query failed: {exc}") from exc
        hints = unknown_metrics(con, query)
    finally:
        con.close()
    for hint in hints:
        click.echo(f"warning: {hint.message}", err=True)
    write_table(table, fmt, output_path)


def write_table(table: Any, fmt: str | None, path: str | None) -> None:
    """Write a pyarrow Table to ``path`` (or stdout) as table, plain, csv, json or parquet."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if path is None and sys.stdout.isatty():
            raise click.UsageError("parquet is binary: pass --output FILE or redirect stdout")
        pq.write_table(table, path or sys.stdout.buffer)
        return
    if path is not None:
        fmt = fmt or "plain"  # a file is not a terminal
        if fmt == "csv":
            text = output.arrow_csv(table)
        elif fmt == "json":
            text = output.to_json(output.arrow_rows(table)) + "\n"
        else:
            width = output.terminal_width() if fmt == "table" else None
            text = output.render_table(output.arrow_rows(table), list(table.column_names), width=width, cell=output.data_cell)
        Path(path).write_text(text)
        return
    fmt = fmt or output.default_format()
    if fmt == "csv":
        click.echo(output.arrow_csv(table), nl=False)
        return
    rows = output.arrow_rows(table)
    output.emit(rows, list(table.column_names), fmt, cell=output.data_cell)
    if fmt in ("table", "plain"):
        count = len(rows)
        click.echo(f"{count} row{'' if count == 1 else 's'}", err=fmt == "plain")

