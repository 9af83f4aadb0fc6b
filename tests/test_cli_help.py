"""`monitorkit --help` is cheap: it imports no command module, and its summaries are the commands' own."""

from __future__ import annotations

import click
import pytest
from cli_helpers import invoke
from store_helpers import PYTHON, run_python

from monitorkit.cli import COMMANDS, SUMMARIES, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_summary_is_the_first_line_of_the_commands_help(name: str) -> None:
    cmd = main.get_command(click.Context(main), name)
    assert cmd is not None
    assert SUMMARIES[name] == cmd.get_short_help_str(limit=10_000), f"update SUMMARIES[{name!r}] in monitorkit/cli"


def test_group_help_shows_the_summaries() -> None:
    result = invoke(["--help"], width=200)
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name}  " in result.output and SUMMARIES[name] in result.output
    assert "plain complete lines when" in result.output  # the default format off a terminal is named


def test_help_imports_no_command_module() -> None:
    code = """
        import sys
        from monitorkit.cli import main
        try:
            main(["--help"], prog_name="monitorkit")
        except SystemExit:
            pass
        heavy = ("monitorkit.cli.", "panel", "bokeh", "duckdb", "pyarrow", "rich")
        print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)
    """
    child = run_python(code)
    assert child.returncode == 0, child.stderr
    assert child.stderr.strip() == "[]"
    assert "serve    Own the database" in child.stdout


def test_python_m_monitorkit_cli_is_the_command() -> None:
    import subprocess

    child = subprocess.run([PYTHON, "-m", "monitorkit.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("Usage: monitorkit [OPTIONS] COMMAND [ARGS]...")
