"""What every helper module, test and benchmark shares: polling another process's progress, a child's environment.

It lives in tests/ (not in the package: it is no part of what users install) and imports nothing of
monitorkit, so the domain helper modules import it and benchmarks reach it by putting tests/ on
sys.path, as they already do for the receivers and the dashboard helpers.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], object], timeout: float = 15.0, every: float = 0.05) -> bool:
    """Poll ``check`` until true and tell whether it became true (for other processes' progress, not our own writes).

    The last check runs after the deadline, so a slow machine that got there just in time still counts.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return bool(check())


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check()`` until it returns something truthy and return it, or fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what} (last check returned {last!r})")
        time.sleep(every)


def child_env(**extra: str) -> dict[str, str]:
    """Return an environment for a child python: no MONITORKIT_* leaking in, unbuffered output, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORKIT_")}
    env.update({"PYTHONUNBUFFERED": "1"}, **extra)
    return env


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """Terminate ``proc`` (SIGTERM) and wait ``grace`` seconds for it; kill it if it is still there."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
