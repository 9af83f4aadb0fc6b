"""The top processes panel: CPU, memory, threads and open files of the busiest process groups.

The processes collector writes one series set per group of processes (``process_group_*`` with
labels name, user, command); files written before it wrote one per pid (``process_*`` with
labels pid, name, user). The panel shows either.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import panel as pn

from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView, clock_text
from monitorkit.dashboard.records import Delta, SeriesInfo
from monitorkit.dashboard.style import html_pane

FIELDS = {  # metric -> the column it fills
    "process_group_cpu_percent": "cpu", "process_group_memory_bytes": "rss", "process_group_threads": "threads",
    "process_group_open_fds": "fds", "process_group_pid": "pid", "process_group_procs": "procs",
    "process_cpu_percent": "cpu", "process_rss_bytes": "rss", "process_threads": "threads", "process_open_fds": "fds",
}
PROCESS_METRICS = tuple(FIELDS)
CPU_METRICS = ("process_group_cpu_percent", "process_cpu_percent")  # their newest time is the last collection
SHOWN = 50


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
            if info.name in FIELDS and (host is None or info.host == host) and _row_key(info) is not None:
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
        """Rebuild the table from the latest values of the last collection, busiest first."""
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
        ordered = sorted(live, key=lambda kv: -kv[1].get("cpu", 0.0))[:SHOWN]
        body = "".join(_row(key, m) for key, m in ordered)
        when = f" at {clock_text(newest)}" if newest else ""
        self.table.object = (
            f"<table class='mk-table' id='mk-processes'><caption>Top processes{when}</caption><tr><th>pid</th><th>name</th>"
            f"<th>user</th><th>procs</th><th>CPU %</th><th>RSS MiB</th><th>threads</th><th>open files</th></tr>"
            f"{body or '<tr><td colspan=8>no process samples yet</td></tr>'}</table>"
        )
