"""``python -m monitorkit.cli``: the same as the ``monitorkit`` command."""

from monitorkit.cli import main

main(prog_name="monitorkit")
