"""The dashboard view without a server: panels, live deltas, host filter, layout editing, alerts, console, notebook."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitorkit.dashboard import dashboard
from monitorkit.dashboard.app import AppContext, DashboardView, LayoutBackend
from monitorkit.dashboard.console import SqlConsole
from monitorkit.dashboard.errors import AlertActionError
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, PANEL_KINDS, Layout, PanelSpec, from_file_json
from monitorkit.dashboard.panels import AlertsPanel, AppPanel, ChartsPanel, HealthPanel, ProcessesPanel, SqlPanel, cached_metrics
from monitorkit.dashboard.reader import StoreReader
from monitorkit.dashboard.records import AlertRow
from monitorkit.owner.owner import Owner
from monitorkit.owner.schema import SCHEMA
from monitorkit.rules.staleness import SeriesTracker, submit_stale
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store


class FakeActions:
    """Records what the alerts panel asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.fail = fail

    def acknowledge(self, alert: AlertRow, *, by: str, comment: str) -> None:
        if self.fail:
            raise AlertActionError("the rule engine is not running")
        self.calls.append(("ack", alert.id, by))

    def silence(self, alert: AlertRow, *, duration: timedelta, by: str, comment: str) -> int:
        self.calls.append(("silence", alert.id, f"{duration.total_seconds():.0f}"))
        return 7


def host_samples(t: Any, host: str = "web1", i: int = 0) -> list[Sample]:
    return [
        Sample(t, "cpu_percent", {}, 10.0 + i, host),
        Sample(t, "cpu_percent", {"cpu": "0"}, 20.0 + i, host),
        Sample(t, "memory_percent", {}, 30.0, host),
        Sample(t, "net_bytes_recv_total", {"nic": "eth0"}, 1000.0 * i, host),
        Sample(t, "net_bytes_recv_total", {"nic": "lo"}, 10.0 * i, host),
        Sample(t, "process_cpu_percent", {"pid": "1", "name": "init", "user": "root"}, 1.5, host),
        Sample(t, "process_rss_bytes", {"pid": "1", "name": "init", "user": "root"}, 2.0 ** 20, host),
        Sample(t, "monitorkit_collector_up", {"collector": "cpu"}, 1.0, host),
    ]


@pytest.fixture
def app(store: Store) -> Iterator[AppContext]:
    start = utcnow() - timedelta(seconds=20)
    for i in range(10):
        store.write(host_samples(start + timedelta(seconds=i), i=i))
    store.flush()
    reader = StoreReader(store)
    feed = Feed(reader, cached=cached_metrics())
    feed.prime()
    yield AppContext(feed, reader, LayoutBackend(reader, lambda fn: store.submit(fn).result(10)), FakeActions(),
                     None, 1.0, default_host="web1")


def _view(app: AppContext, layout: Layout = DEFAULT_LAYOUT) -> DashboardView:
    view = DashboardView(app, layout)
    view.start(app.feed.snapshot())
    return view


def _panel(view: DashboardView, kind: str) -> Any:
    return next(p for p in view.panels if p.kind == kind)


SMALL = Layout("small", (PanelSpec("cpu"), PanelSpec("network")))


def test_panels_open_with_the_cached_history_and_stream_deltas(app: AppContext, store: Store) -> None:
    view = _view(app, SMALL)
    cpu, network = _panel(view, "cpu"), _panel(view, "network")
    assert isinstance(cpu, ChartsPanel)
    (line,) = cpu.charts[0].lines.values()
    assert len(line.source.data["t"]) == 10
    assert [label for _, label in network.charts[0].labels] == ["eth0 in"], "loopback is left out of the overview"
    assert network.charts[0].legend.options == ["eth0 in"] and network.charts[0].legend.value == ["eth0 in"]
    before = view.points_streamed
    store.write(host_samples(utcnow(), i=11))
    store.flush()
    view.apply(app.feed.poll())
    assert len(line.source.data["t"]) == 11 and line.source.data[line.column][-1] == 21.0
    assert view.points_streamed > before
    assert "data-seq='1'" in view.status.object and "data-points=" in view.status.object
    view.apply(app.feed.poll())
    assert len(line.source.data["t"]) == 11, "an empty delta adds nothing"
    assert "data-seq='2'" in view.status.object and "no data yet" not in view.status.object, \
        "a poll without new samples keeps the newest sample seen (a hub between lake batches)"


