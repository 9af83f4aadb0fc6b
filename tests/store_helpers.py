"""Shared pieces of the store tests: isolated settings, the venv python, child processes."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_helpers import child_env

from monitorkit.config import DEFAULTS, Settings

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))


def isolated_settings(**overrides: Any) -> Settings:
    """Return the default settings untouched by ./monitorkit.toml or MONITORKIT_* variables.

    ``isolated_settings(**{"retention.raw": "1h"})`` applies dotted overrides.
    """
    base = Settings(copy.deepcopy(DEFAULTS), {})
    return base.with_overrides(overrides, source="test") if overrides else base


def run_python(
    code: str, *args: str, timeout: float = 60, cwd: str | Path | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) in a fresh venv python with ``args`` as sys.argv[1:]; return the result."""
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=child_env(),
        check=check,
    )


def spawn_python(code: str, *args: str, cwd: str | Path | None = None) -> subprocess.Popen[str]:
    """Start ``code`` (dedented) in a venv python with pipes (stdout line-buffered); the caller waits."""
    return subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=cwd,
        env=child_env(),
    )


def monitorkit_cli(
    args: Sequence[str], *, timeout: float = 60, cwd: str | Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``monitorkit`` command in a child venv python and return its result."""
    code = "from monitorkit.cli import main; main(prog_name='monitorkit')"
    return subprocess.run(
        [PYTHON, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=child_env()
    )


def read_line(proc: subprocess.Popen[str], prefix: str) -> str:
    """Return the next stdout line of ``proc`` starting with ``prefix``; fail with its stderr if it ends first."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    proc.wait(timeout=10)
    stderr = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"child exited ({proc.returncode}) before printing {prefix!r}:\n{stderr}")
