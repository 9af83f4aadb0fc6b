"""The `monitorkit` command: a thin layer over the library; the only place errors become exit codes."""

from __future__ import annotations

import importlib
from typing import Any

import click

from monitorkit.errors import MonitorkitError

# Subcommands live in modules named by domain and are imported only when used.
COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("monitorkit.cli.store", "collect"),
    "sql": ("monitorkit.cli.store", "sql"),
    "status": ("monitorkit.cli.store", "status"),
    "config": ("monitorkit.cli.store", "config"),
    "metrics": ("monitorkit.cli.store", "metrics"),
    "alerts": ("monitorkit.cli.alerts", "alerts"),
    "rules": ("monitorkit.cli.alerts", "rules"),
    "health": ("monitorkit.cli.alerts", "health"),
    "serve": ("monitorkit.cli.serve", "serve"),
    "layouts": ("monitorkit.cli.serve", "layouts"),
    "demo": ("monitorkit.cli.demo", "demo"),
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

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorkitError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=LazyGroup)
@click.version_option(package_name="monitorkit")
def main() -> None:
    """Monitor this machine and your applications into one DuckDB file; query it with SQL."""


db_option = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Database file (default: setting store.path, data/monitorkit.duckdb).",
)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Settings file (default: ./monitorkit.toml or $MONITORKIT_CONFIG).",
)
