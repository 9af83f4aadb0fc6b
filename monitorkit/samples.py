"""The Sample record and the rules every metric name, label and value must follow."""

from __future__ import annotations

import math
import re
import socket
import time as _clock
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from monitorkit.errors import InvalidLabelError, InvalidMetricNameError, InvalidValueError

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
MAX_NAME_LENGTH = 200
MAX_LABEL_VALUE_LENGTH = 1024
MAX_LABELS = 64  # label pairs per sample (Prometheus's label_limit in spirit): a sample is not a document
MAX_FUTURE_SECONDS = 86_400.0  # a sample stamped further ahead is a clock or unit error, not data

HOST = socket.gethostname()


class Sample(NamedTuple):
    """One observation of one series: ``Sample(time, "cpu_percent", {"cpu": "0"}, 12.5)``."""

    time: datetime
    name: str
    labels: Mapping[str, str]
    value: float
    host: str = HOST


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid Prometheus metric name, else raise."""
    if not isinstance(name, str) or not METRIC_NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidMetricNameError(
            f"invalid metric name {name!r}: use letters, digits, '_' and ':', not starting "
            f"with a digit, at most {MAX_NAME_LENGTH} characters (e.g. 'http_requests_total')"
        )
    return name


def validate_labels(labels: object, *, metric: str = "") -> dict[str, str]:
    """Return ``labels`` as a plain dict after checking names and string values."""
    where = f" on metric {metric!r}" if metric else ""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidLabelError(f"labels{where} must be a mapping of str to str, got {type(labels).__name__}")
    if len(labels) > MAX_LABELS:
        raise InvalidLabelError(f"{len(labels)} labels{where}; at most {MAX_LABELS} per sample")
    out: dict[str, str] = {}
    for key, val in labels.items():
        if not isinstance(key, str) or not LABEL_NAME_RE.match(key) or key.startswith("__") or len(key) > MAX_NAME_LENGTH:
            raise InvalidLabelError(
                f"invalid label name {key!r}{where}: use letters, digits and '_', not starting "
                "with a digit or '__'"
            )
        if not isinstance(val, str):
            raise InvalidLabelError(
                f"label {key!r}{where} has a {type(val).__name__} value {val!r}; label values "
                f"must be strings (pass str({val!r}) if that is what you mean)"
            )
        if len(val) > MAX_LABEL_VALUE_LENGTH:
            raise InvalidLabelError(f"label {key!r}{where} is longer than {MAX_LABEL_VALUE_LENGTH} characters")
        out[key] = val
    return out


def validate_value(value: object, *, metric: str = "") -> float:
    """Return ``value`` as a finite float, else raise."""
    where = f" for metric {metric!r}" if metric else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueError(f"value{where} must be a number, got {type(value).__name__} {value!r}")
    fvalue = float(value)
    if not math.isfinite(fvalue):
        raise InvalidValueError(f"value{where} is {fvalue}; only finite numbers are stored (skip the sample instead)")
    return fvalue


def validate_time(time: object) -> datetime:
    """Return ``time`` as an aware datetime; naive datetimes are refused."""
    if not isinstance(time, datetime):
        raise InvalidValueError(f"sample time must be a datetime, got {type(time).__name__}")
    if time.tzinfo is None:
        raise InvalidValueError("sample time is naive; pass an aware datetime (e.g. datetime.now(timezone.utc))")
    stamp = time.timestamp()
    if stamp < 0 or stamp > _clock.time() + MAX_FUTURE_SECONDS:
        raise InvalidValueError(
            f"sample time {time.isoformat()} is before 1970 or more than a day ahead; "
            "check the clock and the unit (seconds, milliseconds or microseconds since the epoch)"
        )
    return time


def make_sample(
    name: str,
    value: float,
    labels: Mapping[str, str] | None = None,
    time: datetime | None = None,
    host: str = HOST,
) -> Sample:
    """Validate the parts and return a Sample (time defaults to now)."""
    name = validate_name(name)
    return Sample(
        validate_time(time) if time is not None else utcnow(),
        name,
        validate_labels(labels, metric=name),
        validate_value(value, metric=name),
        host,
    )


def validate_sample(sample: Sample) -> Sample:
    """Return a Sample whose every part has been checked."""
    return make_sample(sample.name, sample.value, sample.labels, sample.time, sample.host)


class SampleValidator:
    """Validate samples, remembering series (name + labels) already checked so repeats cost little.

    Values and times are checked every time; a series is checked in full only the first time.
    """

    def __init__(self, max_series: int = 100_000) -> None:
        self._seen: set[tuple[str, str, tuple[tuple[object, object], ...]]] = set()
        self._max = max_series
        self._time: object = None  # the last time that passed validate_time

    def __call__(self, sample: Sample) -> Sample:
        """Return a checked copy of ``sample`` or raise the typed error validate_sample raises."""
        try:
            key = (sample.host, sample.name, tuple(sample.labels.items()))
            known = key in self._seen
        except (AttributeError, TypeError):  # labels not a mapping, or unhashable values: the full check explains
            known = False
        if not known:
            checked = validate_sample(sample)
            if len(self._seen) >= self._max:
                self._seen.clear()
            self._seen.add((checked.host, checked.name, tuple(checked.labels.items())))
            return checked
        value = sample.value
        if value.__class__ is not float or not math.isfinite(value):
            value = validate_value(value, metric=sample.name)
        time = sample.time
        if time is not self._time:  # a collector's tick shares one datetime: check it once (immutable)
            self._time = time = validate_time(time)
        return Sample(time, sample.name, dict(sample.labels), value, sample.host)
