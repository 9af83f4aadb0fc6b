"""Typed exceptions raised by monitorkit; only the CLI turns them into exit codes."""

from __future__ import annotations


class MonitorkitError(Exception):
    """Base class of every error monitorkit raises on purpose."""


class InvalidSampleError(MonitorkitError, ValueError):
    """A sample was refused: bad metric name, label or value."""


class InvalidMetricNameError(InvalidSampleError):
    """A metric name does not follow the Prometheus naming rules."""


class InvalidLabelError(InvalidSampleError):
    """A label name or label value is not acceptable."""


class InvalidValueError(InvalidSampleError):
    """A sample value is not a finite number."""


class CardinalityLimitError(InvalidSampleError):
    """A metric has more distinct label sets than its configured limit."""


class StoreError(MonitorkitError):
    """The database file cannot be used."""


class StoreCorruptError(StoreError):
    """The file at the database path is not a readable DuckDB database."""


class StorePermissionError(StoreError, PermissionError):
    """The database file or its folder cannot be written."""


class OwnerExistsError(StoreError):
    """Another process already owns the database file."""

    def __init__(self, path: str, pid: int | None) -> None:
        who = f"process {pid}" if pid else "another process"
        super().__init__(
            f"{path} is owned by {who}; only one owner may write a database file. "
            "Read it with monitorkit.connect() or `monitorkit sql`, or stop that process first."
        )
        self.path = path
        self.pid = pid


class StoreWriteError(StoreError):
    """A commit failed (disk full, read-only file, corrupt block): what was queued before it is not stored."""


class StoreClosedError(StoreError):
    """The store was closed; no more samples can be written."""


class ConfigError(MonitorkitError):
    """A setting in monitorkit.toml or the environment is invalid."""


class QueryError(MonitorkitError):
    """A query was refused or failed."""


class OwnerApiError(MonitorkitError):
    """The owner's API refused a request or could not be reached; the message says which and why."""
