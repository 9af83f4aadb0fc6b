"""End to end: `monitorkit serve --port 0` in a child, driven over HTTP and in Chromium (Playwright)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cli_helpers import invoke
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Served, http_get, require_chromium, served
from shared_helpers import wait_for

from monitorkit.dashboard.layouts import DEFAULT_LAYOUT, from_file_json
from monitorkit.owner.connect import connect


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("e2e")) as s:
        yield s


def test_serve_prints_a_login_url_with_a_fresh_token(server: Served) -> None:
    assert server.url.startswith("http://127.0.0.1:") and not server.url.endswith(":0")
    assert len(server.token) >= 24


def test_without_credentials_only_the_login_page_is_served(server: Served) -> None:
    status, headers, _ = server.get("/")
    assert status == 302 and headers["Location"].startswith("./login?next=")
    status, _, body = server.get("/login")
    assert status == 200 and b'name="token"' in body and server.token.encode() not in body
    for path in ("/metadata", "/?token=wrong", "/logout"):
        status, headers, _ = server.get(path)
        assert status == 302 and "login" in headers["Location"], path
    for path in ("/ws", "/autoload.js?bokeh-autoload-element=x&bokeh-absolute-url=x"):
        status, _, body = server.get(path)
        assert status in (302, 400, 401, 403) and b"mk-status" not in body, path
    status, _, _ = server.get("/api/layouts")
    assert status == 405


def test_wrong_credentials_are_refused_and_right_ones_sign_in(server: Served) -> None:
    import urllib.error
    import urllib.request

    body = urlencode({"token": "wrong", "next": "/"}).encode()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(server.url + "/login", data=body), timeout=30)
    assert info.value.code == 401 and b"Invalid token." in info.value.read()
    status, headers, _ = server.get("/?token=" + server.token)
    assert status == 302 and headers["Location"] == "/", "the token is traded for the cookie and leaves the URL"
    assert "monitorkit_auth=" in headers.get("Set-Cookie", "") and "HttpOnly" in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    status, _, page = server.get("/", {"Cookie": cookie})
    assert status == 200 and b"bokeh" in page and server.token.encode() not in page
    assert server.get("/", {"Cookie": "monitorkit_auth=forged"})[0] == 302


def test_health_and_metrics_answer_on_loopback(server: Served) -> None:
    wait_for(lambda: json.loads(server.get("/healthz")[2]).get("components"), 30, "no health components")
    status, _, body = server.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["source"] in ("collector_up+owner", "health_status+owner")
    assert {"writer", "quack"} <= {c["component"] for c in health["components"]}, "the owner's own parts, from memory"
    status, headers, body = server.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # *_percent gauges are exposed in base units as *_ratio (promtool check metrics, docs/interop.md)
    wait_for(lambda: b"# TYPE cpu_ratio gauge" in server.get("/metrics")[2], 30, "no collected metric on /metrics")
    status, headers, body = server.get("/metrics")
    assert b"# TYPE cpu_ratio gauge" in body and b"monitorkit_dashboard_polls_total" in body


def _page_status(page: object) -> dict[str, int]:
    attrs = page.evaluate(  # type: ignore[attr-defined]
        """() => { const find = (root) => { const el = root.querySelector('#mk-status'); if (el) return el;
                     for (const n of root.querySelectorAll('*')) { if (n.shadowRoot) { const f = find(n.shadowRoot);
                     if (f) return f; } } return null; };
                   const el = find(document); return el ? {seq: +el.dataset.seq, points: +el.dataset.points,
                     newest: +el.dataset.newest} : null; }"""
    )
    return attrs or {"seq": -1, "points": 0, "newest": 0}


@pytest.mark.browser
def test_in_the_browser(server: Served, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1400}, accept_downloads=True)
        page = context.new_page()
        page.on("request", lambda r: outside.append(r.url) if r.url.startswith(("http", "ws")) and not r.url.startswith(
            (server.url, server.url.replace("http", "ws"))) else None)
        console: list[str] = []  # the whole session must log no error (a refused login's 401 excepted) nor Bokeh warning
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.set_default_timeout(180_000)
        expect.set_options(timeout=180_000)  # rebuilding a layout re-renders every chart in the browser

        # Wrong token: refused on the login page; right token: the dashboard.
        page.goto(server.url + "/")
        page.fill("#token", "wrong-token")
        page.click("#login")
        expect(page.locator("#login-error")).to_have_text("Invalid token.")
        page.fill("#token", server.token)
        page.click("#login")
        page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")
        assert page.locator("canvas").count() >= 8, "the Bokeh charts render"
        # The BokehJS fixes (dashboard/bokehfixes.py) found the internals they patch: a BokehJS upgrade
        # that renamed them would silently bring back the per-tick whole-page relayout.
        assert page.evaluate("window.Bokeh.__mk_fixed") is True

        # New points arrive over the websocket within 2 s of each other, tick after tick.
        first = _page_status(page)
        wait_for(lambda: _page_status(page)["seq"] > first["seq"], 2.5, "no update within 2 s", every=0.05)
        second = _page_status(page)
        wait_for(lambda: _page_status(page)["seq"] > second["seq"], 2.5, "no second update within 2 s", every=0.05)
        assert _page_status(page)["points"] > first["points"]

        # Acknowledge the seeded firing alert; the rule engine records who did.
        ack = page.locator(".mk-ack button").first
        expect(ack).to_be_enabled(timeout=30_000)
        page.locator(".mk-who-input").fill("admin")  # acknowledgements record the name typed in 'Your name'
        page.locator(".mk-who-input").press("Tab")
        ack.click()
        expect(page.locator(".mk-alert").first).to_contain_text("acknowledged by admin", timeout=15_000)
        con = connect(server.db)
        try:
            assert con.execute("SELECT acked_by FROM alerts WHERE rule = 'dashboard_seeded'").fetchall() == [("admin",)]
        finally:
            con.close()

        # The SQL console answers, and refuses a write with its reason.
        page.locator(".mk-sql textarea").fill("SELECT name, count(*) AS n FROM series GROUP BY name ORDER BY n DESC")
        page.locator(".mk-run button").click()
        expect(page.locator("#mk-sql-done")).to_contain_text("rows", timeout=30_000)
        page.locator(".mk-sql textarea").fill("DELETE FROM samples_raw")
        page.locator(".mk-run button").click()
        expect(page.locator("#mk-sql-error")).to_contain_text("read-only", timeout=30_000)

        # Edit the layout (drop the SQL console, widen CPU), save it under a name, reload, load it back.
        page.locator(".mk-layouts button").click()
        page.locator(".mk-edit button").click()
        sql_at = 1 + [p.kind for p in DEFAULT_LAYOUT.panels].index("sql")
        page.locator(".mk-target select").select_option(label=f"{sql_at}. SQL console")
        page.locator(".mk-remove button").click()
        expect(page.locator(".mk-card-sql")).to_have_count(0)
        page.locator(".mk-target select").select_option(label="1. CPU")
        page.locator(".mk-wider button").click()
        page.locator(".mk-layout-name input").fill("mine")
        page.locator(".mk-layout-name input").press("Enter")
        page.locator(".mk-save button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text("Saved layout 'mine'")
        page.goto(server.url + "/")  # (a reload opens 'mine': the address names the layout on screen)
        page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")
        assert page.locator(".mk-card-sql").count() == 1, "the default layout opens at the bare address"
        page.locator(".mk-layouts button").click()
        page.locator(".mk-saved select").select_option("mine")
        page.locator(".mk-load button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text("Loaded layout 'mine'")
        expect(page.locator(".mk-card-sql")).to_have_count(0)

        # Export it as a file, then import a renamed copy.
        with page.expect_download() as download:
            page.locator(".mk-export button").click()
        exported = tmp_path / "mine.json"
        download.value.save_as(exported)
        layout = from_file_json(exported.read_text())
        assert layout.name == "mine" and "sql" not in [p.kind for p in layout.panels]
        assert next(p for p in layout.panels if p.kind == "cpu").width == 8
        copy = tmp_path / "copy.json"
        copy.write_text(exported.read_text().replace('"name": "mine"', '"name": "copy"'))
        page.locator(".mk-import input[type=file]").set_input_files(str(copy))
        expect(page.locator(".mk-layout-message")).to_contain_text("Imported and loaded layout 'copy'")
        context.close()
        browser.close()
    assert outside == [], f"the page fetched from outside the server (offline use): {outside[:5]}"
    problems = [m for m in console if "401" not in m and (m.startswith(("error", "pageerror")) or
                                                          any(w in m for w in BOKEH_WARNINGS))]
    assert not problems, f"the browser console reported: {problems[:10]}"

    # The CLI lists what the browser saved and imports through the running dashboard.
    listed = invoke(["layouts", "list", "--db", str(server.db), "--json"])
    assert {d["name"] for d in json.loads(listed.stdout)} == {"mine", "copy"}
    done = invoke(["layouts", "import", str(exported), "--name", "from-cli", "--db", str(server.db)])
    assert done.exit_code == 0 and "through the running dashboard" in done.output, done.output
    con = connect(server.db)
    try:
        assert con.execute("SELECT count(*) FROM layouts WHERE name = 'from-cli'").fetchall() == [(1,)]
    finally:
        con.close()


def test_the_notebook_dashboard_reads_through_the_owner(server: Served) -> None:
    from monitorkit.dashboard import dashboard
    from monitorkit.dashboard.reader import ConnectionReader
    from monitorkit.owner.connect import RemoteConnection

    board = dashboard(db=server.db, panels=["cpu", "sql"])
    try:
        reader = board.view.app.reader
        assert isinstance(reader, ConnectionReader) and isinstance(reader.con, RemoteConnection)

        def streamed() -> bool:
            board.poll()
            return board.view.points_streamed > 0

        wait_for(streamed, 10, "no live points in the notebook", every=0.5)
        assert board.view.app.console is not None
        assert board.view.app.console.run("SELECT count(*) FROM latest").table.num_rows == 1
    finally:
        board.stop()


def test_an_api_key_is_needed_to_save_layouts(server: Served) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.url + "/api/layouts", data=b'{"layout": {}}', method="POST",
                                     headers={"Authorization": "Bearer " + server.token})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 401, "the login token is not the API key"
    assert http_get(server.url + "/api/layouts")[0] == 405


# Through Bokeh's own document: for every figure, its Line glyphs and how many finite points each draws.
GLYPHS = """() => { const out = {}; for (const doc of Bokeh.documents) for (const m of doc._all_models.values()) {
  if (!(m.renderers && m.toolbar && m.title)) continue;
  let lines = 0, points = 0, hidden = 0;
  for (const r of m.renderers) { if (!r.glyph || r.glyph.constructor.__name__ !== 'Line') continue;
    const y = r.glyph.y && r.glyph.y.field; if (!y) continue;
    lines++; if (!r.visible) hidden++;
    for (const v of (r.data_source.data[y] || [])) if (Number.isFinite(v)) points++; }
  out[m.title.text || m.id] = {lines, points, hidden}; } return out; }"""
TOOLTIP = """() => { const found = []; const walk = (root) => { for (const el of root.querySelectorAll('*')) {
  const c = (el.className && el.className.toString()) || '';
  if (c.includes('bk-tooltip-content')) found.push(el.innerText);
  if (el.shadowRoot) walk(el.shadowRoot); } }; walk(document); return found; }"""
BOKEH_WARNINGS = ("could not set initial ranges", "nonexistent", "MISSING_RENDERERS", "W-1", "E-1")


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("demo")
    made = invoke(["demo", "--db", str(folder / "monitorkit.duckdb"), "--end", "now", "--step", "60",
                   "--quiet"])
    assert made.exit_code == 0, made.output
    with served(folder, rules=False) as s:
        yield s


def _settle(page: object, seconds: float = 3.0) -> None:
    page.wait_for_timeout(seconds * 1000)  # type: ignore[attr-defined]


@pytest.mark.browser
def test_charts_read_like_grafanas_at_every_range(demo_server: Served) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    server = demo_server
    messages: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("console", lambda m: messages.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
        page.set_default_timeout(180_000)
        expect.set_options(timeout=180_000)
        page.goto(f"{server.url}/?token={server.token}")
        page.locator(".mk-chart-cpu-busy canvas").first.wait_for(state="attached")

        # The demo's hosts are listed (their data is days old for the cache); switch to one, then to long ranges.
        page.locator(".mk-host select").select_option("web-1")
        for rng, buckets in (("7d", 250), ("30d", 60)):  # 3 days in 15-min steps, then in 1-h steps
            page.locator(".mk-range select").select_option(rng)
            cpu = "CPU busy  ·  cpu_percent"
            wait_for(lambda: page.evaluate(GLYPHS).get(cpu, {}).get("points", 0) >= buckets, 120,  # noqa: B023
                     f"CPU busy does not draw the demo's 3 days at {rng}", every=1)

            def empty() -> list[str]:
                return [title for title, c in page.evaluate(GLYPHS).items() if c["lines"] and not c["points"]]

            wait_for(lambda: not empty(), 60, f"charts with series but nothing drawn at {rng}: {empty()}", every=1)
            drawn = page.evaluate(GLYPHS)
            assert sum(1 for c in drawn.values() if c["points"]) >= 8, drawn

        # Hover: one tooltip with every series of the chart at the cursor, in the chart's unit.
        box = page.locator(".mk-chart-memory canvas").first.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.5)
        wait_for(lambda: any("GiB" in t or "MiB" in t for t in page.evaluate(TOOLTIP)), 30, "no tooltip in bytes", every=0.5)
        tip = next(t for t in page.evaluate(TOOLTIP) if "iB" in t)
        assert "used" in tip and "available" in tip and "time" in tip, tip

        # A legend entry hides its series.
        page.locator(".mk-chart-memory .mk-legend button").first.click()
        wait_for(lambda: page.evaluate(GLYPHS)["Memory  ·  memory_available_bytes, memory_free_bytes..."]["hidden"] == 1,
                 30, "the legend did not hide the series", every=0.5)

        # The console joins and reads metric_range, as monitorkit.connect() does; Ctrl+Enter runs.
        sql = page.locator(".mk-sql textarea")
        answers = [0]

        def run(query: str, key: str = "Control+Enter") -> object:
            sql.fill(query)
            if key:
                sql.press(key)
            else:
                page.locator(".mk-run button").click()
            answers[0] += 1
            answer = page.locator(f"[data-run='{answers[0]}']")
            answer.wait_for(state="attached")
            return answer

        joined = run("SELECT s.host, count(*) AS n FROM samples_raw r JOIN series s USING (series_id) GROUP BY ALL ORDER BY 1")
        assert int(joined.get_attribute("data-rows") or 0) >= 3, "web-1, db-1, worker-1 at least"  # type: ignore[attr-defined]
        ranged = run("FROM metric_range('cpu_percent', now() - INTERVAL 3 DAY, now(), step := 3600) WHERE host = 'web-1'", "")
        assert int(ranged.get_attribute("data-rows") or 0) >= 60  # type: ignore[attr-defined]
        run("SELECT * FROM samples WHERE name = 'cpu_percnt'")
        expect(page.locator("#mk-sql-hint")).to_contain_text("did you mean cpu_percent?")
        run("DELETE FROM samples_raw")
        expect(page.locator("#mk-sql-error")).to_contain_text("read-only")

        # Back to a short live range and another host; then the tab closes.
        page.locator(".mk-range select").select_option("15m")
        page.locator(".mk-host select").select_option("db-1")
        _settle(page, 5)
        browser.close()
    problems = [m for m in messages if m.startswith(("error", "pageerror")) or any(w in m for w in BOKEH_WARNINGS)]
    assert not problems, f"the browser console reported: {problems[:10]}"
    # No traceback (a closed tab included) and no Bokeh validation warning (a chart without renderers) on the server.
    tracebacks = [line for line in server.stderr if any(w in line for w in ("Traceback", "Error", *BOKEH_WARNINGS))]
    assert not tracebacks, "".join(server.stderr[-40:])
