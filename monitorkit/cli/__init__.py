"""The `monitorkit` command: a thin layer over the library; the only place errors become exit codes."""

from __future__ import annotations

import importlib
from typing import Any

import click

from monitorkit.errors import MonitorkitError

# Subcommands live in modules named by domain and are imported only when used.
COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("monitorkit.cli.store", "collect"),
    "sql": ("monitorkit.cli.sql", "sql"),
    "status": ("monitorkit.cli.store", "status"),
    "config": ("monitorkit.cli.store", "config"),
    "metrics": ("monitorkit.cli.store", "metrics"),
    "alerts": ("monitorkit.cli.alerts", "alerts"),
    "rules": ("monitorkit.cli.rules", "rules"),
    "health": ("monitorkit.cli.health", "health"),
    "serve": ("monitorkit.cli.serve", "serve"),
    "token": ("monitorkit.cli.serve", "token"),
    "layouts": ("monitorkit.cli.serve", "layouts"),
    "demo": ("monitorkit.cli.demo", "demo"),
    "hub": ("monitorkit.cli.lake", "hub"),
    "export": ("monitorkit.cli.export", "export"),
}
# The first line of each command's help, so `monitorkit --help` imports no command module
# (tests/test_cli_help.py checks that these match the commands).
SUMMARIES: dict[str, str] = {
    "collect": "Own the database, collect host metrics and evaluate rules until Ctrl-C or SIGTERM.",
    "sql": "Run a read-only SQL QUERY against the database, live while the owner writes.",
    "status": "Show the owner, its dashboard, rows and time span per tier, and the file size.",
    "config": "Show the effective settings and where each came from.",
    "metrics": "List every metric monitorkit collects, with kind, unit, labels and help.",
    "alerts": "List, inspect, acknowledge and silence alerts.",
    "rules": "List, check, unit-test and backtest alert and health rules.",
    "health": "Show every component's health (live from the health views) and the overall status.",
    "serve": "Own the database, collect, evaluate rules and serve the dashboard until Ctrl-C or SIGTERM.",
    "token": "Print a fresh login URL for the running dashboard, issued through its owner.",
    "layouts": "List, export and import dashboard layouts (JSON files you can keep in git).",
    "demo": "Write a realistic demo database: several hosts and days with documented incidents.",
    "hub": "Maintain the fleet lake and evaluate fleet rules over every host until Ctrl-C or SIGTERM.",
    "export": "Export samples to zstd Parquet files partitioned by day, readable by pandas, polars and DuckDB.",
}


class LazyGroup(click.Group):
    """A group that imports each subcommand's module on first use and maps library errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [(name, click.Command(name, help=SUMMARIES[name]).get_short_help_str(limit)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorkitError as exc:
            from monitorkit.cli.errors import explain

            raise click.ClickException(explain(exc)) from exc


@click.group(cls=LazyGroup)
@click.version_option(package_name="monitorkit")
def main() -> None:
    """Monitor this machine and your applications into one DuckDB file; query it with SQL.

    Listings print a table fitted to the terminal, or plain complete lines when stdout is
    not a terminal; --format json or csv for scripts. Warnings go to stderr.
    """
