"""Every metric monitorkit emits itself: its own health metrics here, the collectors' and instrument's by import."""

from __future__ import annotations

import importlib

from monitorkit.catalog.registry import REGISTRY, MetricInfo, register

# Modules whose import registers metrics; all_metrics() imports them so the list is complete.
BUILTIN_MODULES = ("monitorkit.collectors", "monitorkit.instrument.catalog", "monitorkit.interop.catalog")


def all_metrics() -> list[MetricInfo]:
    """Return every registered metric sorted by name, after importing the built-in collectors."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return sorted(REGISTRY.values(), key=lambda info: info.name)


# monitorkit's own health metrics, emitted by the writer and the collector scheduler.
register(MetricInfo("monitorkit_samples_dropped_total", "counter", "samples",
                    "Samples refused or dropped before storage, by reason.", ("reason",)))
register(MetricInfo("monitorkit_samples_written_total", "counter", "samples",
                    "Samples committed to the database."))
register(MetricInfo("monitorkit_write_batches_total", "counter", "batches",
                    "Write batches committed to the database."))
register(MetricInfo("monitorkit_write_seconds", "gauge", "seconds",
                    "Wall time of the last write batch."))
register(MetricInfo("monitorkit_queue_depth", "gauge", "samples",
                    "Samples waiting in the writer's queue."))
register(MetricInfo("monitorkit_series", "gauge", "series",
                    "Distinct series in the database (refused past store.max_series)."))
register(MetricInfo("monitorkit_collector_errors_total", "counter", "errors",
                    "Collector runs that raised an error.", ("collector",)))
register(MetricInfo("monitorkit_collector_duration_seconds", "gauge", "seconds",
                    "Wall time of the collector's last collect().", ("collector",)))
register(MetricInfo("monitorkit_collector_up", "gauge", "boolean",
                    "1 if the collector's last run succeeded, else 0.", ("collector",)))
