"""Units of chart values, formatted the same way on axes, in tooltips and in tables.

``format_value(3_580_149, "bytes")`` is ``"3.41 MiB"``; an axis picks one scale for all its ticks
(so it never mixes ``1000.0 B`` and ``1.5 KiB``), and byte axes tick at powers of two.
"""

from __future__ import annotations

import math

from bokeh.models import AdaptiveTicker, BasicTicker, CustomJSHover, CustomJSTickFormatter, Ticker

# unit -> (scale kind, suffix after the scaled number)
UNITS: dict[str, tuple[str, str]] = {
    "percent": ("plain", " %"),
    "bytes": ("iec", "B"),
    "bytes/s": ("iec", "B/s"),
    "per second": ("si", "/s"),
    "ops/s": ("si", " ops/s"),
    "packets/s": ("si", " pkt/s"),
    "seconds": ("time", ""),
    "": ("si", ""),
}
IEC = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
SI = ("", "k", "M", "G", "T", "P", "E")
TIME = ((1e-6, "µs"), (1e-3, "ms"), (1.0, "s"))


def scale_of(magnitude: float, unit: str) -> tuple[float, str]:
    """Return (divisor, suffix) for numbers up to ``magnitude`` in ``unit``: ``(2**20, " MiB")`` for 3e6 bytes."""
    kind, suffix = UNITS.get(unit, ("si", " " + unit if unit else ""))
    m = abs(magnitude)
    if kind == "iec":
        k = 0 if m < 1024 or not math.isfinite(m) else min(len(IEC) - 1, int(math.log(m, 1024)))
        return 1024.0 ** k, f" {IEC[k]}{suffix}"
    if kind == "si":
        k = 0 if m < 1000 or not math.isfinite(m) else min(len(SI) - 1, int(math.log10(m) // 3))
        return 1000.0 ** k, f"{SI[k]}{suffix}" if k or suffix.startswith((" ", "/")) else suffix
    if kind == "time":
        div, name = next(((d, n) for d, n in TIME if m < d * 1000), TIME[-1]) if m > 0 else (1.0, "s")
        return div, f" {name}"
    return 1.0, suffix


def format_value(value: float | None, unit: str, digits: int = 3) -> str:
    """Return ``value`` in ``unit`` with about ``digits`` significant digits: ``"12.5 ms"``, ``"1.21 GiB/s"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    div, suffix = scale_of(value, unit)
    scaled = value / div
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(scaled)))) if scaled else 0
    text = f"{scaled:.{min(decimals, 3)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + suffix


# The JavaScript twins of scale_of/format_value: BokehJS runs them on each axis and tooltip.
_JS_SCALE = """
const UNITS = %(units)s;
const [kind, suffix] = UNITS[unit] || ["si", unit ? " " + unit : ""];
function scale(m) {
  m = Math.abs(m);
  if (!isFinite(m)) m = 0;
  if (kind == "iec") { const k = m < 1024 ? 0 : Math.min(6, Math.floor(Math.log(m) / Math.log(1024) + 1e-9));
    return [Math.pow(1024, k), " " + ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k] + suffix]; }
  if (kind == "si") { const k = m < 1000 ? 0 : Math.min(6, Math.floor(Math.log10(m) / 3 + 1e-9));
    const p = ["", "k", "M", "G", "T", "P", "E"][k];
    return [Math.pow(1000, k), k || suffix.startsWith(" ") || suffix.startsWith("/") ? p + suffix : suffix]; }
  if (kind == "time") { if (m > 0 && m < 1e-3) return [1e-6, " µs"]; if (m > 0 && m < 1) return [1e-3, " ms"];
    return [1, " s"]; }
  return [1, suffix];
}
function text(v, div, digits) {
  const x = v / div;
  let d = x ? Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(x)))) : 0;
  let s = x.toFixed(Math.min(d, 3));
  if (s.indexOf(".") >= 0) s = s.replace(/0+$/, "").replace(/\\.$/, "");
  return s;
}
"""


def _units_js() -> str:
    pairs = ", ".join(f'"{k}": ["{kind}", "{suffix}"]' for k, (kind, suffix) in UNITS.items())
    return _JS_SCALE % {"units": "{" + pairs + "}"}


def axis_formatter(unit: str) -> CustomJSTickFormatter:
    """Return a tick formatter giving every tick of an axis the same scale (the largest tick's)."""
    code = _units_js() + """
const [div, suf] = scale(Math.max(...ticks.map(Math.abs)));
const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) / div : 1;
const d = step >= 1 || step == 0 ? 0 : Math.min(3, Math.ceil(-Math.log10(step) - 1e-9));
return (tick / div).toFixed(d) + suf;
"""
    return CustomJSTickFormatter(code=code, args={"unit": unit})


def hover_formatter(unit: str) -> CustomJSHover:
    """Return a tooltip formatter showing a value in ``unit`` with three significant digits."""
    code = _units_js() + """
if (value == null || isNaN(value)) return "–";
const [div, suf] = scale(value);
return text(value, div, 3) + suf;
"""
    return CustomJSHover(code=code, args={"unit": unit})


def ticker(unit: str) -> Ticker:
    """Return the y-axis ticker: powers of two for bytes (256 KiB, 512 KiB...), else 1-2-5 steps."""
    if UNITS.get(unit, ("si", ""))[0] == "iec":
        return AdaptiveTicker(base=1024.0, mantissas=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512], min_interval=1.0,
                              desired_num_ticks=5)
    return BasicTicker(desired_num_ticks=5)
