"""Tool-execution metrics: one ``executions`` row per run plus run counts and durations per tool.

Each finished run waits in its registry's outbox (``executions.outbox``) until a sender takes it.

``@tool("resize_image")`` on a def or async def, or ``with tool_run("resize_image", {"size": "big"}) as run:``.
Outcomes: ok, error, timeout (TimeoutError), cancelled (asyncio.CancelledError, Ctrl-C).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar, overload

from monitorkit.errors import InvalidLabelError
from monitorkit.instrument.blocks import OUTCOMES, TimedBlock, outcome_of
from monitorkit.instrument.catalog import TOOL_DURATION, TOOL_RUNS, spec
from monitorkit.instrument.executions import Execution, outbox
from monitorkit.instrument.metrics import Counter, Histogram, counter, histogram
from monitorkit.instrument.registry import REGISTRY, Registry
from monitorkit.samples import HOST, validate_labels

F = TypeVar("F", bound=Callable[..., Any])
MAX_ERROR_MESSAGE = 2000
# Tool runs last from milliseconds (a parser) to minutes (a model call).
TOOL_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class ToolMetrics(NamedTuple):
    """The aggregate metrics of tool runs in one registry."""

    runs: Counter
    duration: Histogram


def tool_metrics(registry: Registry) -> ToolMetrics:
    """Return (creating once) the tool-run metrics of ``registry``."""

    def make(reg: Registry) -> ToolMetrics:
        return ToolMetrics(
            counter(*spec(TOOL_RUNS), registry=reg),
            histogram(*spec(TOOL_DURATION), registry=reg, buckets=TOOL_BUCKETS),
        )

    return registry.bundle("tools", make)


def check_tool_name(tool: object) -> str:
    """Return ``tool`` if it is a usable tool name (a non-empty label value), else raise."""
    if not isinstance(tool, str) or not tool.strip():
        raise InvalidLabelError(f"tool name must be a non-empty string, got {tool!r}")
    validate_labels({"tool": tool}, metric="tool_runs_total")
    return tool


class ToolRun(TimedBlock):
    """One timed tool run; inside the block ``run.set_label(k, v)`` adds labels, ``run.fail(...)`` marks an error."""

    def __init__(self, tool: str, labels: Mapping[str, str] | None = None, *, registry: Registry | None = None) -> None:
        self.tool = check_tool_name(tool)
        self.labels = validate_labels(labels, metric=f"tool {tool!r}")
        self.registry = registry if registry is not None else REGISTRY
        self.run_id = ""
        self.outcome: str | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None
        self._failure: tuple[str, str | None] | None = None

    def _fresh(self) -> ToolRun:
        return ToolRun(self.tool, self.labels, registry=self.registry)

    def _begin(self) -> None:
        self.run_id = os.urandom(16).hex()
        super()._begin()

    def set_label(self, name: str, value: str) -> None:
        """Add or replace one label of this run's executions row."""
        self.labels.update(validate_labels({name: value}, metric=f"tool {self.tool!r}"))

    def fail(self, error_type: str, message: str | None = None) -> None:
        """Record this run as an error without raising (e.g. the tool returned an error code)."""
        self._failure = (str(error_type), message)

    def _finish(self, exc: BaseException | None, seconds: float) -> None:
        self.outcome = outcome_of(exc)
        if exc is not None:
            self.error_type = type(exc).__name__
            self.error_message = str(exc)[:MAX_ERROR_MESSAGE] or None
        elif self._failure is not None:
            self.outcome = "error"
            self.error_type, message = self._failure
            self.error_message = message[:MAX_ERROR_MESSAGE] if message else None
        metrics = tool_metrics(self.registry)
        metrics.runs.labels(self.tool, self.outcome).inc()
        metrics.duration.labels(self.tool).observe(seconds)
        assert self.started is not None
        outbox(self.registry).put(Execution(
            self.run_id, self.tool, self.started, seconds, self.outcome, self.error_type, self.error_message,
            dict(self.labels), HOST, os.getpid(),
        ))


def tool_run(tool: str, labels: Mapping[str, str] | None = None, *, registry: Registry | None = None) -> ToolRun:
    """Return a block that records one run: ``with tool_run("resize", {"size": "big"}) as run: ...``."""
    return ToolRun(tool, labels, registry=registry)


@overload
def tool(name: F) -> F: ...


@overload
def tool(name: str | None = None, labels: Mapping[str, str] | None = None, *,
         registry: Registry | None = None) -> ToolRun: ...


def tool(name: Any = None, labels: Mapping[str, str] | None = None, *, registry: Registry | None = None) -> Any:
    """Decorate a def or async def so each call is a recorded run: ``@tool("resize_image")`` or ``@tool``."""
    if callable(name):  # bare @tool: the function's name is the tool's
        return ToolRun(name.__name__, labels, registry=registry)(name)
    if name is None:
        def named(fn: F) -> F:
            return ToolRun(fn.__name__, labels, registry=registry)(fn)

        return named
    return ToolRun(name, labels, registry=registry)


# Execution stays importable from here for monitorkit.owner.ingest (its home is executions.py).
__all__ = ["OUTCOMES", "Execution", "ToolRun", "tool", "tool_metrics", "tool_run"]
