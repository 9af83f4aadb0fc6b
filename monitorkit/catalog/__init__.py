"""The metric catalog: what every metric monitorkit emits means, its naming rules, and docs/metrics.md.

Run ``python -m monitorkit.catalog > docs/metrics.md`` to regenerate the docs.
"""

from monitorkit.catalog.builtin import BUILTIN_MODULES, all_metrics
from monitorkit.catalog.docs import NOT_COLLECTED, PROCESS_GROUPS, render_markdown
from monitorkit.catalog.registry import (
    KINDS,
    REGISTRY,
    DuplicateMetricError,
    InvalidMetricInfoError,
    MetricInfo,
    MetricKind,
    check_info,
    register,
)

__all__ = [
    "BUILTIN_MODULES",
    "KINDS",
    "NOT_COLLECTED",
    "PROCESS_GROUPS",
    "REGISTRY",
    "DuplicateMetricError",
    "InvalidMetricInfoError",
    "MetricInfo",
    "MetricKind",
    "all_metrics",
    "check_info",
    "register",
    "render_markdown",
]
