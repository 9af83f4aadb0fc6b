"""The SQL console panel: a query box (Ctrl+Enter runs), its history, the result as a table and as a chart.

A result with a time column is drawn as lines, one per value of its text (label) columns and
numeric column; numbers are shown with the unit their column or metric has; a query that returns
nothing because it names an unknown metric says so, with the nearest names.
"""

from __future__ import annotations

import asyncio
import html
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import panel as pn
from bokeh.models import FactorRange
from bokeh.plotting import figure

from monitorkit.dashboard.axes import PALETTE
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView
from monitorkit.dashboard.panels.sqleditor import SqlEditor
from monitorkit.dashboard.style import html_pane
from monitorkit.dashboard.units import axis_formatter, format_value
from monitorkit.errors import QueryError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_QUERY = (
    "SELECT time_bucket(INTERVAL 10 SECOND, time) AS time, avg(value) AS cpu_percent\n"
    "FROM samples WHERE name = 'cpu_percent' AND labels['cpu'] IS NULL AND time > now() - INTERVAL 15 MINUTE\n"
    "GROUP BY ALL ORDER BY time"
)
MAX_LINES = 20
HISTORY = 20
VALUE_COLUMNS = ("value", "avg", "min", "max", "last", "sum", "mean", "p50", "p95", "p99")


def column_unit(column: str, metric_unit: str = "") -> str:
    """Return the unit a result column's numbers are in, from its name (or the one metric the query reads)."""
    c = column.lower()
    rate = c in ("rate", "per_second") or c.endswith(("_per_second", "_rate"))
    if c.endswith("bytes") or "bytes_" in c:
        return "bytes/s" if rate or "_per_second" in c else "bytes"
    if c.endswith(("percent", "_pct")):
        return "percent"
    if c.endswith(("seconds", "duration", "latency")):
        return "seconds"
    if rate:
        return "bytes/s" if metric_unit == "bytes" else "per second"
    if c in VALUE_COLUMNS:
        return metric_unit
    return ""


def _unit_of(sql: str, known: Mapping[str, str]) -> str:
    from monitorkit.rules.names import named_metrics

    units = {known.get(m.name, "") for m in named_metrics(sql) if not m.pattern}
    unit = units.pop() if len(units) == 1 else ""
    return unit if unit in ("bytes", "percent", "seconds") else ""


def _number(unit: str) -> Callable[[Any], str]:
    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if unit:
            return format_value(float(v), unit, digits=4)
        if isinstance(v, float) and not v.is_integer():
            return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
        return f"{v:,.0f}"

    return fmt


def result_chart(df: pd.DataFrame, units: Mapping[str, str] | None = None) -> Any | None:
    """Return a chart of a result: lines over its first time column (one per label value), else bars."""
    import pandas as pd  # on the first result, not at import: an idle `monitorkit serve` does not load it (~60 MiB)

    if df.empty:
        return None
    units = units or {}
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    times = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
    labels = [c for c in df.columns if c not in numeric and c not in times]
    if times and numeric:
        x = df[times[0]]
        xs = x.dt.tz_convert("UTC").dt.tz_localize(None) if getattr(x.dt, "tz", None) else x
        ms = xs.astype("datetime64[ns]").astype("int64") / 1e6  # the unit may be us (Arrow) or ns
        frame = df.assign(_ms=ms.values)
        keys = frame[labels].astype(str).agg(" ".join, axis=1) if labels else pd.Series([""] * len(frame))
        fig = figure(x_axis_type="datetime", height=260, sizing_mode="stretch_width", toolbar_location="above",
                     tools="pan,xwheel_zoom,box_zoom,reset,save")
        shown = 0
        for group, part in frame.groupby(keys.values, sort=True):
            for col in numeric:
                if shown >= MAX_LINES:
                    break
                name = " ".join(p for p in (str(group), str(col) if len(numeric) > 1 or not group else "") if p)
                part = part.sort_values("_ms")
                fig.line(part["_ms"].tolist(), part[col].astype(float).tolist(), legend_label=name,
                         color=PALETTE[shown % len(PALETTE)], line_width=1.6)
                shown += 1
        unit = {units.get(c, "") for c in numeric}
        if len(unit) == 1:
            fig.yaxis.formatter = axis_formatter(unit.pop())
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "8pt"
        fig.legend.click_policy = "hide"
        return fig
    if labels and numeric:
        top = df.head(50)
        factors = [str(v) for v in top[labels[0]]]
        if len(set(factors)) != len(factors):
            return None
        fig = figure(x_range=FactorRange(factors=factors), height=240, sizing_mode="stretch_width", toolbar_location=None)
        fig.vbar(x=factors, top=top[numeric[0]].astype(float).tolist(), width=0.8, color=PALETTE[0])
        fig.xaxis.major_label_orientation = 0.8
        fig.yaxis.axis_label = str(numeric[0])
        fig.yaxis.formatter = axis_formatter(units.get(str(numeric[0]), ""))
        return fig
    return None


