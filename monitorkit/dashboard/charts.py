"""Time-series charts that stream: one Bokeh line per series, fed by history then by feed deltas.

New points go into each line's ColumnDataSource with ``stream(..., rollover=N)``, so the
browser appends them without re-rendering the chart.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import panel as pn
from bokeh.models import ColumnDataSource, DataRange1d, HoverTool, NumeralTickFormatter, Range1d
from bokeh.models.glyphs import Line as LineGlyph
from bokeh.models.renderers import GlyphRenderer
from bokeh.palettes import Category10_10, Category20_20
from bokeh.plotting import figure

from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.records import Delta, Points, SeriesInfo
from monitorkit.dashboard.style import html_pane

Key = tuple[int, str]
LEGEND_HEIGHT = 22
FORMATS = {"percent": "0", "bytes": "0.0 b", "bytes/s": "0.0 b", "per second": "0.[00]a", "seconds": "0.[000]", "": "0.[00]a"}


class Trace(NamedTuple):
    """Which series a chart draws: ``Trace("net_bytes_recv_total", "{nic} in", exclude={"nic": "^lo$"})``.

    ``where`` maps a label to the value it must have (None: must be absent, "*": must be present);
    cumulative series are drawn as per-second rates.
    """

    metric: str
    legend: str = "{name}"
    where: Mapping[str, str | None] = {}
    exclude: Mapping[str, str] = {}
    scale: float = 1.0

    def matches(self, info: SeriesInfo, host: str | None) -> bool:
        """Tell whether ``info`` belongs to this trace (on ``host``, when given)."""
        if info.name != self.metric or (host is not None and info.host != host):
            return False
        for label, want in self.where.items():
            have = info.labels.get(label)
            if (want is None and have is not None) or (want == "*" and have is None) or (
                want not in (None, "*") and have != want
            ):
                return False
        return not any(re.search(rx, info.labels.get(label, "")) for label, rx in self.exclude.items())

    def label(self, info: SeriesInfo) -> str:
        """Return the legend text of ``info``."""
        values = {"name": info.name, "host": info.host, **info.labels}
        return self.legend.format_map(_Missing(values))


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


class Line:
    """One series on one chart: its source column, the last time drawn and the bucket being filled."""

    __slots__ = ("bucket", "column", "key", "last_t", "scale", "source")

    def __init__(self, key: Key, scale: float, source: ColumnDataSource, column: str) -> None:
        self.key = key
        self.scale = scale
        self.source = source
        self.column = column
        self.last_t = -math.inf
        self.bucket: list[float] | None = None  # [bucket start, sum, count]

    def history(self, points: Points | None, rng: TimeRange, tick_ms: float) -> tuple[list[float], list[float]]:
        """Return the history to show (scaled; the bucket still filling is left to the live stream)."""
        times, values = (list(points.times), [v * self.scale for v in points.values]) if points else ([], [])
        step_ms = rng.step * 1000.0
        if rng.live and step_ms > tick_ms and times:
            current = math.floor(rng.end_ms / step_ms) * step_ms
            keep = [i for i, t in enumerate(times) if t < current]
            times, values = [times[i] for i in keep], [values[i] for i in keep]
        self.last_t = times[-1] if times else -math.inf
        self.bucket = None
        return times, values

    def take(self, points: Points, rng: TimeRange, tick_ms: float) -> tuple[list[float], list[float]]:
        """Return the new points to draw, averaged into ``rng.step`` buckets when coarser than the tick."""
        step_ms = rng.step * 1000.0
        out_t: list[float] = []
        out_v: list[float] = []
        for t, v in zip(points.times, points.values, strict=True):
            if t <= self.last_t:
                continue
            v *= self.scale
            if step_ms <= tick_ms:
                out_t.append(t)
                out_v.append(v)
                self.last_t = t
                continue
            start = math.floor(t / step_ms) * step_ms
            if self.bucket is not None and start != self.bucket[0]:
                b0, total, n = self.bucket
                if b0 > self.last_t:
                    out_t.append(b0)
                    out_v.append(total / n)
                    self.last_t = b0
                self.bucket = None
            if self.bucket is None:
                self.bucket = [start, 0.0, 0.0]
            self.bucket[1] += v
            self.bucket[2] += 1
        return out_t, out_v


def merge(columns: Mapping[str, tuple[list[float], list[float]]]) -> dict[str, list[float]]:
    """Return one table ``{"t": times, column: values...}`` of series with their own times (NaN where absent)."""
    times = sorted({t for ts, _ in columns.values() for t in ts})
    index = {t: i for i, t in enumerate(times)}
    out: dict[str, list[float]] = {"t": times}
    for column, (ts, vs) in columns.items():
        values = [math.nan] * len(times)
        for t, v in zip(ts, vs, strict=True):
            values[index[t]] = v
        out[column] = values
    return out


class TimeChart:
    """A figure with one line per matching series; ``apply(delta)`` streams what is new."""

    def __init__(self, title: str, traces: Iterable[Trace], *, unit: str = "", height: int = 260,
                 y_max: float | None = None, aligned: bool = True) -> None:
        self.title = title
        # Series sampled at the same ticks (one collector) share one source: one stream event per
        # chart per tick instead of one per line; series with their own times keep their own.
        self.aligned = aligned
        self.source = ColumnDataSource({"t": []})
        self.traces = tuple(traces)
        self.unit = unit
        self.lines: dict[Key, Line] = {}
        self.figure = figure(
            title=title, x_axis_type="datetime", height=height, sizing_mode="stretch_width",
            tools="xpan,xwheel_zoom,reset,save", toolbar_location="above",
            y_range=Range1d(start=0, end=y_max) if y_max else DataRange1d(start=0, range_padding=0.05, only_visible=True),
            x_range=DataRange1d(range_padding=0, only_visible=True),
        )
        self.figure.yaxis.formatter = NumeralTickFormatter(format=FORMATS.get(unit, "0.[00]a"))
        self.figure.yaxis.axis_label = unit or None
        self.figure.title.text_font_size = "11pt"  # type: ignore[union-attr]
        # The legend is plain HTML under the plot: a Bokeh Legend is re-laid out on every streamed
        # point and tripled the browser's work per tick (measured: 0.83 s/s vs 0.23 s/s of page time).
        self.labels: list[tuple[str, str]] = []
        self.legend = html_pane("", height=LEGEND_HEIGHT, sizing_mode="stretch_width", margin=(0, 10),
                                styles={"overflow-x": "auto", "white-space": "nowrap", "font-size": "11px"})
        self.view = pn.Column(pn.pane.Bokeh(self.figure, sizing_mode="stretch_width"), self.legend,
                              sizing_mode="stretch_width")
        self.figure.add_tools(HoverTool(
            tooltips=[("series", "$name"), ("time", "@t{%F %T}"), ("value", "@v{0.[00]a}")],
            formatters={"@t": "datetime"},
        ))
        self._colors = 0

    def keys_for(self, series: Iterable[SeriesInfo], host: str | None) -> list[tuple[Key, Trace, SeriesInfo]]:
        """Return the (key, trace, series) this chart draws among ``series``."""
        out = []
        for info in series:
            for trace in self.traces:
                if trace.matches(info, host):
                    out.append(((info.series_id, "r" if info.cumulative else "v"), trace, info))
        return out

    def add(self, key: Key, trace: Trace, info: SeriesInfo) -> Line:
        """Add the line of one series (once)."""
        line = self.lines.get(key)
        if line is not None:
            return line
        if self.aligned:
            column, source = f"v{len(self.lines)}", self.source
            source.data[column] = [math.nan] * len(source.data["t"])
        else:
            column, source = "v", ColumnDataSource({"t": [], "v": []})
        line = self.lines[key] = Line(key, trace.scale, source, column)
        palette = Category10_10 if len(self.lines) <= 10 else Category20_20
        color = palette[self._colors % len(palette)]
        self._colors += 1
        label = trace.label(info)
        # A bare GlyphRenderer costs a third less than figure.line(): no selection or muted glyphs.
        renderer = GlyphRenderer(data_source=source, glyph=LineGlyph(x="t", y=column, line_color=color, line_width=1.6),
                                 name=label)
        self.figure.renderers.append(renderer)
        self.labels.append((color, label))
        self._legend()
        return line

    def clear(self) -> None:
        """Forget every line (the host filter changed)."""
        self.lines.clear()
        self.source.data = {"t": []}
        self.figure.renderers = []
        self.labels = []
        self._legend()
        self._colors = 0

    def _legend(self) -> None:
        self.legend.object = " ".join(
            f"<span class='mk-key'><span style='color:{color}'>&#9632;</span> {html.escape(label)}</span>"
            for color, label in self.labels
        )

    def set_height(self, height: int) -> None:
        """Give the chart ``height`` pixels, its legend line included."""
        self.figure.height = max(100, height - LEGEND_HEIGHT)

    def reset(self, history: Mapping[Key, Points], rng: TimeRange, tick_ms: float) -> None:
        """Show the range ``rng`` with ``history`` as the data of each line."""
        shown = {key: line.history(history.get(key), rng, tick_ms) for key, line in self.lines.items()}
        if self.aligned:
            self.source.data = merge({self.lines[key].column: data for key, data in shown.items()})
        else:
            for key, (times, values) in shown.items():
                self.lines[key].source.data = {"t": times, "v": values}
        self.set_x(rng)

    def set_x(self, rng: TimeRange) -> None:
        """Follow the newest points over the range's span when live, else show the fixed range."""
        if rng.live:
            self.figure.x_range = DataRange1d(range_padding=0, follow="end", follow_interval=rng.span * 1000,
                                              only_visible=True)
        else:
            self.figure.x_range = Range1d(start=rng.start_ms, end=rng.end_ms)

    def apply(self, delta: Delta, rng: TimeRange, tick_ms: float) -> int:
        """Stream the delta's points of this chart's lines; return how many points went out."""
        if not rng.live:
            return 0
        new: dict[Key, tuple[list[float], list[float]]] = {}
        for key, line in self.lines.items():
            pts = (delta.rates if key[1] == "r" else delta.values).get(key[0])
            if pts is not None:
                taken = line.take(pts, rng, tick_ms)
                if taken[0]:
                    new[key] = taken
        return self.stream(new, rng)

    def stream(self, new: Mapping[Key, tuple[list[float], list[float]]], rng: TimeRange) -> int:
        """Append new points of some lines (keyed like ``lines``); return how many."""
        if not new:
            return 0
        if self.aligned:
            columns = {line.column: new.get(key, ([], [])) for key, line in self.lines.items()}
            table: dict[str, Any] = merge(columns)
            self.source.stream(table, rollover=rng.points)
        else:
            for key, (times, values) in new.items():
                self.lines[key].source.stream({"t": times, "v": values}, rollover=rng.points)
        return sum(len(times) for times, _ in new.values())

    @property
    def points(self) -> int:
        """Return how many points the chart holds."""
        if self.aligned:
            return len(self.source.data["t"]) * len(self.lines)
        return sum(len(line.source.data["t"]) for line in self.lines.values())

