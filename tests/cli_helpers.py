"""The one way CLI tests run `monitorkit`: in-process with Click's CliRunner, like a terminal or a pipe."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from click.testing import CliRunner, Result

from monitorkit.cli import main


def invoke(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, width: int = 80, catch: bool = False,
    db: object = None,
) -> Result:
    """Run ``monitorkit ARGS`` in-process; stdout is not a terminal (the default format is plain).

    ``width`` is the terminal width for help and ``--format table`` ($COLUMNS); ``db`` appends
    ``--db DB``; ``catch=True`` lets Click turn an unexpected exception into ``exit_code`` 1.
    """
    argv = [*args, "--db", str(db)] if db is not None else list(args)
    environment = {"COLUMNS": str(width), **(env or {})}
    runner = CliRunner(catch_exceptions=catch)
    return runner.invoke(main, argv, env=environment, prog_name="monitorkit", terminal_width=width)
