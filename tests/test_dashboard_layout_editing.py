"""Layouts by direct manipulation, a URL per view, and the name recorded with an acknowledgement.

In process: the grid's packing, places from the browser, confirmations, the URL's layout and range.
In Chromium against `monitorkit serve`: drag a panel and resize another, save, reload and see the same
geometry; open a layout by its URL; acknowledge and silence under a typed name kept by the browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import invoke
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Served, require_chromium, served
from shared_helpers import wait_for

from monitorkit.dashboard.actions import check_actor
from monitorkit.dashboard.app import AppContext, DashboardView, LayoutBackend
from monitorkit.dashboard.errors import AlertActionError, LayoutError
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.grid import place
from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, Layout, PanelSpec, from_file_json, parse_spec, to_file_json
from monitorkit.dashboard.links import query, requested
from monitorkit.dashboard.reader import StoreReader
from monitorkit.owner.connect import connect
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store

# -- in process ------------------------------------------------------------------------------


@pytest.fixture
def app(store: Store) -> AppContext:
    store.write([Sample(utcnow(), "cpu_percent", {}, 5.0)])
    store.flush()
    reader = StoreReader(store)
    feed = Feed(reader)
    feed.prime()
    return AppContext(feed, reader, LayoutBackend(reader, lambda fn: store.submit(fn).result(10)))


def _view(app: AppContext, layout: Layout) -> DashboardView:
    view = DashboardView(app, layout)
    view.start(app.feed.snapshot())
    return view


def test_panels_without_places_flow_left_to_right_and_pack_up() -> None:
    assert place([(None, None, 6, 16), (None, None, 6, 10), (None, None, 6, 8), (None, None, 12, 4)]) == [
        (0, 0, 6, 16), (6, 0, 6, 10), (0, 16, 6, 8), (0, 24, 12, 4)]
    # A saved place is kept, and packed up as GridStack does (nothing floats in mid-air, nothing overlaps).
    assert place([(6, 40, 6, 10), (0, 0, 12, 5), (None, None, 6, 5)]) == [(6, 5, 6, 10), (0, 0, 12, 5), (0, 5, 6, 5)]
    assert place([(10, 0, 6, 4)]) == [(6, 0, 6, 4)], "a place past the right edge moves left"


def test_places_round_trip_and_bad_ones_are_refused() -> None:
    layout = Layout("p", (PanelSpec("cpu", 4, 300, {}, 8, 3), PanelSpec("memory")))
    assert from_file_json(to_file_json(layout)) == layout
    with pytest.raises(LayoutError, match="panel 0 x must be an integer from 0 to 8"):
        parse_spec({"panels": [{"kind": "cpu", "width": 4, "x": 9}]}, "p")
    with pytest.raises(LayoutError, match="panel 0 y must be an integer"):
        parse_spec({"panels": [{"kind": "cpu", "y": -1}]}, "p")


def test_places_from_the_browser_become_the_layout(app: AppContext) -> None:
    view = _view(app, Layout("t", (PanelSpec("cpu", 6), PanelSpec("memory", 6), PanelSpec("disk", 12))))
    assert [(c.panel.kind, c.x, c.y, c.width, c.rows) for c in view.cards] == [
        ("cpu", 0, 0, 6, 16), ("memory", 6, 0, 6, 16), ("disk", 0, 16, 12, 16)]
    cpu, memory, disk = (str(id(c.view)) for c in view.cards)
    # What GridStack reports after disk was dragged beside CPU and made taller, memory below CPU (cells).
    view.grid.view.state = [{"id": cpu, "x0": 0, "y0": 0, "x1": 6, "y1": 16},
                            {"id": disk, "x0": 6, "y0": 0, "x1": 12, "y1": 24},
                            {"id": memory, "x0": 0, "y0": 16, "x1": 6, "y1": 26}]
    layout = view.current_layout("moved")
    moved = [("cpu", 0, 0, 6, 320), ("disk", 6, 0, 6, 480), ("memory", 0, 16, 6, 200)]
    assert [(p.kind, p.x, p.y, p.width, p.height) for p in layout.panels] == moved
    assert view.cards[1].panel.kind == "disk", "the cards follow grid order"
    # Loading the saved layout back puts every panel where it was.
    view.set_layout(DEFAULT_LAYOUT)
    assert view.cards[1].panel.kind == "memory"
    view.set_layout(from_file_json(to_file_json(layout)))
    assert [(c.panel.kind, c.x, c.y, c.width, c.height) for c in view.cards] == moved
    assert list(view.grid.view.objects) == [(0, 0, 16, 6), (0, 6, 24, 12), (16, 0, 26, 6)], "(y0, x0, y1, x1) to GridStack"
    view.grid.view.state = [{"id": "gone", "x0": 0, "y0": 0, "x1": 1, "y1": 1}]  # a stale report changes nothing
    assert view.current_layout("moved") == layout._replace(name="moved")


def test_the_chosen_panel_is_highlighted_while_editing(app: AppContext) -> None:
    view = _view(app, Layout("t", (PanelSpec("cpu", 6), PanelSpec("memory", 6))))
    bar = view.toolbar
    bar.open()
    assert view.grid.view.selected == "" and not view.grid.view.allow_drag
    bar.editing.value = True
    assert view.grid.view.allow_drag and view.grid.view.allow_resize
    assert view.grid.view.selected == str(id(view.cards[0].view)), "the panel the buttons act on is highlighted"
    view.grid.view.selected = str(id(view.cards[1].view))  # a click on the memory card in the browser
    assert bar.target.value == id(view.cards[1])
    assert [b.label for b in bar.actions] == ["Move left", "Move right", "Narrower", "Wider", "Shorter", "Taller", "Remove"]
    bar.editing.value = False
    assert view.grid.view.selected == "" and not view.grid.view.allow_drag


def test_saving_over_or_importing_onto_another_layout_asks_first(app: AppContext) -> None:
    view = _view(app, Layout("t", (PanelSpec("cpu", 6), PanelSpec("memory", 6))))
    bar = view.toolbar
    bar.open()
    bar.name.value = "mine"
    bar.run(bar._save)
    view.card_action(view.cards[-1], "remove")
    bar.run(bar._save)
    assert not bar.confirm_row.visible, "saving the layout on screen under its own name asks nothing"
    assert [p.kind for p in app.layouts.load("mine").panels] == ["cpu"]
    view.set_layout(Layout("other", (PanelSpec("disk", 12),)))
    bar.name.value = "mine"
    bar.run(bar._save)
    assert bar.confirm_row.visible and "'mine' is saved already" in bar.question.object and bar.yes.label == "Replace"
    assert [p.kind for p in app.layouts.load("mine").panels] == ["cpu"], "not replaced before the answer"
    bar.no.clicks += 1
    assert [p.kind for p in app.layouts.load("mine").panels] == ["cpu"] and "Nothing changed" in bar.message.object
    bar.run(bar._save)
    bar.yes.clicks += 1
    assert [p.kind for p in app.layouts.load("mine").panels] == ["disk"] and "Saved layout 'mine'" in bar.message.object
    bar.upload.value = to_file_json(Layout("mine", (PanelSpec("health", 12),))).encode()
    assert bar.confirm_row.visible and "replaces the saved one" in bar.question.object
    assert [p.kind for p in app.layouts.load("mine").panels] == ["disk"]
    bar.yes.clicks += 1
    assert [p.kind for p in app.layouts.load("mine").panels] == ["health"] and [p.kind for p in view.panels] == ["health"]
    bar.upload.value = to_file_json(Layout("overview", (PanelSpec("health", 12),))).encode()
    assert "built-in layout" in bar.message.object and not bar.confirm_row.visible


def test_the_url_names_a_layout_and_a_range(app: AppContext) -> None:
    app.layouts.save(Layout("ops", (PanelSpec("alerts", 12),), "1h"))
    assert requested({}, app.layouts) == (DEFAULT_LAYOUT, [])
    layout, problems = requested({"layout": [b"ops"], "range": [b"6h"]}, app.layouts)
    assert (layout.name, layout.range, problems) == ("ops", "6h", [])
    assert requested({"layout": [b"overview"]}, app.layouts)[0] == DEFAULT_LAYOUT, "built-in layouts have URLs too"
    layout, problems = requested({"layout": [b"<b>nope</b>"], "range": [b"2h"]}, app.layouts)
    assert layout == DEFAULT_LAYOUT
    assert problems[0].startswith("no layout named '<b>nope</b>'; the layouts are: overview, ")
    assert problems[0].endswith(", ops; showing 'overview'"), problems[0]
    assert "unknown range '2h'" in problems[1]
    view = _view(app, layout)
    view.notify(problems[0])
    assert "&lt;b&gt;nope&lt;/b&gt;" in view.notice.object and "<b>" not in view.notice.object
    assert query("my ops", "6h") == "?layout=my+ops&range=6h"


def test_a_name_is_needed_to_act() -> None:
    assert check_actor("  Ada  ") == "Ada"
    for bad in ("", "   ", "a" * 65, "tab\there"):
        with pytest.raises(AlertActionError):
            check_actor(bad)


# -- in Chromium against `monitorkit serve` ----------------------------------------------------


SMALL = Layout("small", (PanelSpec("cpu", 6), PanelSpec("memory", 6), PanelSpec("disk", 6), PanelSpec("alerts", 6)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`monitorkit serve` with a small saved layout (a page the browser draws quickly on a busy machine)."""


    folder = tmp_path_factory.mktemp("editing")
    (folder / "small.json").write_text(to_file_json(SMALL))
    with served(folder) as s:
        done = invoke(["layouts", "import", str(folder / "small.json"), "--db", str(s.db)])
        assert done.exit_code == 0 and "through the running dashboard" in done.output, done.output
        yield s


