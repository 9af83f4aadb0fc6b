"""The SQL console panel: a query box, the result as a table and, when it fits, as a chart."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models import FactorRange
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView
from monitorkit.dashboard.style import html_pane
from monitorkit.errors import QueryError

DEFAULT_QUERY = (
    "SELECT time_bucket(INTERVAL 10 SECOND, time) AS time, avg(value) AS cpu_percent\n"
    "FROM samples WHERE name = 'cpu_percent' AND labels['cpu'] IS NULL AND time > now() - INTERVAL 15 MINUTE\n"
    "GROUP BY ALL ORDER BY time"
)
MAX_LINES = 8


def result_chart(df: pd.DataFrame) -> Any | None:
    """Return a chart of a result: lines over its first time column, else bars of its first number by its first column."""
    if df.empty:
        return None
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    times = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
    if times and numeric:
        x = df[times[0]]
        xs = x.dt.tz_convert("UTC").dt.tz_localize(None) if getattr(x.dt, "tz", None) else x
        ms = xs.astype("datetime64[ns]").astype("int64") / 1e6  # the unit may be us (Arrow) or ns
        fig = figure(x_axis_type="datetime", height=240, sizing_mode="stretch_width", toolbar_location="above",
                     tools="pan,xwheel_zoom,box_zoom,reset,save")
        for i, col in enumerate(numeric[:MAX_LINES]):
            fig.line(ms.tolist(), df[col].astype(float).tolist(), legend_label=str(col), color=Category10_10[i % 10],
                     line_width=1.6)
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "8pt"
        return fig
    labels = [c for c in df.columns if c not in numeric]
    if labels and numeric:
        top = df.head(50)
        factors = [str(v) for v in top[labels[0]]]
        if len(set(factors)) != len(factors):
            return None
        fig = figure(x_range=FactorRange(factors=factors), height=240, sizing_mode="stretch_width", toolbar_location=None)
        fig.vbar(x=factors, top=top[numeric[0]].astype(float).tolist(), width=0.8, color=Category10_10[0])
        fig.xaxis.major_label_orientation = 0.8
        fig.yaxis.axis_label = str(numeric[0])
        return fig
    return None


class SqlPanel(PanelView):
    """Run read-only SQL (see ``console.SqlConsole``) and show the result."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.editor = pn.widgets.TextAreaInput(value=str(spec.options.get("query", DEFAULT_QUERY)), height=96,
                                               sizing_mode="stretch_width", css_classes=["mk-sql"])
        self.run_button = pn.widgets.Button(label="Run", color="primary", width=80, css_classes=["mk-run"])
        self.message = html_pane("", sizing_mode="stretch_width")
        self.table = pn.pane.DataFrame(None, index=False, max_rows=200, sizing_mode="stretch_width",
                                       styles={"overflow": "auto"}, height=200)
        self.chart = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        tables = ", ".join(html.escape(t) for t in ctx.console.tables) if ctx.console else ""
        self.hint = html_pane(f"<small>Read-only; one table or view per query; 5 s limit. Tables and views: {tables}</small>"
                                 if ctx.console else "<small class='mk-error'>The SQL console is not available here.</small>",
                                 sizing_mode="stretch_width")
        self.run_button.on_click(self._run)
        self.run_button.disabled = ctx.console is None
        self.last_rows = -1
        body = pn.Column(self.editor, pn.Row(self.run_button, self.message), self.hint,
                         pn.Row(self.table, self.chart, sizing_mode="stretch_width"), sizing_mode="stretch_width")
        super().__init__(spec, ctx, (), body)

    def configure(self, spec: PanelSpec) -> None:
        super().configure(spec)
        if "query" in spec.options:
            self.editor.value = str(spec.options["query"])

    def set_height(self, height: int) -> None:
        self.table.height = max(120, height - HEADER - 200)

    def current_spec(self) -> PanelSpec:
        """Return the spec with the query being edited, so a saved layout keeps it."""
        return self.spec._replace(options={**dict(self.spec.options), "query": self.editor.value})

    async def _run(self, event: Any = None) -> None:
        await self.run(self.editor.value or "")

    async def run(self, sql: str) -> None:
        """Run ``sql`` off the event loop and show its result or why it was refused."""
        console = self.ctx.console
        if console is None:
            return
        self.run_button.loading = True
        self.message.object = "<span class='mk-running'>running…</span>"
        try:
            result = await asyncio.to_thread(console.run, sql)
        except QueryError as exc:
            self.last_rows = -1
            self.message.object = f"<span class='mk-error' id='mk-sql-error'>{html.escape(str(exc))}</span>"
            return
        finally:
            self.run_button.loading = False
        df = result.table.to_pandas()
        self.last_rows = len(df)
        more = f" (first {len(df)} shown)" if result.truncated else ""
        self.message.object = (f"<span class='mk-done' id='mk-sql-done' data-rows='{len(df)}'>{len(df)} rows{more} in "
                               f"{result.seconds * 1000:.0f} ms</span>")
        self.table.object = df
        self.chart.object = result_chart(df)