def test_paused_views_do_not_stream(app: AppContext, store: Store) -> None:
    view = _view(app, SMALL)
    view.live.value = False
    (line,) = _panel(view, "cpu").charts[0].lines.values()
    store.write(host_samples(utcnow(), i=12))
    store.flush()
    view.apply(app.feed.poll())
    assert len(line.source.data["t"]) == 10
    assert "paused" in view.status.object


def test_longer_ranges_query_history_once(app: AppContext) -> None:
    view = _view(app, SMALL)
    before = app.reader.queries
    view.range.value = "6h"
    assert app.reader.queries - before == 1
    assert view.rng.tier == "raw" and view.rng.step == 30
    view.range.value = "5m"
    assert app.reader.queries - before == 1, "a range inside the cache window needs no query"


def test_the_host_filter_switches_every_panel(app: AppContext, store: Store) -> None:
    view = _view(app, SMALL)
    assert list(view.host.options) == ["web1"]
    store.write(host_samples(utcnow(), host="db1"))
    store.flush()
    view.apply(app.feed.poll())
    assert list(view.host.options) == ["db1", "web1"] and view.host.value == "web1"
    (web,) = _panel(view, "cpu").charts[0].lines
    view.host.value = "db1"
    (db,) = _panel(view, "cpu").charts[0].lines
    assert web != db


def test_cards_move_resize_and_go(app: AppContext) -> None:
    view = _view(app, Layout("t", (PanelSpec("cpu", 6), PanelSpec("memory", 6), PanelSpec("disk", 6))))
    bar = view.toolbar
    assert not bar.built and not bar.panels.visible
    bar.toggle.value = True
    assert bar.built and bar.panels.visible and not bar.edit_row.visible
    bar.editing.value = True
    assert bar.edit_row.visible and list(bar.target.options) == ["1. CPU", "2. Memory", "3. Disk"]

    def press(panel: str, action: str) -> None:
        bar.target.value = bar.target.options[panel]
        next(b for b in bar.actions if f"mk-{action}" in b.css_classes).clicks += 1

    press("1. CPU", "right")
    press("2. CPU", "wider")
    press("2. CPU", "taller")
    press("3. Disk", "remove")
    press("1. Memory", "left")  # already first: stays
    layout = view.current_layout("edited")
    assert [(p.kind, p.width, p.height) for p in layout.panels] == [("memory", 6, 320), ("cpu", 8, 380)]
    assert list(bar.target.options) == ["1. Memory", "2. CPU"]
    # A single owner has no lake: its menu offers every kind but the fleet overview.
    assert set(bar.add_kind.options.values()) == set(PANEL_KINDS) - {"fleet"}
    bar.add_kind.value = "cores"
    bar.add.clicks += 1
    assert [p.kind for p in view.panels] == ["memory", "cpu", "cores"]
    assert list(bar.target.options)[-1] == "3. CPU per core"