# Each card's place on the grid, from the GridStack item that holds its element: {kind: [x, y, w, h]}.
GEOMETRY_JS = """() => { const out = {};
  const item = (el) => { for (let n = el; n; n = n.parentNode || n.host) {
    if (n.classList && n.classList.contains('grid-stack-item')) return n } return null };
  const walk = (root) => { for (const n of root.querySelectorAll('*')) {
    const kind = n.classList && Array.from(n.classList).find(c => c.startsWith('mk-card-'));
    const box = kind && item(n);
    if (box) out[kind.slice(8)] = ['gs-x', 'gs-y', 'gs-w', 'gs-h'].map(a => +box.getAttribute(a));
    if (n.shadowRoot) walk(n.shadowRoot);
  } }; walk(document); return out }"""


def _geometry(page: Any) -> dict[str, list[int]]:
    return page.evaluate(GEOMETRY_JS)


def _item(page: Any, kind: str) -> Any:
    return page.locator(".grid-stack-item").filter(has=page.locator(f".mk-card-{kind}"))


def _drag(page: Any, x: float, y: float, dx: float, dy: float) -> None:
    # GridStack follows the mouse: move in small steps, as a hand does.
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 16):
        page.mouse.move(x + dx * step / 15, y + dy * step / 15)
        page.wait_for_timeout(20)
    page.mouse.up()


