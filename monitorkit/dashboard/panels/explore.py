"""The Explore panel: chart any metric (the catalog's or an application's), filtered and grouped by label.

Options (kept in the layout): ``{"metric": "jobs_processed_total", "filters": ["queue=mail"],
"group_by": ["queue"], "agg": "sum"}``. Counters are drawn as per-second rates; a histogram (its
``_bucket`` series) as the quantile chosen; ``sum``, ``avg``, ``max`` and ``min`` combine the series
of each group (all of them when nothing is grouped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import panel as pn

from monitorkit.dashboard.charts import TimeChart
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.lines import Line, key_of, total
from monitorkit.dashboard.panels.app import Quantile
from monitorkit.dashboard.panels.base import CHART_MIN_ROW, HEADER, STABLE, PanelContext, PanelView
from monitorkit.dashboard.panels.queries import histogram_sql, quote
from monitorkit.dashboard.records import CUMULATIVE_SUFFIXES, SeriesInfo

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
COMBINE = {"sum", "avg", "max", "min"}
EACH = "each series"
UNITS = {"bytes": "bytes", "percent": "percent", "seconds": "seconds"}


def mean(values: Sequence[float]) -> float:
    """Return the mean of the values present."""
    present = [v for v in values if not math.isnan(v)]
    return math.fsum(present) / len(present) if present else math.nan


def highest(values: Sequence[float]) -> float:
    """Return the largest value present."""
    present = [v for v in values if not math.isnan(v)]
    return max(present) if present else math.nan


def lowest(values: Sequence[float]) -> float:
    """Return the smallest value present."""
    present = [v for v in values if not math.isnan(v)]
    return min(present) if present else math.nan


FUNCTIONS = {"sum": total, "avg": mean, "max": highest, "min": lowest}


def parse_filters(filters: Iterable[str]) -> dict[str, set[str]]:
    """Return ``{"nic": {"eth0", "eth1"}}`` from ``["nic=eth0", "nic=eth1"]`` (a series must match one value per label)."""
    out: dict[str, set[str]] = {}
    for item in filters:
        label, sep, value = str(item).partition("=")
        if sep:
            out.setdefault(label, set()).add(value)
    return out


class ExploreChart(TimeChart):
    """The chart of one explored metric: a line per series, or per group combined."""

    def __init__(self, ctx: PanelContext) -> None:
        super().__init__("Explore", (), aligned=False, axes=ctx.axes, cpus=ctx.cpus)
        self.metric = ""
        self.filters: dict[str, set[str]] = {}
        self.group_by: tuple[str, ...] = ()
        self.agg = EACH
        self.groups: dict[tuple[str, ...], list[float]] = {}
        self.source_text = ""

    def set_query(self, metric: str, filters: dict[str, set[str]], group_by: tuple[str, ...], agg: str) -> None:
        """Draw ``metric`` (its ``_bucket`` series for a quantile) with these filters, groups and aggregation."""
        self.clear()
        self.metric, self.filters, self.group_by, self.agg = metric, filters, group_by, agg
        self.source_text = metric + ("_bucket" if agg in QUANTILES else "")

    def clear(self) -> None:
        super().clear()
        self.groups = {}

    def wanted(self, info: SeriesInfo, host: str | None) -> bool:
        """Tell whether a series is drawn (its name, host and label filters)."""
        name = self.metric + "_bucket" if self.agg in QUANTILES else self.metric
        if not self.metric or info.name != name or (host is not None and info.host != host):
            return False
        return all(info.labels.get(label) in values for label, values in self.filters.items())

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> list[Line]:
        added: list[Line] = []
        for info in series:
            if not self.wanted(info, host):
                continue
            key = key_of(info)
            if any(key in line.inputs for line in self.lines.values()):
                continue
            if self.agg == EACH:
                label = " ".join(f"{k}={v}" for k, v in sorted(info.labels.items())) or info.name
                added.append(self.add((info.series_id,), [key], label))
                continue
            group = tuple(info.labels.get(g, "") for g in self.group_by)
            label = " ".join(f"{g}={v}" for g, v in zip(self.group_by, group, strict=True)) or f"{self.agg} of all"
            if self.agg in QUANTILES:
                added += self._bucket(info, key, group, label)
                continue
            line = self.lines.get(group)
            if line is None:
                added.append(self.add(group, [key], f"{label} ({self.agg})", combine=FUNCTIONS[self.agg]))
            else:
                line.inputs.append(key)
                self.by_input.setdefault(key, []).append(line)
        return added

    def _bucket(self, info: SeriesInfo, key: Any, group: tuple[str, ...], label: str) -> list[Line]:
        if "le" not in info.labels:
            return []
        rest = tuple(sorted((k, v) for k, v in info.labels.items() if k != "le" and k not in self.group_by))
        les = self.groups.setdefault((*group, *map(str, rest)), [])
        line_key = ("q", *group, *map(str, rest))
        les.append(float(info.labels["le"].replace("+Inf", "inf")))
        line = self.lines.get(line_key)
        if line is None:
            text = " ".join([label, *(f"{k}={v}" for k, v in rest)]).strip()
            return [self.add(line_key, [key], f"{text} {self.agg}", combine=Quantile(QUANTILES[self.agg], les))]
        line.inputs.append(key)
        self.by_input.setdefault(key, []).append(line)
        return []


class ExplorePanel(PanelView):
    """Pick any metric, filter and group it by label, choose the aggregation; the layout keeps the choice."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        options = dict(spec.options)
        self.chart = ExploreChart(ctx)
        self.metric = pn.widgets.AutocompleteInput(label="Metric", options=[], value=str(options.get("metric", "")),
                                                   case_sensitive=False, search_strategy="includes", min_characters=1,
                                                   restrict=True, width=280, css_classes=["mk-explore-metric"],
                                                   placeholder="type to search metrics")
        self.filters = pn.widgets.MultiChoice(label="Only", options=[], value=[], width=300,
                                              css_classes=["mk-explore-filters"])
        self.group = pn.widgets.MultiChoice(label="Group by", options=[], value=[], width=200,
                                            css_classes=["mk-explore-group"])
        self.agg = pn.widgets.Select(label="Aggregation", options=[EACH, *sorted(COMBINE)], value=EACH, width=130,
                                     css_classes=["mk-explore-agg"])
        self.describe = pn.pane.Str("", styles={"font-size": "11px", "color": "#475467"}, sizing_mode="stretch_width")
        self._building = True
        super().__init__(spec, ctx, [self.chart], queries=[self.sql])
        # The pickers wrap onto a second line in a half-width panel instead of being cut off.
        pickers = pn.Row(self.metric, self.agg, self.group, self.filters, margin=0, styles={"flex-wrap": "wrap"})
        self.body = pn.Column(pickers, self.describe, self.menu, self.grid, sizing_mode="stretch_width", margin=0,
                              scroll="y-auto", styles=STABLE)
        self.refresh_metrics()
        # The saved choice stands even before its series are seen (a layout opened on a quiet host).
        self._options(self.metric.value, [str(f) for f in options.get("filters", [])],
                      [str(g) for g in options.get("group_by", [])], str(options.get("agg", EACH)))
        self._building = False
        self._apply_query()
        for widget in (self.filters, self.group, self.agg):
            widget.param.watch(lambda e: self._changed(), "value")
        self.metric.param.watch(self._metric_changed, "value")
        self.set_height(spec.height)

    def set_height(self, height: int) -> None:
        if not hasattr(self, "describe"):
            return  # the base class asks before the body exists
        self.size_charts(max(CHART_MIN_ROW, height - HEADER - 116))
        self.body.height = max(60, height - HEADER)

    # -- choices --------------------------------------------------------------------------

    def refresh_metrics(self) -> None:
        """List the catalog's metrics and every stored one (histograms by their name)."""
        from monitorkit.catalog import all_metrics

        names = {m.name for m in all_metrics()}
        for info in list(self.ctx.feed.series.values()):
            base = info.name.removesuffix("_bucket") if "le" in info.labels else info.name
            names.add(base)
        names -= {n for n in names if n.endswith(("_sum", "_count")) and n.rsplit("_", 1)[0] in names}
        self.metric.options = sorted(names)

    def _series(self, metric: str) -> list[SeriesInfo]:
        host = self.ctx.host
        return [i for i in list(self.ctx.feed.series.values())
                if i.name in (metric, metric + "_bucket") and (host is None or i.host == host)]

    def _options(self, metric: str, filters: Sequence[str] | None = None, group_by: Sequence[str] | None = None,
                 agg: str | None = None) -> None:
        """Offer the labels and values of ``metric``'s series, keeping the current choice (or the one given)."""
        series = self._series(metric)
        histogram = any(i.name.endswith("_bucket") and "le" in i.labels for i in series)
        filters = list(self.filters.value) if filters is None else list(filters)
        group_by = list(self.group.value) if group_by is None else list(group_by)
        agg = self.agg.value if agg is None else agg
        self.group.options = sorted({k for i in series for k in i.labels if k != "le"} | set(group_by))
        self.filters.options = sorted({f"{k}={v}" for i in series for k, v in i.labels.items() if k != "le"} | set(filters))
        self.group.value, self.filters.value = group_by, filters
        self.agg.options = [*QUANTILES] if histogram or agg in QUANTILES else [EACH, *sorted(COMBINE)]
        self.agg.value = agg if agg in self.agg.options else self.agg.options[0]

    def _metric_changed(self, event: Any) -> None:
        self._building = True
        try:
            self._options(event.new or "", [], [], EACH)
        finally:
            self._building = False
        self._changed()

    def _changed(self) -> None:
        if self._building:
            return
        self._apply_query()
        rng = self.ctx.rng
        if rng is not None:
            history = self.ctx.extra.get("load", lambda keys: {})(self.chart.history_keys())
            self.chart.reset(history, rng, self.ctx.tick_ms, self.ctx.feed.newest_ms)

    def _apply_query(self) -> None:
        metric = self.metric.value or ""
        self.chart.set_query(metric, parse_filters(self.filters.value), tuple(self.group.value), self.agg.value)
        self.chart.unit = self._unit(metric)
        self._retitle()
        self.chart.on_series(self.ctx.feed.series.values(), self.ctx.host)

    def _unit(self, metric: str) -> str:
        from monitorkit.catalog import all_metrics

        unit = next((m.unit for m in all_metrics() if m.name == metric), "")
        counter = metric.endswith(CUMULATIVE_SUFFIXES) and self.agg.value not in QUANTILES
        shown = "seconds" if self.agg.value in QUANTILES else UNITS.get(unit, "")
        if counter:
            shown = "bytes/s" if shown == "bytes" else "per second"
        y_format, self.chart._hover_fmt, y_ticks = self.chart.axes.unit(shown)
        self.chart.figure.yaxis.formatter, self.chart.figure.yaxis.ticker = y_format, y_ticks
        self.chart.heading.text = f"{metric}  ·  {self.chart.source_text}" if metric else "Explore"
        return shown

    def _retitle(self) -> None:
        metric = self.metric.value or ""
        what = "rate per second" if metric.endswith(CUMULATIVE_SUFFIXES) and self.agg.value not in QUANTILES else "value"
        self.describe.object = (f"{metric}: {what}, {self.agg.value}" + (f" by {', '.join(self.group.value)}"
                                if self.group.value else "") if metric else "Choose a metric to chart.")

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        series = list(series)
        if any(i.name not in self.metric.options for i in series):
            self.refresh_metrics()
        metric = self.metric.value or ""
        if any(i.name in (metric, metric + "_bucket") for i in series):
            was, self._building = self._building, True
            try:
                self._options(metric)
            finally:
                self._building = was
        super().on_series(series, host)

    def clear(self) -> None:
        super().clear()
        if not self._building:
            self._options(self.metric.value or "")

    def show_drawn(self) -> None:
        """Keep the chart shown: it says what to choose when nothing is."""

    def current_spec(self) -> PanelSpec:
        """Return the spec with the chosen metric, filters, groups and aggregation."""
        return self.spec._replace(options={**dict(self.spec.options), "metric": self.metric.value or "",
                                           "filters": list(self.filters.value), "group_by": list(self.group.value),
                                           "agg": self.agg.value})

    def sql(self, host: str | None, rng: TimeRange | None) -> str:
        """Return the readable query of the chart as chosen."""
        metric = self.metric.value or "cpu_percent"
        since = f"now() - INTERVAL {int(rng.span) if rng else 3600} SECOND"
        step = int(rng.step) if rng else 60
        conds = (f" AND host = {quote(host)}" if host else "") + "".join(
            f" AND labels[{quote(k)}] IN ({', '.join(quote(v) for v in sorted(vs))})"
            for k, vs in parse_filters(self.filters.value).items())
        groups = [f"coalesce(labels[{quote(g)}], '')" for g in self.group.value]
        series = f"concat_ws(' ', {', '.join(groups)})" if groups else "'all'"
        agg = self.agg.value
        head = re.sub(r"[^ -~]", " ", f"-- Explore: {metric} ({agg})") + "\n"
        if agg in QUANTILES:
            return histogram_sql(f"Explore {metric}", metric, host, rng, [QUANTILES[agg]])
        if agg == EACH:
            series = "labels::VARCHAR"
        fn = {"avg": "avg", "sum": "sum", "max": "max", "min": "min"}.get(agg, "sum")
        if metric.endswith(CUMULATIVE_SUFFIXES):
            return (f"{head}SELECT time, {series} AS series, {fn}(rate) AS per_second FROM (\n"
                    f"  SELECT time_bucket(INTERVAL {step} SECOND, time) AS time, labels, series_id,\n"
                    "         sum(CASE WHEN d < 0 THEN value ELSE d END) / sum(dt) AS rate\n"
                    "  FROM (SELECT time, labels, series_id, value, value - lag(value) OVER w AS d,\n"
                    "               epoch(time - lag(time) OVER w) AS dt\n"
                    f"        FROM samples WHERE name = {quote(metric)}{conds} AND time > {since}\n"
                    "        WINDOW w AS (PARTITION BY series_id ORDER BY time))\n"
                    "  WHERE dt > 0 GROUP BY ALL)\nGROUP BY ALL ORDER BY time")
        return (f"{head}SELECT time, {series} AS series, {fn}(avg) AS value\nFROM metric_range({quote(metric)}, {since}, "
                f"now(), step := {step})\nWHERE true{conds}\nGROUP BY ALL ORDER BY time")
