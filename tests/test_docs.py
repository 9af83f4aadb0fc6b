"""Every command is documented, and docs/cli.md is the current --help of each command.

Regenerate with ``make docs`` (which runs ``.venv/bin/python tests/test_docs.py > docs/cli.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pytest
from cli_helpers import invoke

from monitorkit.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parent.parent
CLI_DOCS = ROOT / "docs" / "cli.md"
REGENERATE = "make docs"


def help_text(*args: str) -> str:
    """Return ``monitorkit ARGS --help`` as an 80-column terminal shows it."""
    result = invoke([*args, "--help"], width=80)
    assert result.exit_code == 0, result.output
    return result.output.rstrip() + "\n"


def subcommands(name: str) -> list[str]:
    """Return the subcommands of group NAME (none for a plain command)."""
    cmd = main.get_command(click.Context(main), name)
    return sorted(cmd.commands) if isinstance(cmd, click.Group) else []


def render_cli_docs() -> str:
    """Return docs/cli.md: one section per command (and subcommand) holding its --help text."""
    names = sorted(COMMANDS)
    out = [
        "# The `monitorkit` command",
        "",
        f"<!-- Generated from each command's --help by `{REGENERATE}`; do not edit by hand. -->",
        "",
        "Library first: each command validates its options and calls one library function. "
        "Errors from the library are printed as one line and exit with status 1; warnings "
        "(such as a metric name nothing knows) go to stderr and never change the result.",
        "",
        "Listings take `--format`: `table` (the default on a terminal) fits the terminal's width, "
        "wrapping long cells and never cutting names, and shows each row as a block of lines when "
        "the columns cannot fit; `plain` (the default when stdout is a pipe or a file) prints one "
        "complete line per row; `json` keeps labels as objects; `csv` writes MAP and LIST values as "
        "JSON text. Data is printed literally: no markup or emoji codes are interpreted.",
        "",
        *[f"- [`monitorkit {name}`](#monitorkit-{name})" for name in names],
        "",
    ]
    for name in names:
        out += [f"## monitorkit {name}", "", "```", help_text(name).rstrip(), "```", ""]
        for sub in subcommands(name):
            out += [f"### monitorkit {name} {sub}", "", "```", help_text(name, sub).rstrip(), "```", ""]
    return "\n".join(out)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_is_documented(name: str) -> None:
    docs = (ROOT / "README.md").read_text() + (CLI_DOCS.read_text() if CLI_DOCS.exists() else "")
    assert f"monitorkit {name}" in docs, f"document `monitorkit {name}` in README.md or docs/cli.md ({REGENERATE})"
    for sub in subcommands(name):
        assert f"monitorkit {name} {sub}" in docs, f"document `monitorkit {name} {sub}` ({REGENERATE})"


def test_cli_docs_are_current() -> None:
    assert CLI_DOCS.exists(), f"docs/cli.md is missing: {REGENERATE}"
    assert CLI_DOCS.read_text() == render_cli_docs(), f"docs/cli.md is out of date: {REGENERATE}"


if __name__ == "__main__":
    sys.stdout.write(render_cli_docs())