class SqlPanel(PanelView):
    """Run read-only SQL (see ``console.SqlConsole``) and show the result."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.editor = SqlEditor(value=str(spec.options.get("query", DEFAULT_QUERY)), height=110,
                                sizing_mode="stretch_width", css_classes=["mk-sql"])
        self.run_button = pn.widgets.Button(label="Run", color="primary", width=80, css_classes=["mk-run"],
                                            description="Run the query (Ctrl+Enter in the box)")
        self.history = pn.widgets.Select(label="History", options=[], width=260, css_classes=["mk-sql-history"],
                                         description="Queries run in this session")
        self.message = html_pane("", sizing_mode="stretch_width")
        self.table = pn.pane.DataFrame(None, index=False, max_rows=200, sizing_mode="stretch_width", escape=True,
                                       styles={"overflow": "auto"}, height=200)
        self.chart = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        tables = ", ".join(html.escape(t) for t in ctx.console.tables) if ctx.console else ""
        self.hint = html_pane(
            "<small>Read-only, as <code>monitorkit.connect()</code>: joins, CTEs, PIVOT, <code>metric_range(...)</code>"
            f" and the other table macros; {ctx.console.timeout:g} s limit; Ctrl+Enter runs. Tables and views: "
            f"{tables}</small>" if ctx.console else "<small class='mk-error'>The SQL console is not available here.</small>",
            sizing_mode="stretch_width")
        self.run_button.on_click(self._run)
        self.run_button.disabled = ctx.console is None
        self.editor.param.watch(self._run, "runs")
        self.history.param.watch(self._recall, "value")
        self.last_rows = -1
        self.done = 0  # answers shown (data-run in the message: a test or script tells this answer from the last)
        self.ran: list[str] = []
        body = pn.Column(self.editor, pn.Row(self.run_button, self.history, self.message, sizing_mode="stretch_width"),
                         self.hint, pn.Row(self.table, self.chart, sizing_mode="stretch_width"), sizing_mode="stretch_width")
        super().__init__(spec, ctx, (), body)

    def configure(self, spec: PanelSpec) -> None:
        super().configure(spec)
        if "query" in spec.options:
            self.editor.value = str(spec.options["query"])

    def set_height(self, height: int) -> None:
        self.table.height = max(120, height - HEADER - 220)

    def current_spec(self) -> PanelSpec:
        """Return the spec with the query being edited, so a saved layout keeps it."""
        return self.spec._replace(options={**dict(self.spec.options), "query": self.editor.value})

    def open(self, sql: str) -> None:
        """Put ``sql`` in the box and run it (a chart's "SQL" button)."""
        self.editor.value = sql
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.execute(lambda: self.run(sql))
        else:
            asyncio.run(self.run(sql))

    def _recall(self, event: Any) -> None:
        if event.new:
            self.editor.value = event.new

    async def _run(self, event: Any = None) -> None:
        await self.run(self.editor.value or "")

    def _remember(self, sql: str) -> None:
        text = sql.strip()
        self.ran = [text, *[q for q in self.ran if q != text]][:HISTORY]
        self.history.options = {(q if len(q) <= 70 else q[:67] + "...").replace("\n", " "): q for q in self.ran}
        self.history.value = None

    async def run(self, sql: str) -> None:
        """Run ``sql`` off the event loop and show its result or why it was refused."""
        console = self.ctx.console
        if console is None:
            return
        self.run_button.loading = True
        self.message.object = "<span class='mk-running'>running…</span>"
        self._remember(sql)
        try:
            result = await asyncio.to_thread(console.run, sql)
        except QueryError as exc:
            self.last_rows = -1
            self.done += 1
            self.table.object = None  # the previous result must not read as this query's
            self.chart.object = None
            self.message.object = (f"<span class='mk-error' id='mk-sql-error' data-run='{self.done}'>"
                                   f"{html.escape(str(exc))}</span>")
            return
        finally:
            self.run_button.loading = False
        df = result.table.to_pandas()
        self.last_rows = len(df)
        self.done += 1
        more = f" (first {len(df)} shown)" if result.truncated else ""
        hint = self._unknown(sql) if df.empty else ""
        self.message.object = (f"<span class='mk-done' id='mk-sql-done' data-rows='{len(df)}' data-run='{self.done}'>"
                               f"{len(df)} rows{more} in "
                               f"{result.seconds * 1000:.0f} ms</span>{hint}")
        metric_unit = _unit_of(sql, self._catalog_units())
        units = {str(c): column_unit(str(c), metric_unit) for c in df.columns}
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        numeric = [c for c in df.columns if is_numeric_dtype(df[c]) and not is_bool_dtype(df[c])]
        self.table.formatters = {c: _number(units[str(c)]) for c in numeric}
        self.table.object = df
        self.chart.object = result_chart(df, units)

    def _catalog_units(self) -> dict[str, str]:
        from monitorkit.catalog import all_metrics

        return {m.name: m.unit for m in all_metrics()}

    def _unknown(self, sql: str) -> str:
        """Return a note on metric names the query spells out that nothing knows ("did you mean ...?")."""
        from monitorkit.rules.names import catalog_metrics, check_names, named_metrics

        named = named_metrics(sql)
        if not named:
            return ""
        known = {i.name for i in list(self.ctx.feed.series.values())} | catalog_metrics()
        notes = [u.message for u in check_names(named, known)]
        return "".join(f" <span class='mk-error' id='mk-sql-hint'>{html.escape(n)}</span>" for n in notes)
