"""The registry of every metric monitorkit emits: ``MetricInfo``, its naming rules and ``register()``.

A leaf: collectors and instrumentation register their metrics here at import; the listing of
every built-in metric is ``monitorkit.catalog.all_metrics()``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

from monitorkit.errors import MonitorkitError
from monitorkit.samples import LABEL_NAME_RE, validate_name

MetricKind = Literal["counter", "gauge", "histogram"]
KINDS: tuple[str, ...] = get_args(MetricKind)

class MetricInfo(NamedTuple):
    """What one metric means: ``MetricInfo("load1", "gauge", "processes", "1-minute load average")``."""

    name: str
    kind: MetricKind
    unit: str
    help: str
    labels: tuple[str, ...] = ()


class InvalidMetricInfoError(MonitorkitError, ValueError):
    """A metric definition breaks the naming rules (kind, unit, help, labels, ``_total``)."""


class DuplicateMetricError(InvalidMetricInfoError):
    """A metric name is already registered with a different definition."""


REGISTRY: dict[str, MetricInfo] = {}


def check_info(info: MetricInfo) -> MetricInfo:
    """Return ``info`` if it follows monitorkit's metric rules, else raise."""
    validate_name(info.name)
    if info.kind not in KINDS:
        raise InvalidMetricInfoError(f"metric {info.name!r} has kind {info.kind!r}; use one of {', '.join(KINDS)}")
    if info.kind == "counter" and not info.name.endswith("_total"):
        raise InvalidMetricInfoError(
            f"counter {info.name!r} must end in '_total' (Prometheus convention), e.g. {info.name + '_total'!r}"
        )
    if info.kind != "counter" and info.name.endswith("_total"):
        raise InvalidMetricInfoError(f"{info.kind} {info.name!r} ends in '_total', which is reserved for counters")
    if not info.unit.strip() or not info.help.strip():
        raise InvalidMetricInfoError(f"metric {info.name!r} needs a non-empty unit and help text")
    for label in info.labels:
        if not LABEL_NAME_RE.match(label) or label.startswith("__"):
            raise InvalidMetricInfoError(f"metric {info.name!r} has an invalid label name {label!r}")
    if len(set(info.labels)) != len(info.labels):
        raise InvalidMetricInfoError(f"metric {info.name!r} lists a label twice: {info.labels}")
    return info


def register(info: MetricInfo) -> MetricInfo:
    """Add ``info`` to REGISTRY and return it; an identical re-registration (module reload) is a no-op."""
    check_info(info)
    known = REGISTRY.get(info.name)
    if known is not None and known != info:
        raise DuplicateMetricError(
            f"metric {info.name!r} is already registered as {known}; pick another name or reuse that definition"
        )
    REGISTRY[info.name] = info
    return info