def test_layouts_save_load_default_export_import(app: AppContext) -> None:
    view = _view(app)
    bar = view.toolbar
    bar.open()
    assert list(bar.saved.options) == ["overview (built-in)", "host (built-in)"], \
        "the built-in layouts are listed before any is saved"
    view.card_action(view.cards[-1], "remove")
    bar.name.value = "mine"
    bar._save()
    assert list(bar.saved.options) == ["mine", "overview (built-in)", "host (built-in)"]
    view.set_layout(DEFAULT_LAYOUT)
    assert len(view.cards) == len(DEFAULT_LAYOUT.panels)
    bar.saved.value = ("saved", "mine")
    bar.run(bar._load)
    assert "Loaded layout 'mine'" in bar.message.object
    assert len(view.cards) == len(DEFAULT_LAYOUT.panels) - 1
    bar.run(bar._default)
    assert app.layouts.default().name == "mine"
    assert list(bar.saved.options) == ["mine (default)", "overview (built-in)", "host (built-in)"]
    # The built-in overview can always be restored, as what opens by default too.
    bar.saved.value = ("built-in", "overview")
    bar.run(bar._default)
    assert app.layouts.default() == DEFAULT_LAYOUT and "'overview' opens by default now" in bar.message.object
    bar.run(bar._load)
    assert len(view.cards) == len(DEFAULT_LAYOUT.panels) and view.layout_name == "overview"
    bar.name.value = "overview"
    bar.run(bar._save)
    assert "built-in layout" in bar.message.object and app.layouts.list()[0].name == "mine"
    bar.run(bar._delete)
    assert "cannot be deleted" in bar.message.object
    bar.saved.value = ("saved", "mine")
    bar.run(bar._load)
    exported = json.loads(bar._export_file().getvalue())
    assert exported["name"] == "mine" and len(exported["panels"]) == len(DEFAULT_LAYOUT.panels) - 1
    exported["name"] = "imported"
    bar.upload.value = json.dumps(exported).encode()
    assert "Imported and loaded layout 'imported'" in bar.message.object
    assert sorted(bar.saved.options) == ["host (built-in)", "imported", "mine", "overview (built-in)"]
    bar.upload.value = b'{"name": "x", "panels": [{"kind": "pie"}]}'
    assert "unknown kind 'pie'" in bar.message.object
    bar.saved.value = ("saved", "imported")
    bar.run(bar._delete)
    assert bar.confirm_row.visible and "Delete the saved layout 'imported'?" in bar.question.object
    assert "imported" in {i.name for i in app.layouts.list()}, "nothing is deleted before the confirmation"
    bar.no.clicks += 1
    assert not bar.confirm_row.visible and "imported" in {i.name for i in app.layouts.list()}
    bar.run(bar._delete)
    bar.yes.clicks += 1
    assert list(bar.saved.options) == ["mine", "overview (built-in)", "host (built-in)"]
    assert "Deleted layout 'imported'" in bar.message.object
    assert from_file_json(json.dumps(exported)).name == "imported"


def test_every_layout_kind_has_a_panel_class() -> None:
    from monitorkit.dashboard.layouts import PANEL_KINDS
    from monitorkit.dashboard.panels import PANELS

    assert set(PANELS) == set(PANEL_KINDS)


class _Shelf:
    """Saved layouts in a dict: a LayoutStore without a database."""

    writable = True

    def __init__(self) -> None:
        self.saved: dict[str, Layout] = {}

    def list(self) -> list[Any]:
        from monitorkit.dashboard.layouts import LayoutInfo

        return [LayoutInfo(n, False, len(v.panels), utcnow()) for n, v in sorted(self.saved.items())]

    def load(self, name: str) -> Layout:
        return self.saved[name]

    def save(self, layout: Layout, default: bool = False) -> None:
        self.saved[layout.name] = layout

    def set_default(self, name: str) -> None:
        pass

    def clear_default(self) -> None:
        pass

    def delete(self, name: str) -> None:
        del self.saved[name]


class _Host:
    """The least a LayoutHost must offer: the toolbar edits it without a DashboardView."""

    def __init__(self) -> None:
        self.layout_name = "start"
        self.cards: list[Any] = []
        self.panel_kinds = {"cpu": "CPU"}
        self.layouts = _Shelf()
        self.shown: list[Layout] = []

    def current_layout(self, name: str | None = None) -> Layout:
        return Layout(name or self.layout_name, (PanelSpec("cpu"),))

    def set_layout(self, layout: Layout) -> None:
        self.shown.append(layout)

    def add_panel(self, spec: PanelSpec) -> None:
        pass

    def card_action(self, card: Any, action: str) -> None:
        pass


def test_the_layout_toolbar_needs_only_a_layout_host() -> None:
    from monitorkit.dashboard.editor import LayoutToolbar

    host = _Host()
    bar = LayoutToolbar(host)
    bar.open()
    bar.name.value = "mine"
    bar.run(bar._save)
    assert host.layout_name == "mine" and list(host.layouts.saved) == ["mine"]
    bar.run(bar._load)
    assert [layout.name for layout in host.shown] == ["mine"] and "Loaded layout 'mine'" in bar.message.object


def _fire(store: Store) -> None:
    now = utcnow()
    store.submit(lambda con: con.execute(
        "INSERT INTO alerts (id, rule, fingerprint, labels, kind, severity, state, value, summary, since, updated_at, "
        "inhibited) VALUES (9, 'disk_full', 'f', MAP {'alertname': 'disk_full', 'mount': '/'}, 'resource', 'critical', "
        "'firing', 99.0, 'disk / is full', ?, ?, false)", [now, now])).result()


