"""What the charts of one view share (x range, crosshair, tickers, unit formatters) and the small pieces they use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bokeh.models import ColumnDataSource, DatetimeTicker, DatetimeTickFormatter, Range1d
from bokeh.models.annotations import Span
from bokeh.palettes import Category10_10, Category20_20

from monitorkit.dashboard.lines import Key, Row
from monitorkit.dashboard.records import Points
from monitorkit.dashboard.units import axis_formatter, hover_formatter, ticker

LEGEND_CSS = """
.bk-btn-group { flex-wrap: wrap; gap: 0 8px; }
.bk-btn-group .bk-btn { flex: 0 0 auto !important; border: none !important; background: none !important;
  box-shadow: none !important; padding: 0 2px !important; font-size: 11px !important; height: 18px !important;
  line-height: 18px !important; color: #344054 !important; border-radius: 0 !important; }
.bk-btn-group .bk-btn:not(.bk-active) { opacity: 0.45; text-decoration: line-through; }
"""


NARROW = 330  # pixels: below this a chart's time axis shows three labels instead of five


# The colours of a chart's series, in order: Category10, then its light variants (20 distinct). One
# list whatever the count: a chart fixes each series' colour when it arrives, so switching palettes at
# the eleventh series gave it the colour of the sixth (two brown TCP states).
PALETTE = (*Category10_10, *Category20_20[1::2])


class SharedAxes:
    """What the charts of one view share: the x range (so they pan and zoom together) and the crosshair."""

    def __init__(self) -> None:
        self.x_range = Range1d(start=0, end=1)
        self.crosshair = Span(dimension="height", line_color="#98a2b3", line_width=1, line_dash="dashed")
        # Models every chart of the view uses, made once: a DatetimeTicker alone is a dozen models.
        self.x_ticker = DatetimeTicker(desired_num_ticks=5)
        # Charts under NARROW pixels get fewer time labels: five "23:14" labels overlap in 200 px.
        self.x_ticker_narrow = DatetimeTicker(desired_num_ticks=3)
        self.x_formatter = DatetimeTickFormatter(context=None, minutes="%H:%M", hourmin="%H:%M", hours="%H:%M",
                                                 days="%b %d", months="%b %Y")
        self.anchor = ColumnDataSource({"x": [0.0], "y": [0.0]})
        self._units: dict[str, tuple[Any, Any, Any]] = {}
        self.following = True  # False once the user zoomed or panned: live points keep coming, the view stays
        self._setting = False
        self.x_range.on_change("start", self._moved)

    def _moved(self, attr: str, old: Any, new: Any) -> None:
        if not self._setting:
            self.following = False

    def show(self, start_ms: float, end_ms: float, *, follow: bool = True) -> None:
        """Show ``start_ms`` to ``end_ms`` on every chart (and follow the newest points again if ``follow``)."""
        if follow:
            self.following = True
        self._setting = True
        try:
            self.x_range.update(start=start_ms, end=end_ms, reset_start=start_ms, reset_end=end_ms)
        finally:
            self._setting = False

    def x_ticker_for(self, width: float) -> DatetimeTicker:
        """Return the time ticker for a chart about ``width`` pixels wide."""
        return self.x_ticker_narrow if width < NARROW else self.x_ticker

    def unit(self, unit: str) -> tuple[Any, Any, Any]:
        """Return the axis formatter, tooltip formatter and ticker of ``unit`` (shared by the view's charts)."""
        if unit not in self._units:
            self._units[unit] = (axis_formatter(unit), hover_formatter(unit), ticker(unit))
        return self._units[unit]

    def slide(self, end_ms: float, span_ms: float) -> None:
        """Move the window to end at ``end_ms`` unless the user moved it (or it would move less than a pixel)."""
        # Every move re-renders every chart of the page: at 7d a second is a thousandth of a pixel.
        shown = self.x_range.end
        if self.following and (not isinstance(shown, float | int) or end_ms - shown >= span_ms / 1000):
            self._setting = True
            try:
                self.x_range.update(start=end_ms - span_ms, end=end_ms)
            finally:
                self._setting = False


class DeltaKeys(Mapping[Key, Points]):
    """A delta's values and rates read by key, without copying them."""

    def __init__(self, values: Mapping[int, Points], rates: Mapping[int, Points]) -> None:
        self._values, self._rates = values, rates

    def __getitem__(self, key: Key) -> Points:
        return (self._rates if key[1] == "r" else self._values)[key[0]]

    def get(self, key: Key, default: Any = None) -> Any:
        return (self._rates if key[1] == "r" else self._values).get(key[0], default)

    def __iter__(self) -> Any:
        return iter([*((s, "v") for s in self._values), *((s, "r") for s in self._rates)])

    def __len__(self) -> int:
        return len(self._values) + len(self._rates)


def one(row: Row | None) -> list[Row]:
    """Return ``row`` as a list of zero or one."""
    return [row] if row is not None else []


def find_time(times: Any, t: float) -> int | None:
    """Return the index of time ``t`` among the last 64 of ``times`` (ascending), or None."""
    for i in range(len(times) - 1, max(-1, len(times) - 64), -1):
        if times[i] == t:
            return i
        if times[i] < t:
            return None
    return None


def unique_names(names: list[str]) -> list[str]:
    """Return ``names`` with repeats numbered: a legend needs distinct labels."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out
