"""monitorkit: monitor a machine and its applications into one DuckDB file, query it with SQL."""

from monitorkit.config import Settings, load_settings
from monitorkit.connect import connect
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
from monitorkit.owner import Owner
from monitorkit.samples import Sample, make_sample
from monitorkit.store import Store

__version__ = "0.1.0"

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