def test_alerts_show_and_acknowledge(app: AppContext, store: Store) -> None:
    view = _view(app, Layout("a", (PanelSpec("alerts"),)))
    panel = _panel(view, "alerts")
    assert isinstance(panel, AlertsPanel)
    assert "No alert is firing" in panel.active.objects[0].object
    _fire(store)
    view.apply(app.feed.poll())
    row = panel.active.objects[0]
    text, ack, silence = row.objects
    assert "disk_full" in text.object and "mount=/" in text.object and "firing" in text.object
    ack.clicks += 1
    assert app.actions.calls == [("ack", 9, "dashboard")]  # type: ignore[union-attr]
    assert "acknowledged by dashboard" in panel.message.object
    panel.duration.value = "4 h"
    silence.clicks += 1
    assert app.actions.calls[-1] == ("silence", 9, "14400")  # type: ignore[union-attr]
    assert "Silence #7" in panel.message.object
    app.actions.fail = True  # type: ignore[union-attr]
    ack.clicks += 1
    assert "the rule engine is not running" in panel.message.object


def test_recent_alerts_tell_pending_only_from_resolved(app: AppContext, store: Store) -> None:
    view = _view(app, Layout("a", (PanelSpec("alerts"),)))
    panel = _panel(view, "alerts")
    assert isinstance(panel, AlertsPanel)
    now = utcnow()
    store.submit(lambda con: con.execute(
        "INSERT INTO alerts (id, rule, fingerprint, labels, kind, severity, state, value, summary, since, updated_at, "
        "inhibited) VALUES (5, 'disk_full_predicted', 'p', MAP {'mount': '/'}, 'resource', 'warning', 'inactive', "
        "NULL, '', NULL, ?, false)", [now])).result()
    view.apply(app.feed.poll())
    assert "<th>ended</th>" in panel.recent.object and "pending only (never fired)" in panel.recent.object
    assert "inactive" not in panel.recent.object and "resolved" not in panel.recent.object


def test_health_falls_back_to_collector_up_then_uses_the_health_views(app: AppContext, store: Store) -> None:
    view = _view(app, Layout("h", (PanelSpec("health"),)))
    panel = _panel(view, "health")
    assert isinstance(panel, HealthPanel)
    assert "collector cpu" in panel.summary.object and "data-status='ok'" in panel.summary.object
    now = utcnow()
    store.submit(lambda con: (
        con.execute("INSERT INTO health_status VALUES ('writer', 'health_writer', 'failing', 'no commits', ?, ?)", [now, now]),
        con.execute("INSERT INTO health_history VALUES (?, 'writer', 'health_writer', 'failing', 'ok', 'no commits')", [now]),
    )).result()
    view.apply(app.feed.poll())
    assert "data-status='failing'" in panel.summary.object and "no commits" in panel.summary.object
    assert panel.source.data["component"] == ["writer"] and panel.timeline.visible


def test_top_processes_and_app_metrics(app: AppContext, store: Store) -> None:
    view = _view(app, Layout("p", (PanelSpec("processes"), PanelSpec("app"))))
    procs, app_panel = _panel(view, "processes"), _panel(view, "app")
    assert isinstance(procs, ProcessesPanel) and isinstance(app_panel, AppPanel)
    assert "<td>init</td>" in procs.table.object and "<td>1.0</td>" in procs.table.object
    assert app_panel.empty.visible
    t = utcnow()
    store.write([Sample(t + timedelta(seconds=s), "protocol_request_duration_seconds_bucket",
                        {"protocol": "http", "method": "GET", "le": le}, n * s, "web1")
                 for s in (0, 1) for le, n in (("0.1", 50.0), ("0.5", 90.0), ("+Inf", 100.0))])
    store.write([Sample(t + timedelta(seconds=s), "protocol_requests_total", {"protocol": "http", "method": "GET",
                                                                                "status": "200"}, 100.0 * s, "web1")
                 for s in (0, 1)])
    store.flush()
    view.apply(app.feed.poll())
    assert not app_panel.empty.visible
    latency = app_panel.latency
    p50, p95 = (line.source.data["v"] for line in latency.lines.values())
    assert p50 == [pytest.approx(0.1)] and p95 == [pytest.approx(0.5)], "past the last finite bound: that bound"



