"""Which group a process belongs to: stable labels (name, user, command) instead of its pid.

Like process-exporter's name groups, a series stands for every process that runs the same
program as the same user, so short-lived processes with new pids add no series. The
``command`` label is the command line reduced to what names the program: the executable,
and for interpreters the script, module or jar they run (``python3 -m http.server``,
``python3 manage.py``, ``java -jar app.jar``). Arguments, ports, paths and ids are dropped;
process titles (``postgres: alice db 10.0.0.1(5432) idle``) keep their first word. Kernel
threads (no command line) are grouped by the part of their name before ``/``
(``kworker/u8:2-events`` is ``kworker``), since the kernel renames those at will.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import NamedTuple

# Interpreters whose first operand (the script) names the program, e.g. python3.11, node, bash.
INTERPRETER = re.compile(
    r"(python|pypy|ruby|perl|php|node|nodejs|deno|bun|java|bash|sh|dash|zsh|ksh|lua|luajit|Rscript|tclsh|wish)"
    r"[0-9.]*"
)
# Options taking a value in the next argument (skipped with it while looking for the script).
OPTION_VALUES = frozenset({"-W", "-X", "-cp", "-classpath", "--class-path", "-r", "--require", "-o"})
# Options whose value is the program: python -m module, java -jar app.jar.
PROGRAM_OPTIONS = frozenset({"-m", "-jar"})
# Options whose value is inline code, unbounded: only the option is kept (python3 -c).
CODE_OPTIONS = frozenset({"-c", "-e", "--eval", "--print"})
MAX_COMMAND = 64


class GroupKey(NamedTuple):
    """The labels of one process group."""

    name: str
    user: str
    command: str

    def labels(self) -> dict[str, str]:
        """Return the group as sample labels."""
        return {"name": self.name, "user": self.user, "command": self.command}


# Where processes go once a collector holds its maximum of groups.
OTHER = GroupKey("(other)", "(other)", "(other)")


def _program(argv: Sequence[str]) -> str:
    """Return the executable and, for an interpreter, what it runs."""
    exe = os.path.basename(argv[0]).lstrip("-")  # "-bash": a login shell
    if not INTERPRETER.fullmatch(exe):
        return exe
    args = iter(argv[1:])
    for arg in args:
        if arg in PROGRAM_OPTIONS:
            return f"{exe} {arg} {os.path.basename(next(args, ''))}".rstrip()
        if arg in CODE_OPTIONS:
            return f"{exe} {arg}"
        if arg in OPTION_VALUES:
            next(args, None)
        elif arg == "--":
            continue
        elif not arg.startswith("-"):
            return f"{exe} {os.path.basename(arg)}"
    return exe


def command_group(argv: Sequence[str]) -> str:
    """Return the command-line group of ``argv``: ``["/usr/bin/python3", "-u", "app.py", "--port=1"]`` -> ``python3 app.py``."""
    args = [a for a in argv if a]
    if not args:
        return ""
    title = args[0].strip()
    # One argument with spaces is a process title written over argv ("postgres: alice db ..."), unless it is a
    # path with spaces in it ("/opt/My App/bin/app").
    if len(args) == 1 and " " in title and (not title.startswith("/") or ":" in title.split(" ", 1)[0]):
        args = [re.split(r"[:\s]", title, maxsplit=1)[0]]
    return _program(args)[:MAX_COMMAND]


def group_of(name: str, user: str, argv: Sequence[str]) -> GroupKey:
    """Return the group of a process from its name, user and command line."""
    command = command_group(argv)
    if not command:  # a kernel thread (or a zombie): the kernel numbers and renames these
        name = name.split("/", 1)[0]
    return GroupKey(name, user, command)
