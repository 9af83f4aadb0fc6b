"""The top processes panel: CPU, memory, threads and open files of the busiest process groups.

The processes collector writes one series set per group of processes (``process_group_*`` with
labels name, user, command); files written before it wrote one per pid (``process_*`` with
labels pid, name, user). The panel shows either.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import panel as pn

from monitorkit.dashboard.charts import Key, Trace
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import CHART_MIN_ROW, HEADER, STABLE, PanelContext, PanelView, clock_text
from monitorkit.dashboard.panels.host import chart_spec
from monitorkit.dashboard.records import Delta, Points, SeriesInfo
from monitorkit.dashboard.style import html_pane

FIELDS = {  # metric -> the column it fills
    "process_group_cpu_percent": "cpu", "process_group_memory_bytes": "rss", "process_group_threads": "threads",
    "process_group_open_fds": "fds", "process_group_pid": "pid", "process_group_procs": "procs",
    "process_cpu_percent": "cpu", "process_rss_bytes": "rss", "process_threads": "threads", "process_open_fds": "fds",
}
PROCESS_METRICS = tuple(FIELDS)
CPU_METRICS = ("process_group_cpu_percent", "process_cpu_percent")  # their newest time is the last collection
SHOWN = 50
SORTS = {"CPU": ("cpu", True), "memory": ("rss", True), "processes": ("procs", True), "threads": ("threads", True),
         "open files": ("fds", True), "name": ("name", False), "user": ("user", False)}
CHARTED: tuple[str, ...] = ()  # the groups' series are many: the feed caches none of them


def _row_key(info: SeriesInfo) -> tuple[str, ...] | None:
    labels = info.labels
    if info.name.startswith("process_group_"):
        if info.name == "process_group_memory_bytes" and labels.get("kind") != "resident":
            return None
        return ("group", labels.get("name", ""), labels.get("user", ""), labels.get("command", ""))
    return ("pid", labels.get("pid", ""), labels.get("name", ""), labels.get("user", ""))


def _row(key: tuple[str, ...], m: dict[str, float]) -> str:
    if key[0] == "group":
        _, name, user, command = key
        pid = f"{m['pid']:.0f}" if "pid" in m else ""
        shown = name if not command or command == name else f"{name} · {command}"
    else:
        _, pid, shown, user = key
    return (f"<tr><td>{html.escape(pid)}</td><td>{html.escape(shown)}</td><td>{html.escape(user)}</td>"
            f"<td>{m.get('procs', 1):.0f}</td><td>{m.get('cpu', 0):.1f}</td><td>{m.get('rss', 0) / 2**20:.1f}</td>"
            f"<td>{m.get('threads', 0):.0f}</td><td>{m.get('fds', 0):.0f}</td></tr>")


def _group_name(key: tuple[str, ...]) -> str:
    _, name, user, command = key
    shown = name if not command or command == name else f"{name} · {command}"
    return f"{shown} ({user})" if user else shown


class ProcessesPanel(PanelView):
    """The busiest processes at the last collection, sortable, with the CPU and memory history of one group."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.table = html_pane("", sizing_mode="stretch_width", styles={"overflow-y": "auto"})
        self.sort = pn.widgets.Select(label="Sort by", options=list(SORTS), value="CPU", width=130,
                                      css_classes=["mk-proc-sort"])
        self.pick = pn.widgets.Select(label="History of", options={}, width=360, css_classes=["mk-proc-pick"])
        self.series: dict[int, SeriesInfo] = {}
        self.groups: dict[str, tuple[str, ...]] = {}
        self.selected: tuple[str, ...] | None = None
        self.group_specs = self._group_specs(None)
        charts = [c.build(ctx) for c in self.group_specs]
        super().__init__(spec, ctx, charts, queries=[self._group_sql(0), self._group_sql(1)])
        self.body = pn.Column(pn.Row(self.sort, self.pick, margin=0), self.table, self.menu, self.grid,
                              sizing_mode="stretch_width", margin=0, scroll="y-auto", styles=STABLE)
        self.set_height(spec.height)
        self.sort.param.watch(lambda e: self.render(), "value")
        self.pick.param.watch(self._picked, "value")
        self.render()

    @staticmethod
    def _group_specs(key: tuple[str, ...] | None) -> list[Any]:
        where: dict[str, str | None] = {"name": key[1], "user": key[2], "command": key[3]} if key else {"name": "\0"}
        return [chart_spec("Group CPU", Trace("process_group_cpu_percent", "CPU", where=where), unit="percent"),
                chart_spec("Group resident memory", Trace("process_group_memory_bytes", "resident",
                                                          where={**where, "kind": "resident"}), unit="bytes")]

    def _group_sql(self, i: int) -> Any:
        return lambda host, rng: self.group_specs[i].sql(host, rng)

    def set_height(self, height: int) -> None:
        if not hasattr(self, "sort"):
            return  # the base class asks before the body exists
        table = max(120, (height - HEADER - 70) // 2)
        self.table.height = table
        self.size_charts(max(CHART_MIN_ROW, height - HEADER - 96 - table))
        self.body.height = max(60, height - HEADER)

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        series = list(series)
        added = False
        for info in series:
            if info.name in FIELDS and (host is None or info.host == host) and _row_key(info) is not None:
                self.series[info.series_id] = info
                added = True
        super().on_series(series, host)
        if added:
            self.render()

    def clear(self) -> None:
        self.series.clear()
        self.selected = None
        super().clear()

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        # A stale marker (the collector failed, a group was evicted) takes its rows out at once.
        if any(sid in delta.values for sid in self.series) or any(sid in self.series for sid in delta.ended):
            self.render()
        return super().apply(delta, rng)

    def _picked(self, event: Any) -> None:
        key = self.groups.get(event.new) if event.new else None
        if key is None or key == self.selected:
            return
        self.selected = key
        self.group_specs = self._group_specs(key)
        for chart, spec in zip(self.charts, self.group_specs, strict=True):
            chart.clear()
            chart.traces = spec.traces
            chart.heading.text = f"{spec.title}: {event.new}"
            chart.on_series(self.ctx.feed.series.values(), self.ctx.host)
        self.show_drawn()
        history = self.ctx.extra.get("load", _nothing)({k for c in self.charts for k in c.history_keys()})
        if self.ctx.rng is not None:
            for chart in self.charts:
                chart.reset(history, self.ctx.rng, self.ctx.tick_ms, self.ctx.feed.newest_ms)

    def render(self) -> None:
        """Rebuild the table from the latest values of the last collection, sorted as chosen."""
        latest = self.ctx.feed.latest
        values = {sid: latest[sid] for sid in list(self.series) if sid in latest}
        newest = max((t for sid, (t, _) in values.items() if self.series[sid].name in CPU_METRICS), default=None)
        rows: dict[tuple[str, ...], dict[str, float]] = {}
        for sid, (t, v) in values.items():
            info = self.series[sid]
            key = _row_key(info)
            if newest is None or t < newest or key is None:
                continue
            rows.setdefault(key, {})[FIELDS[info.name]] = v
        live = [(k, m) for k, m in rows.items() if m.get("procs", 1) > 0]  # idle groups are kept by the collector
        field, descending = SORTS.get(self.sort.value, ("cpu", True))
        if field in ("name", "user"):
            at = 1 if field == "name" else (2 if live and live[0][0][0] == "group" else 3)
            ordered = sorted(live, key=lambda kv: kv[0][at].lower())[:SHOWN]
        else:
            ordered = sorted(live, key=lambda kv: -kv[1].get(field, 0.0) if descending else kv[1].get(field, 0.0))[:SHOWN]
        body = "".join(_row(key, m) for key, m in ordered)
        when = f" at {clock_text(newest)}" if newest else ""
        self.table.object = (
            f"<table class='mk-table' id='mk-processes'><caption>Top processes{when}</caption><tr><th>pid</th><th>name</th>"
            f"<th>user</th><th>procs</th><th>CPU %</th><th>RSS MiB</th><th>threads</th><th>open files</th></tr>"
            f"{body or '<tr><td colspan=8>no current process samples</td></tr>'}</table>"
        )
        groups = {_group_name(k): k for k, _ in ordered if k[0] == "group"}
        if list(groups) != list(self.groups):
            self.groups = groups
            self.pick.options = list(groups)
        if self.selected is None and groups:
            self.pick.value = next(iter(groups))


def _nothing(keys: set[Key]) -> Mapping[Key, Points]:
    return {}
