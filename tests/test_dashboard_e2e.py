"""End to end: `monitorkit serve --port 0` in a child, driven over HTTP and in Chromium (Playwright)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Served, http_get, require_chromium, served, wait_for

from monitorkit.cli import main
from monitorkit.dashboard.layouts import from_file_json
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
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)  # rebuilding a layout re-renders every chart in the browser

        # Wrong token: refused on the login page; right token: the dashboard.
        page.goto(server.url + "/")
        page.fill("#token", "wrong-token")
        page.click("#login")
        expect(page.locator("#login-error")).to_have_text("Invalid token.")
        page.fill("#token", server.token)
        page.click("#login")
        page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")
        assert page.locator("canvas").count() >= 8, "the Bokeh charts render"

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
        page.locator(".mk-target select").select_option(label="11. SQL console")
        page.locator(".mk-remove button").click()
        expect(page.locator(".mk-card-sql")).to_have_count(0)
        page.locator(".mk-target select").select_option(label="1. CPU")
        page.locator(".mk-wider button").click()
        page.locator(".mk-layout-name input").fill("mine")
        page.locator(".mk-layout-name input").press("Enter")
        page.locator(".mk-save button").click()
        expect(page.locator(".mk-layout-message")).to_contain_text("Saved layout 'mine'")
        page.reload()
        page.locator(".mk-card-cpu canvas").first.wait_for(state="attached")
        assert page.locator(".mk-card-sql").count() == 1, "the default layout opens after a reload"
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

    # The CLI lists what the browser saved and imports through the running dashboard.
    runner = CliRunner()
    listed = runner.invoke(main, ["layouts", "list", "--db", str(server.db), "--json"], catch_exceptions=False)
    assert {d["name"] for d in json.loads(listed.stdout)} == {"mine", "copy"}
    done = runner.invoke(main, ["layouts", "import", str(exported), "--name", "from-cli", "--db", str(server.db)],
                         catch_exceptions=False)
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
