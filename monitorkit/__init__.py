"""monitorkit: monitor a machine and its applications into one DuckDB file, query it with SQL."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from monitorkit.errors import (
    InvalidLabelError,
    InvalidMetricNameError,
    InvalidSampleError,
    InvalidValueError,
    MonitorkitError,
    OwnerExistsError,
    StoreCorruptError,
    StoreError,
    StorePermissionError,
)
from monitorkit.samples import Sample, make_sample

if TYPE_CHECKING:
    from monitorkit.config import Settings, load_settings
    from monitorkit.owner.connect import connect
    from monitorkit.owner.owner import Owner
    from monitorkit.store import Store

__version__ = "0.1.0"

# Imported on first use: DuckDB and pyarrow cost ~80 MB, which an application that only
# imports monitorkit.instrument must not pay.
_LAZY = {
    "Settings": "monitorkit.config",
    "load_settings": "monitorkit.config",
    "connect": "monitorkit.owner.connect",
    "Owner": "monitorkit.owner.owner",
    "Store": "monitorkit.store.store",
}


def __getattr__(name: str) -> Any:
    """Load the heavy public names on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'monitorkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "InvalidLabelError",
    "InvalidMetricNameError",
    "InvalidSampleError",
    "InvalidValueError",
    "MonitorkitError",
    "Owner",
    "OwnerExistsError",
    "Sample",
    "Settings",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StorePermissionError",
    "__version__",
    "connect",
    "load_settings",
    "make_sample",
]