def _open(page: Any, server: Served, query: str) -> None:
    page.goto(f"{server.url}/{query}")
    page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")


@pytest.mark.browser
def test_drag_resize_save_reload_and_open_by_url(server: Served) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(90_000)
        expect.set_options(timeout=90_000)
        _open(page, server, f"?token={server.token}&layout=small&range=15m")  # a layout opened by its URL
        assert page.url == f"{server.url}/?layout=small&range=15m", "the token left the address, the view stayed"
        start = _geometry(page)
        assert start == {"cpu": [0, 0, 6, 16], "memory": [6, 0, 6, 16], "disk": [0, 16, 6, 16], "alerts": [6, 16, 6, 16]}
        page.locator(".mk-live button").click()  # paused: nothing streams while the mouse works

        page.locator(".mk-layouts button").click()
        page.locator(".mk-edit button").click()
        expect(page.locator(".grid-stack-item.mk-selected")).to_have_count(1)
        _item(page, "disk").click(position={"x": 200, "y": 12})  # on the card's title
        expect(_item(page, "disk")).to_have_class(re.compile(r"\bmk-selected\b"))
        expect(page.locator(".grid-stack-item.mk-selected")).to_have_count(1)
        chosen = page.locator(".mk-target select")
        wait_for(lambda: "Disk" in chosen.evaluate("el => el.options[el.selectedIndex].text"), 30,
                 "the clicked card did not become the panel the buttons act on")

        # Resize CPU by its corner: two columns narrower, five rows taller; drag Memory down below Alerts.
        handle = _item(page, "cpu").locator(".ui-resizable-se").bounding_box()
        assert handle is not None
        _drag(page, handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2, -240, 100)
        box = _item(page, "memory").bounding_box()
        assert box is not None
        _drag(page, box["x"] + 100, box["y"] + 12, 0, 700)
        page.wait_for_timeout(1000)
        moved = _geometry(page)
        assert moved["cpu"][2:] == [4, 21], moved
        assert moved["alerts"][:2] == [6, 0] and moved["memory"][:2] == [6, 16], moved  # Alerts floated up
        assert moved["disk"][1] == 21, "Disk made room under the taller CPU"

        page.locator(".mk-layout-name input").fill("dragged")
        page.locator(".mk-layout-name input").press("Enter")
        page.locator(".mk-save button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text("Saved layout 'dragged'")
        page.wait_for_url("**/?layout=dragged&range=15m")

        page.reload()  # the address names the layout now: the same geometry comes back
        page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")
        assert _geometry(page) == moved

        # A link opens the layout over its range; another range or layout moves the address along.
        _open(page, server, "?layout=dragged&range=6h")
        assert _geometry(page) == moved
        expect(page.locator(".mk-range select")).to_have_value("6h")
        page.locator(".mk-range select").select_option("1h")
        page.wait_for_url("**/?layout=dragged&range=1h")
        page.locator(".mk-layouts button").click()
        page.locator(".mk-saved select").select_option(label="small")
        page.locator(".mk-load button").click()
        page.wait_for_url("**/?layout=small&range=15m")
        wait_for(lambda: _geometry(page) == start, 30, f"not back to the saved places: {_geometry(page)}")

        # Deleting asks first.
        page.locator(".mk-saved select").select_option(label="dragged")
        page.locator(".mk-delete button").click()
        expect(page.locator(".mk-confirm-text")).to_contain_text("Delete the saved layout 'dragged'?")
        page.locator(".mk-confirm button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text("Deleted layout 'dragged'")

        page.goto(f"{server.url}/?layout=%3Cimg%20src%3Dx%3Enope&range=15m")
        expect(page.locator(".mk-error").first).to_contain_text("no layout named '<img src=x>nope'")
        assert page.locator("img[src=x]").count() == 0
        browser.close()


@pytest.mark.browser
def test_acknowledge_and_silence_record_the_typed_name(server: Served) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(90_000)
        expect.set_options(timeout=90_000)
        _open(page, server, f"?token={server.token}&layout=small")
        ack = page.locator(".mk-ack button").first
        expect(ack).to_be_enabled()
        expect(page.locator(".mk-who-input")).to_have_value("")
        ack.click()
        expect(page.locator(".mk-message")).to_contain_text("type your name in 'Your name' first")
        page.locator(".mk-who-input").fill("Ada <Lovelace>")
        page.locator(".mk-who-input").press("Tab")
        ack.click()
        expect(page.locator(".mk-alert").first).to_contain_text("acknowledged by Ada <Lovelace>")
        assert page.locator("lovelace").count() == 0, "the name is shown as text"

        _open(page, server, "?layout=small")  # the browser remembers who it is
        expect(page.locator(".mk-who-input")).to_have_value("Ada <Lovelace>")
        page.locator(".mk-silence button").first.click()
        expect(page.locator(".mk-message")).to_contain_text("Silence #")
        browser.close()
    con = connect(server.db)
    try:
        assert con.execute("SELECT acked_by FROM alerts WHERE rule = 'dashboard_seeded'").fetchall() == [("Ada <Lovelace>",)]
        assert con.execute("SELECT created_by FROM silences").fetchall() == [("Ada <Lovelace>",)]
    finally:
        con.close()


def test_layout_files_written_before_places_still_load(tmp_path: Path) -> None:
    old = '{"name": "old", "version": 1, "panels": [{"kind": "cpu", "width": 6, "height": 320}]}'
    layout = from_file_json(old)
    assert layout.panels == (PanelSpec("cpu", 6, 320),) and layout.panels[0].x is None


def test_built_in_names_are_not_saved_and_the_overview_can_be_the_default_again(store: Store) -> None:
    from monitorkit.dashboard import layouts as lay

    with pytest.raises(LayoutError, match="'overview' is a built-in layout"):
        store.submit(lambda con: lay.save_layout(con, DEFAULT_LAYOUT)).result()
    mine = Layout("mine", (PanelSpec("cpu"),))
    store.submit(lambda con: lay.save_layout(con, mine, default=True)).result()
    cur = store.cursor()
    try:
        assert lay.default_layout(cur) == mine and lay.find_layout(cur, "overview") == DEFAULT_LAYOUT
        store.submit(lay.clear_default).result()
        assert lay.default_layout(cur) == DEFAULT_LAYOUT and lay.find_layout(cur, "mine") == mine
    finally:
        cur.close()
