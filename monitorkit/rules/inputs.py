"""Checks of the values other processes send (heartbeats, acks, silences): types and ranges, with clear errors.

Each returns the value as the engine stores it or raises InvalidRequestError, which the
owner API answers with 400 and the message: ``seconds(1e308, "heartbeat ttl", MAX_TTL)``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from monitorkit.config import parse_duration
from monitorkit.errors import ConfigError
from monitorkit.rules.errors import InvalidRequestError

MAX_TTL = timedelta(days=7)  # a heartbeat's ttl: a component silent for a week is down, whatever it said
MAX_SILENCE = timedelta(days=366)
MAX_ID = 2**63 - 1  # BIGINT ids
MAX_PID = 2**31 - 1  # the INTEGER pid column


def seconds(value: Any, what: str, maximum: timedelta, *, hint: str = "") -> float:
    """Return a duration in seconds, > 0 and at most ``maximum``, from a number or a string such as ``"30s"``."""
    if isinstance(value, str):
        try:
            value = parse_duration(value).total_seconds()
        except (ConfigError, OverflowError):
            raise InvalidRequestError(f"{what} must be a duration such as 30, '30s' or '5m'{hint}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRequestError(f"{what} is a duration in seconds{hint}, got {value!r}")
    if value <= 0:
        raise InvalidRequestError(f"{what} must be longer than 0 s{hint}, got {value!r}")
    limit = maximum.total_seconds()
    if value > limit:
        raise InvalidRequestError(f"{what} is a duration of at most {limit:.0f} s ({_human(maximum)}){hint}, "
                                  f"got {value!r}")
    return float(value)


def whole(value: Any, what: str, low: int, high: int) -> int:
    """Return an integer in [low, high] (JSON numbers like 3.0 are not accepted for ids: 3.5 would become 3)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
            value = int(value)
        else:
            raise InvalidRequestError(f"{what} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequestError(f"{what} must be between {low} and {high}, got {value}")
    return value


def text(value: Any, what: str, limit: int, *, required: bool = False) -> str:
    """Return a string of at most ``limit`` characters (None: empty); ``required`` refuses an empty one."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidRequestError(f"{what} is {len(value)} characters long; at most {limit} are accepted")
    if required and not value.strip():
        raise InvalidRequestError(f"{what} is required")
    return value


def instant(value: Any, what: str, now: datetime, within: timedelta) -> datetime:
    """Return a timezone-aware time from an ISO 8601 string, at most ``within`` from ``now``."""
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRequestError(f"{what} must be an ISO 8601 time such as 2024-05-01T10:00:00+00:00, "
                                      f"got {value!r}") from None
    else:
        raise InvalidRequestError(f"{what} must be an ISO 8601 time string, got {type(value).__name__}")
    if at.tzinfo is None:
        raise InvalidRequestError(f"{what} needs a time zone (e.g. +00:00 or Z), got {value!r}")
    if abs(at - now) > within:
        raise InvalidRequestError(f"{what} must be within {_human(within)} of now, got {at.isoformat()}")
    return at


def _human(span: timedelta) -> str:
    return f"{span.days} days" if span.days else f"{span.total_seconds():g} s"
