"""The top processes panel: CPU, memory, threads and open files of the busiest processes."""

from __future__ import annotations

import html
from collections.abc import Iterable

import panel as pn

from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView, clock_text
from monitorkit.dashboard.records import Delta, SeriesInfo
from monitorkit.dashboard.style import html_pane

PROCESS_METRICS = ("process_cpu_percent", "process_rss_bytes", "process_threads", "process_open_fds")


class ProcessesPanel(PanelView):
    """The busiest processes at the last collection: CPU, memory, threads and open files."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.table = html_pane("", sizing_mode="stretch_width", styles={"overflow-y": "auto"})
        self.series: dict[int, SeriesInfo] = {}
        super().__init__(spec, ctx, (), pn.Column(self.table, sizing_mode="stretch_width"))
        self.render()

    def set_height(self, height: int) -> None:
        self.table.height = max(100, height - HEADER)

    def on_series(self, series: Iterable[SeriesInfo], host: str | None) -> None:
        added = False
        for info in series:
            if info.name in PROCESS_METRICS and (host is None or info.host == host):
                self.series[info.series_id] = info
                added = True
        if added:
            self.render()

    def clear(self) -> None:
        self.series.clear()

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        if any(sid in delta.values for sid in self.series):
            self.render()
        return 0

    def render(self) -> None:
        """Rebuild the table from the latest values of the last collection."""
        latest = self.ctx.feed.latest
        values = {sid: latest[sid] for sid in list(self.series) if sid in latest}
        newest = max((t for sid, (t, _) in values.items() if self.series[sid].name == "process_cpu_percent"), default=None)
        rows: dict[tuple[str, str, str], dict[str, float]] = {}
        for sid, (t, v) in values.items():
            info = self.series[sid]
            if newest is None or t < newest:
                continue
            key = (info.labels.get("pid", ""), info.labels.get("name", ""), info.labels.get("user", ""))
            rows.setdefault(key, {})[info.name] = v
        ordered = sorted(rows.items(), key=lambda kv: -kv[1].get("process_cpu_percent", 0.0))
        body = "".join(
            f"<tr><td>{html.escape(pid)}</td><td>{html.escape(name)}</td><td>{html.escape(user)}</td>"
            f"<td>{m.get('process_cpu_percent', 0):.1f}</td><td>{m.get('process_rss_bytes', 0) / 2**20:.1f}</td>"
            f"<td>{m.get('process_threads', 0):.0f}</td><td>{m.get('process_open_fds', 0):.0f}</td></tr>"
            for (pid, name, user), m in ordered
        )
        when = f" at {clock_text(newest)}" if newest else ""
        self.table.object = (
            f"<table class='mk-table' id='mk-processes'><caption>Top processes{when}</caption><tr><th>pid</th><th>name</th>"
            f"<th>user</th><th>CPU %</th><th>RSS MiB</th><th>threads</th><th>open files</th></tr>"
            f"{body or '<tr><td colspan=7>no process samples yet</td></tr>'}</table>"
        )