def test_top_processes_from_process_groups(app: AppContext, store: Store) -> None:
    t = utcnow() + timedelta(seconds=30)
    web = {"name": "python", "user": "www", "command": "python app.py"}
    idle = {"name": "cron", "user": "root", "command": "cron"}
    store.write([
        Sample(t, "process_group_cpu_percent", web, 42.0, "web1"),
        Sample(t, "process_group_procs", web, 3.0, "web1"),
        Sample(t, "process_group_pid", web, 4242.0, "web1"),
        Sample(t, "process_group_memory_bytes", {**web, "kind": "resident"}, 3 * 2.0 ** 20, "web1"),
        Sample(t, "process_group_memory_bytes", {**web, "kind": "virtual"}, 900 * 2.0 ** 20, "web1"),
        Sample(t, "process_group_threads", web, 12.0, "web1"),
        Sample(t, "process_group_cpu_percent", idle, 0.0, "web1"),
        Sample(t, "process_group_procs", idle, 0.0, "web1"),
    ])
    store.flush()
    view = _view(app, Layout("p", (PanelSpec("processes"),)))
    view.apply(app.feed.poll())
    table = _panel(view, "processes").table.object
    assert ("<tr><td>4242</td><td>python · python app.py</td><td>www</td><td>3</td><td>42.0</td><td>3.0</td>"
            "<td>12</td><td>0</td></tr>") in table, table
    assert "cron" not in table, "a group with no process left is not shown"
    assert "init" not in table, "only the last collection is shown"


def test_a_failed_processes_collect_takes_its_rows_out_until_the_groups_come_back(store: Store) -> None:
    t = utcnow() - timedelta(seconds=20)
    groups = {"python": {"name": "python", "user": "www", "command": "python"},
              "backup": {"name": "backup", "user": "root", "command": "backup"}}

    def collect(at: Any) -> list[Sample]:
        return [Sample(at, name, labels, value, "web1") for labels in groups.values()
                for name, value in (("process_group_cpu_percent", 5.0), ("process_group_procs", 1.0))]

    tracker = SeriesTracker()  # the scheduler's, for the processes collector
    store.write(collect(t))
    store.flush()
    tracker.vanished(collect(t))
    reader = StoreReader(store)
    feed = Feed(reader, cached=cached_metrics())
    app = AppContext(feed, reader, LayoutBackend(reader, lambda fn: store.submit(fn).result(10)), FakeActions(),
                     None, 1.0, default_host="web1")
    feed.prime()
    view = _view(app, Layout("p", (PanelSpec("processes"),)))
    table = _panel(view, "processes")
    assert "<td>python</td>" in table.table.object and "<td>backup</td>" in table.table.object
    failed = t + timedelta(seconds=10)  # the collect fails: every series of the last one gets a marker
    assert submit_stale(store, tracker.vanished([]), failed).result() == 4
    view.apply(feed.poll())
    assert "<td>python</td>" not in table.table.object and "<td>backup</td>" not in table.table.object
    assert "no current process samples" in table.table.object, table.table.object
    store.write(collect(t + timedelta(seconds=12)))  # the next collect works again
    store.flush()
    view.apply(feed.poll())
    assert "<td>python</td>" in table.table.object and "<td>backup</td>" in table.table.object


