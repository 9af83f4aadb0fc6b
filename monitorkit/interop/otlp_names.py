"""OpenTelemetry names to Prometheus names, as Prometheus 3's OTLP receiver translates them by default.

``UnderscoreEscapingWithSuffixes``: the name's words joined by ``_``, the unit appended in words
(``s`` -> ``seconds``, ``By`` -> ``bytes``, ``X/Y`` -> ``X_per_Y``, ``{…}`` annotations dropped),
``_total`` for monotonic sums and ``_ratio`` for gauges of unit ``1``; label names with invalid
characters become ``_``, a leading digit gets ``key_`` and a single leading ``_`` gets ``key``.
"""

from __future__ import annotations

import functools
import re

UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "1": "", "%": "percent",
}
PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
_WORD = re.compile(r"[^\W_]+")  # letters and digits (any script), split at everything else
_NOT_UNIT = re.compile(r"[^a-zA-Z0-9]+")
_BAD_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def _unit_word(unit: str, table: dict[str, str]) -> str:
    unit = unit.strip()
    if not unit or "{" in unit or "}" in unit:
        return ""
    return _NOT_UNIT.sub("_", table.get(unit, unit)).strip("_")


def metric_name(name: str, unit: str = "", *, kind: str = "gauge", monotonic: bool = False) -> str:
    """Return the Prometheus name of an OTel metric: ``metric_name("http.server.duration", "s")`` is
    ``http_server_duration_seconds``; ``kind`` is gauge, sum, histogram, exponential_histogram or summary."""
    words = _WORD.findall(name)
    main, _, per = unit.partition("/")
    main_word = _unit_word(main, UNITS)
    per_word = _unit_word(per, PER_UNITS)
    if main_word and main_word not in words:
        words.append(main_word)
    if per_word and f"per_{per_word}" not in "_".join(words):
        words.extend(["per", per_word])
    if kind == "sum" and monotonic:
        words = [w for w in words if w != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        words = [w for w in words if w != "ratio"] + ["ratio"]
    out = "_".join(words)
    return "_" + out if out[:1].isdigit() else out


@functools.lru_cache(maxsize=8192)  # an SDK sends the same few attribute keys on every point
def label_name(key: str) -> str:
    """Return the Prometheus label name of an OTel attribute key (``service.name`` -> ``service_name``)."""
    if not key:
        return key
    label = _BAD_LABEL.sub("_", key)
    if label[0].isdigit():
        return "key_" + label
    if label.startswith("_") and not label.startswith("__"):
        return "key" + label
    return label


def bucket_bound(value: float) -> str:
    """Return an ``le`` value as Go's FormatFloat(v, 'f', -1, 64) writes it (``0.005``, ``10``, ``+Inf``)."""
    if value == float("inf"):
        return "+Inf"
    if value == float("-inf"):
        return "-Inf"
    text = repr(float(value))
    if "e" not in text:
        return text[:-2] if text.endswith(".0") else text
    from decimal import Decimal

    plain = format(Decimal(text), "f")
    return plain.rstrip("0").rstrip(".") if "." in plain else plain
