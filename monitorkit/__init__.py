"""monitorkit: monitor a machine and its applications into one DuckDB file, query it with SQL."""

from __future__ import annotations

import importlib
import sys
import types
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
    from monitorkit.connect import connect
    from monitorkit.owner import Owner
    from monitorkit.store import Store

__version__ = "0.1.0"

# Imported on first use: DuckDB and pyarrow cost ~80 MB, which an application that only
# imports monitorkit.instrument must not pay.
_LAZY = {
    "Settings": "monitorkit.config",
    "load_settings": "monitorkit.config",
    "connect": "monitorkit.connect",
    "Owner": "monitorkit.owner",
    "Store": "monitorkit.store",
}


class _Package(types.ModuleType):
    """The package module: ``monitorkit.connect`` stays the function when the submodule of that name loads."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return  # the import system binds submodules on their parent; the function keeps the name
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:  # `import monitorkit; monitorkit.store.Store` keeps working
            return importlib.import_module(f"monitorkit.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"monitorkit.{name}":
                raise
    raise AttributeError(f"module 'monitorkit' has no attribute {name!r}")


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
