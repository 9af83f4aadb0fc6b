"""Finding 2: no script injection through what users store or import, and no credential a page script could read.

Before: a layout named ``<img src=x onerror=...>`` (saved through the API, or imported from a
JSON file) ran its script when loaded from "Saved layouts", and the page's Bokeh session token
carried the ``?token=`` value or the signed login cookie, so that script could steal the login.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import panel as pn
import pytest
from bokeh.util.token import get_token_payload
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Served, require_chromium, served

from monitorkit.dashboard.app import AppContext, DashboardView, LayoutBackend
from monitorkit.dashboard.feed import Feed
from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, Layout, PanelSpec, install_layout
from monitorkit.dashboard.panels import cached_metrics
from monitorkit.dashboard.reader import StoreReader
from monitorkit.samples import Sample, utcnow
from monitorkit.store import Store

MARK = "window.__mk_xss=(window.__mk_xss||0)+1"
SAVED = f"<img src=x onerror={MARK}>"
IMPORTED = f"<svg onload={MARK}>"
BAD_KIND = f"<img src=y onerror={MARK}>"
TOKEN_RE = re.compile(r"(eyJ[A-Za-z0-9_\-]+)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("xss"), rules=False) as s:
        yield s


@pytest.mark.browser
def test_layout_names_and_layout_errors_are_shown_as_text(server: Served, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    install_layout(server.db, Layout(SAVED, (PanelSpec("cpu"), PanelSpec("memory"))))  # through the owner's API
    imported = tmp_path / "imported.json"
    imported.write_text(json.dumps({"name": IMPORTED, "version": 1, "panels": [{"kind": "cpu"}]}))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"name": "broken", "version": 1, "panels": [{"kind": BAD_KIND}]}))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1200})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        page.goto(f"{server.url}/?token={server.token}")
        page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")
        page.locator(".mk-layouts button").click()
        page.locator(".mk-saved select").select_option(SAVED)
        page.locator(".mk-load button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text(f"Loaded layout '{SAVED}'")
        page.locator(".mk-default button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text(f"'{SAVED}' opens by default now")
        page.locator(".mk-import input[type=file]").set_input_files(str(imported))
        expect(page.locator(".mk-layout-message")).to_contain_text(f"Imported and loaded layout '{IMPORTED}'")
        page.locator(".mk-import input[type=file]").set_input_files(str(broken))
        expect(page.locator(".mk-layout-message")).to_contain_text(f"unknown kind '{BAD_KIND}'")
        page.locator(".mk-saved select").select_option(IMPORTED)
        page.locator(".mk-delete button").click()
        expect(page.locator(".mk-confirm-text")).to_contain_text(f"Delete the saved layout '{IMPORTED}'?")
        page.locator(".mk-confirm button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text(f"Deleted layout '{IMPORTED}'")
        # The address still names the deleted layout: the page says so (as text) and opens the default,
        # named SAVED, so both names are in the page again.
        page.reload()
        page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")
        expect(page.locator(".mk-error").first).to_contain_text(f"no layout named '{IMPORTED}'")
        page.wait_for_timeout(500)
        assert page.evaluate("() => window.__mk_xss") is None, "an injected script ran"
        browser.close()



def test_the_session_token_in_the_page_carries_no_credential(server: Served) -> None:
    cookie = server.cookie()
    other = "username-localhost-8888=another-apps-secret"  # cookies are per host: other local apps' reach us too
    status, _, page = server.get("/?theme=default", {"Cookie": f"{cookie}; {other}",
                                                     "Authorization": f"Bearer {server.token}"})
    assert status == 200
    tokens = {t for t in TOKEN_RE.findall(page.decode()) if len(t) > 40}
    assert tokens, "the page embeds a Bokeh session token"
    for token in tokens:
        payload = get_token_payload(token)
        text = repr(payload)
        assert server.token not in text and cookie.split("=", 1)[1] not in text and "another-apps-secret" not in text
        assert payload.get("cookies") == {} and not {"Cookie", "Authorization"} & set(payload.get("headers", {}))
        assert "token" not in payload.get("arguments", {})


EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def hostile(store: Store) -> Store:
    """A store where every user-controlled text is an HTML payload: alerts, health, processes, tool runs, hosts."""
    now = utcnow()
    store.write([
        Sample(now, "cpu_percent", {}, 10.0, EVIL),
        Sample(now, "process_cpu_percent", {"pid": EVIL, "name": EVIL, "user": EVIL}, 1.0, EVIL),
        Sample(now, "process_group_cpu_percent", {"name": EVIL, "user": EVIL, "command": EVIL + "x"}, 1.0, EVIL),
        Sample(now, "monitorkit_collector_up", {"collector": EVIL}, 1.0, EVIL),
    ])
    store.flush()
    store.submit(lambda con: con.execute(
        "INSERT INTO alerts (id, rule, fingerprint, labels, kind, severity, state, value, summary, since, updated_at, "
        "inhibited, acked_by) VALUES (9, ?, 'f', MAP {'alertname': 'x', ?: ?}, 'resource', ?, 'firing', 1.0, ?, ?, ?, "
        "false, ?), (10, ?, 'g', MAP {'alertname': 'y'}, 'resource', 'info', ?, 1.0, ?, ?, ?, false, ?)",
        [EVIL, EVIL, EVIL, EVIL, EVIL, now, now, EVIL, EVIL, EVIL, EVIL, now, now, EVIL])).result()
    store.submit(lambda con: con.execute(
        "INSERT INTO health_status VALUES (?, 'health_x', ?, ?, ?, ?)", [EVIL, EVIL, EVIL, now, now])).result()
    store.submit(lambda con: con.execute(
        "INSERT INTO executions VALUES ('r1', ?, ?, 0.5, ?, ?, ?, MAP {}, ?, 1)",
        [EVIL, now - timedelta(seconds=1), EVIL, EVIL, EVIL, EVIL])).result()
    return store


def _html(view: DashboardView) -> list[str]:
    return [str(p.object) for p in view.root.select(pn.pane.HTML)]


def test_stored_text_reaches_every_pane_escaped(hostile: Store) -> None:
    reader = StoreReader(hostile)
    feed = Feed(reader, cached=cached_metrics())
    feed.prime()
    app = AppContext(feed, reader, LayoutBackend(reader, lambda fn: hostile.submit(fn).result(10)), default_host=EVIL)
    view = DashboardView(app, DEFAULT_LAYOUT._replace(name=EVIL))
    view.start(feed.snapshot())
    view.notify(EVIL)
    view.toolbar.open()
    view.toolbar.name.value = EVIL
    view.toolbar.run(view.toolbar._save)
    panes = _html(view)
    joined = "\n".join(panes)
    assert "&lt;img src=x onerror=alert(1)&gt;" in joined, "the payload is shown (as text)"
    assert EVIL not in joined, [p for p in panes if EVIL in p][:3]
    for panel in view.panels:
        if panel.kind in ("alerts", "health", "processes", "app"):
            assert any("&lt;img" in str(p.object) for p in panel.body.select(pn.pane.HTML)), panel.kind
