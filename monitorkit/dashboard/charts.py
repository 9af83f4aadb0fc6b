"""Time-series charts that stream: lines fed by history then by feed deltas, read like Grafana's.

All charts of one view share their x range (pan or zoom one, the others follow) and a crosshair;
hovering shows every series' value at the cursor in the chart's unit; the legend is a row of
toggle buttons that hide a series. New points go into the ColumnDataSource with
``stream(..., rollover=N)`` and the step bucket still filling is patched in place, so the browser
never re-renders a chart. Ranges read from a rollup tier draw each line's min-max envelope.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import panel as pn
from bokeh.models import (
    ColumnDataSource,
    CrosshairTool,
    DataRange1d,
    HoverTool,
    Range1d,
    Scatter,
    VArea,
)
from bokeh.models.annotations import Title
from bokeh.models.glyphs import Line as LineGlyph
from bokeh.models.renderers import GlyphRenderer
from bokeh.plotting import figure

from monitorkit.dashboard.axes import LEGEND_CSS, PALETTE, DeltaKeys, SharedAxes, find_time, one, unique_names
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.lines import Key, Line, Row, Trace, key_of, ratio, total
from monitorkit.dashboard.records import Delta, Points, SeriesInfo

__all__ = ["MIN_PLOT", "Key", "SharedAxes", "TimeChart", "Trace"]

MIN_PLOT = 150  # pixels a figure keeps whatever the panel's height: axis labels never overlap
MARKERS_BELOW = 40  # a chart with fewer rows than this also draws each point, so single points show


class TimeChart:
    """A figure with one line per matching series (or group of series); ``apply(delta)`` streams what is new."""

    def __init__(self, title: str, traces: Iterable[Trace], *, unit: str = "", height: int = 240,
                 y_max: float | None = None, aligned: bool = True, axes: SharedAxes | None = None,
                 cpus: Callable[[str], float | None] | None = None) -> None:
        self.title = title
        # Series sampled at the same ticks (one collector) share one source: one stream event per
        # chart per tick instead of one per line; series with their own times keep their own.
        self.aligned = aligned
        self.traces = tuple(traces)
        self.unit = unit
        self.axes = axes or SharedAxes()
        self.cpus = cpus
        self.source = ColumnDataSource({"t": []})
        self.lines: dict[tuple[Any, ...], Line] = {}
        self.by_input: dict[Key, list[Line]] = {}
        self.labels: list[tuple[str, str]] = []
        self.envelope = False
        self._patched_ms = -math.inf
        self._pending: dict[tuple[Any, ...], dict[int, Key]] = {}
        self._waiting: list[tuple[int, Trace, SeriesInfo]] = []
        self._glyphs: list[tuple[GlyphRenderer, GlyphRenderer | None, GlyphRenderer | None]] = []
        y_format, self._hover_fmt, y_ticks = self.axes.unit(unit)
        self.figure = figure(
            x_axis_type="datetime", height=max(MIN_PLOT, height), sizing_mode="stretch_width",
            tools="xpan,xwheel_zoom,reset", toolbar_location="right", x_range=self.axes.x_range,
            y_range=Range1d(start=0, end=y_max) if y_max else DataRange1d(start=0, range_padding=0.08, only_visible=True),
            min_border_left=8, min_border_right=8, min_border_top=2, min_border_bottom=4, title=title,
        )
        heading = self.figure.title
        assert isinstance(heading, Title)
        self.heading: Title = heading  # what the chart draws and from which metrics
        heading.text_font_size = "11px"
        heading.text_color = "#101828"
        self.figure.toolbar.autohide = True
        self.figure.toolbar.logo = None
        self.figure.yaxis.formatter = y_format
        self.figure.yaxis.ticker = y_ticks
        self.figure.xaxis.ticker = self.axes.x_ticker
        self.figure.xaxis.formatter = self.axes.x_formatter
        self.figure.axis.major_label_text_font_size = "10px"
        self.figure.grid.grid_line_alpha = 0.5
        self.figure.add_tools(CrosshairTool(overlay=self.axes.crosshair))
        self.hover_source = self.source
        # One invisible line spanning every row: the tooltip lists all series at the cursor's time.
        self._hover_line = GlyphRenderer(data_source=self.source, glyph=LineGlyph(x="t", y=0, line_alpha=0))
        # A point at y=0 that never shows: an empty chart's y range is [0, 1], not NaN (BokehJS would warn
        # "could not set initial ranges" for every chart waiting for its first sample).
        self._anchor = GlyphRenderer(data_source=self.axes.anchor, glyph=Scatter(x="x", y="y", size=0, fill_alpha=0,
                                                                                 line_alpha=0))
        # (Charts whose lines keep their own sources hover their lines; a fixed y range needs no anchor.)
        self._fixed = [r for r, needed in ((self._hover_line, aligned), (self._anchor, not y_max)) if needed]
        self.figure.renderers += self._fixed
        self.hover = HoverTool(mode="vline", renderers=[self._hover_line] if aligned else [],
                               tooltips=[("time", "@t{%F %T}")], formatters={"@t": "datetime"}, point_policy="snap_to_data",
                               line_policy="nearest", attachment="horizontal")
        self.figure.add_tools(self.hover)
        self.legend = pn.widgets.CheckButtonGroup(options=[], value=[], stylesheets=[LEGEND_CSS], margin=(0, 6),
                                                  sizing_mode="stretch_width", css_classes=["mk-legend"])
        self.legend.param.watch(self._on_legend, "value")
        self.view = pn.Column(pn.pane.Bokeh(self.figure, sizing_mode="stretch_width"), self.legend,
                              sizing_mode="stretch_width", margin=0)

    # -- which lines ------------------------------------------------------------------------

    def keys_for(self, series: Iterable[SeriesInfo], host: str | None) -> list[tuple[Key, Trace, SeriesInfo]]:
        """Return the (key, trace, series) of the one-series lines this chart draws among ``series``."""
        return [(key_of(info), trace, info) for info in series for trace in self.traces
                if trace.group is None and trace.over is None and trace.per is None and trace.matches(info, host)]

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> list[Line]:
        """Add the lines (or line inputs) of new series; return the lines added."""
        added: list[Line] = []
        waiting, self._waiting = self._waiting, []
        for index, trace, info in waiting:
            added += self._input(index, trace, info)
        for info in series:
            for index, trace in enumerate(self.traces):
                if trace.over is not None and trace.matches(info, host, trace.over):
                    added += self._pair(index, trace, info, 1)
                elif trace.matches(info, host):
                    if trace.over is not None:
                        added += self._pair(index, trace, info, 0)
                    else:
                        added += self._input(index, trace, info)
        return added

    def _input(self, index: int, trace: Trace, info: SeriesInfo) -> list[Line]:
        key = key_of(info)
        line_key = (index, *trace.line_id(info))
        line = self.lines.get(line_key)
        if line is not None:
            if key not in line.inputs:
                line.inputs.append(key)
                self.by_input.setdefault(key, []).append(line)
            return []
        scale = trace.scale
        if trace.per is not None:
            cpus = self.cpus(info.host) if self.cpus else None
            if not cpus:
                self._waiting.append((index, trace, info))  # drawn once the host's CPU count is known
                return []
            scale = trace.scale / cpus
        combine = None if trace.group is None else total
        return [self.add(line_key, [key], trace.label(info), scale, combine)]

    def _pair(self, index: int, trace: Trace, info: SeriesInfo, role: int) -> list[Line]:
        ident = (index, tuple(sorted(info.labels.items())), info.host)
        parts = self._pending.setdefault(ident, {})
        parts[role] = key_of(info)
        if len(parts) < 2 or (index, *ident[1:]) in self.lines:
            return []
        numerator = SeriesInfo(info.series_id, info.host, trace.metric, info.labels)
        return [self.add((index, *ident[1:]), [parts[0], parts[1]], trace.label(numerator), trace.scale, ratio)]

    def add(self, line_key: tuple[Any, ...], inputs: list[Key], label: str, scale: float = 1.0,
            combine: Callable[..., float] | None = None) -> Line:
        """Add one line reading ``inputs`` (once)."""
        line = self.lines.get(line_key)
        if line is not None:
            return line
        line = Line(inputs[0] if len(inputs) == 1 else (-len(self.lines) - 1, "d"), inputs, scale, combine)
        line.label, line.index = label, len(self.lines)
        self.lines[line_key] = line
        for key in inputs:
            self.by_input.setdefault(key, []).append(line)
        if self.aligned:
            line.source, line.column = self.source, f"v{line.index}"
            # The column exists before any glyph names it (BokehJS warns of a nonexistent field otherwise).
            self.source.data = {**self.source.data, **self._empty(line, len(self.source.data["t"]))}
        else:
            line.source, line.column = ColumnDataSource(self._empty(line, 0, with_t=True)), "v"
        self._draw(line)
        return line

    def _empty(self, line: Line, n: int, with_t: bool = False) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"t": []} if with_t else {}
        out[line.column] = [math.nan] * n
        if self.envelope:
            out[f"lo{line.column[1:]}"] = [math.nan] * n
            out[f"hi{line.column[1:]}"] = [math.nan] * n
        return out

    def _draw(self, line: Line) -> None:
        color = PALETTE[line.index % len(PALETTE)]
        src, col = line.source, line.column
        band = GlyphRenderer(data_source=src, glyph=VArea(x="t", y1=f"lo{col[1:]}", y2=f"hi{col[1:]}", fill_color=color,
                                                          fill_alpha=0.15)) if self.envelope else None
        # Bare GlyphRenderers cost a third less than figure.line(): no selection or muted glyphs.
        drawn = GlyphRenderer(data_source=src, glyph=LineGlyph(x="t", y=col, line_color=color, line_width=1.6),
                              name=line.label)
        self.figure.renderers += [r for r in (band, drawn) if r is not None]
        self._glyphs.append((drawn, None, band))  # markers are added when the chart is sparse (_show_markers)
        self.labels.append((color, line.label))
        self._legend()

    def _legend(self) -> None:
        names = unique_names([label for _, label in self.labels])
        colors = "".join(f".bk-btn-group > .bk-btn:nth-child({i + 1})::before {{ content: '\\25A0\\00A0'; color: {c}; }}"
                         for i, (c, _) in enumerate(self.labels))
        hidden = {names[i] for i, (drawn, _, _) in enumerate(self._glyphs) if not drawn.visible}
        self.legend.stylesheets = [LEGEND_CSS + colors]
        self.legend.options = names
        self.legend.value = [n for n in names if n not in hidden]
        self._tooltips()

    def _on_legend(self, event: Any) -> None:
        shown = set(event.new)
        names = unique_names([label for _, label in self.labels])
        for name, (drawn, dots, band) in zip(names, self._glyphs, strict=True):
            visible = name in shown
            if drawn.visible != visible:
                drawn.visible = visible
                if dots is not None:
                    dots.visible = visible and self._markers()
                if band is not None:
                    band.visible = visible
        self._tooltips()

    def _tooltips(self) -> None:
        if not self.aligned:
            self.hover.renderers = [drawn for drawn, _, _ in self._glyphs]
            self.hover.tooltips = [("series", "$name"), ("time", "@t{%F %T}"), ("value", "@v{u}")]
            self.hover.formatters = {"@t": "datetime", "@v": self._hover_fmt}
            return
        rows: list[tuple[str, str]] = [("time", "@t{%F %T}")]
        formatters: dict[str, Any] = {"@t": "datetime"}
        for line, (drawn, _, _) in zip(self.lines.values(), self._glyphs, strict=True):
            if not drawn.visible:
                continue
            col = line.column
            text = f"@{col}{{u}}" + (f" (@lo{col[1:]}{{u}} – @hi{col[1:]}{{u}})" if self.envelope else "")
            rows.append((line.label, text))
            formatters[f"@{col}"] = self._hover_fmt
            if self.envelope:
                formatters[f"@lo{col[1:]}"] = formatters[f"@hi{col[1:]}"] = self._hover_fmt
        self.hover.tooltips = rows
        self.hover.formatters = formatters

    def _markers(self) -> bool:
        rows = len(self.source.data["t"]) if self.aligned else max(
            (len(line.source.data["t"]) for line in self.lines.values() if line.source is not None), default=0)
        return 0 < rows < MARKERS_BELOW

    def _show_markers(self) -> None:
        wanted = self._markers()
        for i, (drawn, dots, band) in enumerate(self._glyphs):
            if dots is None:
                if not wanted:
                    continue
                glyph = drawn.glyph
                dots = GlyphRenderer(data_source=drawn.data_source, glyph=Scatter(
                    x="t", y=glyph.y, size=4, fill_color=glyph.line_color, line_color=glyph.line_color))
                self.figure.renderers = [*self.figure.renderers, dots]
                self._glyphs[i] = (drawn, dots, band)
            if dots.visible != (wanted and drawn.visible):
                dots.visible = wanted and drawn.visible

    def clear(self) -> None:
        """Forget every line (the host filter changed)."""
        self.lines.clear()
        self.by_input.clear()
        self._pending.clear()
        self._waiting = []
        self._glyphs = []
        self.labels = []
        self.figure.renderers = list(self._fixed)
        self.source.data = {"t": []}
        self._legend()

    def history_keys(self) -> set[Key]:
        """Return the series keys whose history the chart shows."""
        return set(self.by_input)

    def set_height(self, height: int) -> None:
        """Give the figure ``height`` pixels (never less than MIN_PLOT)."""
        self.figure.height = max(MIN_PLOT, height)

    # -- data -----------------------------------------------------------------------------

    def _set_envelope(self, wanted: bool) -> None:
        if wanted == self.envelope:
            return
        self.envelope = wanted
        lines = list(self.lines.items())
        self.lines, self.by_input, self._glyphs, self.labels = {}, {}, [], []
        self.figure.renderers = list(self._fixed)
        self.source.data = {"t": []}
        for line_key, line in lines:
            self.add(line_key, line.inputs, line.label, line.scale, line.combine)

    def reset(self, history: Mapping[Key, Points], rng: TimeRange, tick_ms: float, newest_ms: float | None = None) -> None:
        """Show the range ``rng`` with ``history`` as the data of each line."""
        self._set_envelope(rng.tier != "raw" or rng.step * 1000.0 > tick_ms * 2)
        shown = {line.column if self.aligned else id(line): line.history(line.points(history), rng, tick_ms, newest_ms,
                                                                         line.count(history))
                 for line in self.lines.values()}
        if self.aligned:
            self.source.data = self._table({c: rows for c, rows in shown.items() if isinstance(c, str)})
        else:
            for line in self.lines.values():
                line.source.data = self._table({"v": shown[id(line)]}, with_envelope=self.envelope)
        self._show_markers()

    def _table(self, columns: Mapping[str, list[Row]], with_envelope: bool | None = None) -> dict[str, list[float]]:
        envelope = self.envelope if with_envelope is None else with_envelope
        times = sorted({row[0] for rows in columns.values() for row in rows})
        index = {t: i for i, t in enumerate(times)}
        out: dict[str, list[float]] = {"t": times}
        for column, rows in columns.items():
            values = [math.nan] * len(times)
            lows, highs = ([math.nan] * len(times), [math.nan] * len(times)) if envelope else ([], [])
            for t, v, lo, hi in rows:
                i = index[t]
                values[i] = v
                if envelope:
                    lows[i], highs[i] = (v, v) if math.isnan(lo) else (lo, hi)
            out[column] = values
            if envelope:
                out[f"lo{column[1:]}"], out[f"hi{column[1:]}"] = lows, highs
        return out

    def apply(self, delta: Delta, rng: TimeRange, tick_ms: float) -> int:
        """Stream the delta's points of this chart's lines; return how many points went out."""
        if not rng.live or not self.lines:
            return 0
        values, rates = delta.values, delta.rates
        touched: dict[int, Line] = {}
        # The chart's few inputs looked up in the delta (a delta carries every series of the tick, hundreds).
        for key, lines in self.by_input.items():
            if key[0] in (rates if key[1] == "r" else values):
                for line in lines:
                    touched[id(line)] = line
        if not touched:
            return 0
        by_key = DeltaKeys(values, rates)
        step_ms = rng.step * 1000.0
        # The bucket still filling is redrawn at most 30 times a step: at 7d once in 30 s, not every tick.
        due = step_ms <= tick_ms or delta.polled_ms - self._patched_ms >= step_ms / 30
        new: dict[int, tuple[list[Row], Row | None]] = {}
        for line in touched.values():
            closed, current = line.take(line.points(by_key), rng, tick_ms)
            current = current if due else None
            if closed or current is not None:
                new[id(line)] = (closed, current)
        if due and new:
            self._patched_ms = delta.polled_ms
        return self.write(new, rng)

    def write(self, new: Mapping[int, tuple[list[Row], Row | None]], rng: TimeRange) -> int:
        """Append closed points and patch the filling bucket of some lines (keyed by ``id(line)``); return how many."""
        if not new:
            return 0
        lines = [line for line in self.lines.values() if id(line) in new]
        if self.aligned:
            self._write(self.source, {line.column: [*new[id(line)][0], *one(new[id(line)][1])] for line in lines}, rng)
        else:
            for line in lines:
                self._write(line.source, {"v": [*new[id(line)][0], *one(new[id(line)][1])]}, rng)
        if self._markers() != any(dots is not None and dots.visible for _, dots, _ in self._glyphs):
            self._show_markers()
        return sum(len(closed) + (current is not None) for closed, current in new.values())

    def _write(self, source: ColumnDataSource, columns: Mapping[str, list[Row]], rng: TimeRange) -> None:
        times = source.data["t"]
        last = times[-1] if len(times) else -math.inf
        patches: dict[str, list[tuple[int, float]]] = {}
        later: dict[str, list[Row]] = {}
        for column, rows in columns.items():
            for row in rows:
                if row[0] > last:
                    later.setdefault(column, []).append(row)
                    continue
                i = find_time(times, row[0])
                if i is None:
                    continue  # older than anything shown: the history has it
                patches.setdefault(column, []).append((i, row[1]))
                if self.envelope:
                    patches.setdefault(f"lo{column[1:]}", []).append((i, row[2] if not math.isnan(row[2]) else row[1]))
                    patches.setdefault(f"hi{column[1:]}", []).append((i, row[3] if not math.isnan(row[3]) else row[1]))
        if patches:
            source.patch(patches)
        if later:
            table: dict[str, Any] = self._table(later)
            for column in source.data:
                if column not in table:
                    table[column] = [math.nan] * len(table["t"])
            source.stream(table, rollover=rng.points)

    @property
    def points(self) -> int:
        """Return how many points the chart holds."""
        if self.aligned:
            return len(self.source.data["t"]) * len(self.lines)
        return sum(len(line.source.data["t"]) for line in self.lines.values() if line.source is not None)