def test_sql_panel_shows_results_and_refusals(tmp_db: Path) -> None:
    with Owner(tmp_db) as owner:
        owner.store.write(host_samples(utcnow()))
        owner.store.flush()
        reader = StoreReader(owner.store)
        feed = Feed(reader)
        feed.prime()
        assert owner.info is not None
        console = SqlConsole.in_owner(owner.store, feed.tables)
        panel = SqlPanel(PanelSpec("sql", options={"query": "FROM latest"}), _ctx(feed, console))
        asyncio.run(panel.run("SELECT name, count(*) AS n FROM samples GROUP BY name ORDER BY name"))
        assert panel.last_rows == 6 and "6 rows" in panel.message.object
        assert panel.chart.object is not None, "a label column and a number make a bar chart"
        asyncio.run(panel.run("SELECT time_bucket(INTERVAL 1 SECOND, time) AS t, avg(value) AS v FROM samples GROUP BY 1"))
        assert panel.chart.object is not None
        asyncio.run(panel.run("DELETE FROM samples_raw"))
        assert panel.last_rows == -1 and "read-only" in panel.message.object
        assert panel.table.object is None and panel.chart.object is None, "the previous result is cleared"
        asyncio.run(panel.run("SELECT * FROM samples WHERE name = 'cpu_percnt'"))
        assert "did you mean cpu_percent?" in panel.message.object and "0 rows" in panel.message.object
        asyncio.run(panel.run("SELECT s.name, r.value FROM samples_raw r JOIN series s USING (series_id) "
                              "WHERE s.name = 'memory_percent'"))
        assert panel.last_rows == 1 and panel.table.formatters["value"](30.0) == "30 %", "the unit of the one metric read"
        asyncio.run(panel.run("SELECT max(value) AS rss_bytes FROM latest WHERE name = 'process_rss_bytes'"))
        assert panel.table.formatters["rss_bytes"](2.0 ** 20) == "1 MiB"
        assert [q.split()[0] for q in panel.ran][:2] == ["SELECT", "SELECT"] and len(panel.history.options) == len(panel.ran)
        assert panel.current_spec().options["query"] == "FROM latest"
        console.close()


def _ctx(feed: Feed, console: SqlConsole | None) -> Any:
    from monitorkit.dashboard.panels import PanelContext

    return PanelContext(feed, None, console)


def test_notebook_dashboard_in_process_and_from_a_closed_file(tmp_db: Path) -> None:
    with Store(tmp_db, schema=SCHEMA) as store:
        store.write(host_samples(utcnow()))
        store.flush()
        board = dashboard(db=store, panels=["cpu", "alerts"], range="5m")
        assert [p.kind for p in board.view.panels] == ["cpu", "alerts"]
        assert board.callback is not None and board.callback.period == 1000
        store.write(host_samples(utcnow() + timedelta(seconds=1), i=1))
        store.flush()
        board.poll()
        assert board.view.deltas == 1 and board.view.points_streamed >= 1
        assert board.__panel__() is board.view.root
        board.stop()
    board = dashboard(db=tmp_db, panels=["memory", "sql"])
    assert board.view.app.console is not None and board.view.app.layouts.writable is False
    assert board.view.app.console.run("SELECT count(*) FROM series").table.num_rows == 1
    board.stop()
    with pytest.raises(Exception, match="unknown panel 'pie'"):
        dashboard(db=tmp_db, panels=["pie"])


def test_result_charts_put_times_in_epoch_milliseconds() -> None:
    import pyarrow as pa

    from monitorkit.dashboard.panels.sql import result_chart

    now = utcnow()
    table = pa.table({"time": pa.array([now, now + timedelta(seconds=5)], pa.timestamp("us", tz="UTC")),
                      "v": [1.0, 2.0], "label": ["a", "b"]})
    fig = result_chart(table.to_pandas())
    assert fig is not None
    # One line per label value, its times in epoch milliseconds.
    (a,), (b,) = (r.data_source.data["x"] for r in fig.renderers)
    assert a == pytest.approx(now.timestamp() * 1000, abs=1) and b - a == pytest.approx(5000)
    assert [item.label.value for item in fig.legend.items] == ["a", "b"]
    single = result_chart(table.select(["time", "v"]).to_pandas())
    assert single is not None
    xs = single.renderers[0].data_source.data["x"]
    assert xs[0] == pytest.approx(now.timestamp() * 1000, abs=1) and xs[1] - xs[0] == pytest.approx(5000)
    bars = result_chart(table.select(["label", "v"]).to_pandas())
    assert bars is not None
    assert list(bars.x_range.factors) == ["a", "b"]
    assert result_chart(table.select(["label"]).to_pandas()) is None


