"""Timed blocks: one object usable as ``with``, ``async with`` and as a decorator of sync or async functions."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from monitorkit.samples import utcnow

F = TypeVar("F", bound=Callable[..., Any])
B = TypeVar("B", bound="TimedBlock")

OUTCOMES = ("ok", "error", "timeout", "cancelled")


def outcome_of(exc: BaseException | None) -> str:
    """Return ok, timeout (TimeoutError), cancelled (asyncio/futures cancellation, Ctrl-C) or error."""
    if exc is None:
        return "ok"
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError since 3.11
        return "timeout"
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled"
    # Look the cancellation types up only if their modules are loaded: importing asyncio costs ~8 MB.
    for module in ("asyncio", "concurrent.futures"):
        mod = sys.modules.get(module)
        if mod is not None and isinstance(exc, mod.CancelledError):
            return "cancelled"
    return "error"


class TimedBlock:
    """Time a block and record it once it ends; subclasses implement ``_finish`` and ``_fresh``.

    ``with block:`` / ``async with block:`` time that one block; ``@block`` times each call of
    the decorated function (sync or ``async def``) with a fresh copy, so concurrent calls do
    not share state. Exceptions are recorded, then re-raised unchanged.
    """

    started: datetime | None = None
    duration_s: float | None = None
    _t0 = 0.0

    def _fresh(self: B) -> B:
        raise NotImplementedError

    def _finish(self, exc: BaseException | None, seconds: float) -> None:
        raise NotImplementedError

    def _begin(self) -> None:
        self.started = utcnow()
        self._t0 = time.perf_counter()

    def _end(self, exc: BaseException | None) -> None:
        self.duration_s = time.perf_counter() - self._t0
        self._finish(exc, self.duration_s)

    def __enter__(self: B) -> B:
        self._begin()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._end(ev)

    async def __aenter__(self: B) -> B:
        self._begin()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._end(ev)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` (def or async def) so every call is timed and recorded."""
        import functools
        import inspect

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"cannot time generator {fn.__qualname__}: wrap the loop that consumes it instead")

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]