def test_explore_charts_any_metric_grouped_and_aggregated(app: AppContext, store: Store) -> None:
    from monitorkit.dashboard.panels import ExplorePanel

    t = utcnow() - timedelta(seconds=5)
    store.write([Sample(t + timedelta(seconds=s), "jobs_processed_total", {"queue": q, "worker": w}, 10.0 * s * (i + 1),
                        "web1") for s in range(4) for i, (q, w) in enumerate([("mail", "a"), ("mail", "b"), ("pdf", "a")])])
    store.write([Sample(t + timedelta(seconds=s), "job_seconds_bucket", {"queue": "mail", "le": le}, n * s, "web1")
                 for s in range(4) for le, n in (("0.1", 5.0), ("1", 9.0), ("+Inf", 10.0))])
    store.flush()
    view = _view(app, Layout("e", (PanelSpec("explore", 12, 400, {"metric": "jobs_processed_total",
                                                                   "group_by": ["queue"], "agg": "sum"}),)))
    view.apply(app.feed.poll())
    panel = _panel(view, "explore")
    assert isinstance(panel, ExplorePanel)
    assert "jobs_processed_total" in panel.metric.options and "job_seconds" in panel.metric.options
    assert panel.group.options == ["queue", "worker"] and "queue=mail" in panel.filters.options
    lines = {line.label: line for line in panel.chart.lines.values()}
    assert sorted(lines) == ["queue=mail (sum)", "queue=pdf (sum)"] and len(lines["queue=mail (sum)"].inputs) == 2
    # mail: 10/s + 20/s summed; pdf: 30/s (the history comes from one query: the metric is not in the feed's cache)
    assert lines["queue=mail (sum)"].source.data["v"][-1] == pytest.approx(30.0)
    assert lines["queue=pdf (sum)"].source.data["v"][-1] == pytest.approx(30.0)
    assert panel.chart.unit == "per second"
    panel.filters.value = ["worker=a"]
    assert sorted(line.label for line in panel.chart.lines.values()) == ["queue=mail (sum)", "queue=pdf (sum)"]
    assert all(len(line.inputs) == 1 for line in panel.chart.lines.values())
    saved = panel.current_spec().options
    assert saved == {"metric": "jobs_processed_total", "filters": ["worker=a"], "group_by": ["queue"], "agg": "sum"}
    panel.metric.value = "job_seconds"
    assert list(panel.agg.options) == ["p50", "p90", "p95", "p99"] and panel.agg.value == "p50"
    panel.agg.value = "p95"
    (quantile,) = panel.chart.lines.values()
    assert quantile.source.data["v"][-1] == pytest.approx(1.0), "the p95 of 10 requests, 9 under 1 s: the 1 s bucket"
    assert "job_seconds_bucket" in panel.sql("web1", view.rng)


def test_explore_is_a_layout_kind_and_its_query_runs(tmp_db: Path) -> None:
    from monitorkit.dashboard.layouts import PANEL_KINDS, layout_from_data
    from monitorkit.dashboard.panels import PANELS, ExplorePanel

    assert PANELS["explore"] is ExplorePanel and "explore" in PANEL_KINDS
    layout = layout_from_data({"panels": [{"kind": "explore", "options": {"metric": "cpu_percent"}}]}, "x")
    assert layout.panels[0].options == {"metric": "cpu_percent"}
    with Owner(tmp_db) as owner:
        owner.store.write(host_samples(utcnow()))
        owner.store.flush()
        reader = StoreReader(owner.store)
        feed = Feed(reader)
        feed.prime()
        console = SqlConsole.in_owner(owner.store, feed.tables)
        panel = ExplorePanel(PanelSpec("explore", options={"metric": "cpu_percent", "group_by": ["cpu"], "agg": "max"}),
                             _ctx(feed, console))
        assert console.run(panel.sql("web1", None)).table.num_rows >= 1
        panel.metric.value = "net_bytes_recv_total"
        assert console.run(panel.sql("web1", None)).table.column_names == ["time", "series", "per_second"]
        console.close()


def test_only_a_dashboard_over_a_lake_offers_the_fleet_overview(app: AppContext) -> None:
    assert "fleet" not in _view(app, SMALL).panel_kinds
    app.feed.fleet = object()  # type: ignore[attr-defined]  # what the hub's feed carries (its FleetSource)
    try:
        assert _view(app, SMALL).panel_kinds == PANEL_KINDS
    finally:
        del app.feed.fleet  # type: ignore[attr-defined]
