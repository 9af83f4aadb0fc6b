"""Make the pictures in the docs from the real app: the served dashboard (with application traffic) and a notebook plot.

Run with ``make screenshots`` (needs Debian's chromium): writes docs/images/dashboard*.png (the first screen with a
tooltip, the whole overview, the host layout, Explore, the console, alerts, app metrics, layout editing) and
notebook_cpu_incident.png.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bokeh.io import output_file, save
from bokeh.plotting import figure

import monitorkit
from monitorkit import demo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, served  # noqa: E402

IMAGES = ROOT / "docs" / "images"
QUERY = ("SELECT time_bucket(INTERVAL 5 SECOND, time) AS time, avg(value) AS cpu_percent\n"
         "FROM samples WHERE name = 'cpu_percent' AND labels['cpu'] IS NULL\nGROUP BY ALL ORDER BY time")


def traffic(db: Path, stop: threading.Event) -> None:
    """Send protocol requests and tool runs to the owner like an instrumented application would."""
    from monitorkit import instrument

    instrument.start(db_path=db, interval=1.0)
    rng = random.Random(7)
    while not stop.is_set():
        method = rng.choice(["GET", "GET", "GET", "POST"])
        with instrument.track(protocol="http", method=method) as exchange:
            time.sleep(rng.lognormvariate(-3.5, 0.6))
            exchange.status = 500 if rng.random() < 0.03 else 200
        if rng.random() < 0.05:
            with instrument.tool_run(rng.choice(["reindex", "backup", "summarize"])) as run:
                time.sleep(rng.uniform(0.01, 0.2))
                if rng.random() < 0.2:
                    run.fail("Timeout", "took too long")
    instrument.stop()


def notebook_plot(browser: Any, tmp: Path) -> Path:
    """Plot the demo's CPU saturation incident as notebook 01 does, and capture it."""
    db = tmp / "demo.duckdb"
    config = demo.DemoConfig(step=60)
    demo.generate(db, config)
    incident = next(i for i in demo.plan_incidents(config) if i.kind == "cpu_saturation")
    con = monitorkit.connect(db)
    rows = con.execute(
        "SELECT time, value FROM samples WHERE name = 'cpu_percent' AND host = ? AND labels = MAP {} ORDER BY time",
        [incident.host],
    ).fetchall()
    fig = figure(title=f"cpu_percent on {incident.host} (demo data; incident shaded)", x_axis_type="datetime",
                 width=1000, height=350, y_axis_label="percent")
    fig.line([r[0] for r in rows], [r[1] for r in rows], line_width=1.5)
    fig.harea(y=[0, 100], x1=[incident.start] * 2, x2=[incident.end] * 2, fill_alpha=0.15, fill_color="red")
    html = tmp / "plot.html"
    output_file(html, title="cpu", mode="inline")  # no CDN here
    save(fig)
    page = browser.new_page(viewport={"width": 1040, "height": 400})  # type: ignore[attr-defined]
    page.goto(html.as_uri())
    page.wait_for_selector("canvas", timeout=30_000)
    time.sleep(1)
    path = IMAGES / "notebook_cpu_incident.png"
    page.screenshot(path=str(path))
    return path


def hover(page: Any, selector: str) -> None:
    """Rest the mouse over the right part of a chart, so its tooltip lists every series."""
    box = page.locator(selector).first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.45)
    time.sleep(1.5)


def explore(page: Any, url: str) -> None:
    """Chart an application's own metric in an Explore panel: requests per second, summed by method."""
    layout = {"name": "explore", "version": 1, "range": "5m", "panels": [
        {"kind": "explore", "width": 12, "height": 420,
         "options": {"metric": "protocol_requests_total", "group_by": ["method"], "agg": "sum"}},
        {"kind": "explore", "width": 6, "height": 360,
         "options": {"metric": "protocol_request_duration_seconds", "agg": "p95"}},
        {"kind": "explore", "width": 6, "height": 360, "options": {"metric": "cpu_seconds_total", "group_by": ["mode"],
                                                                  "agg": "sum", "filters": ["mode=user", "mode=system"]}},
    ]}
    path = IMAGES.parent / "explore-layout.json"
    path.write_text(json.dumps(layout))
    page.locator(".mk-layouts button").click()
    page.locator(".mk-import input[type=file]").set_input_files(str(path))
    path.unlink()
    page.locator(".mk-card-explore canvas").first.wait_for(state="attached")
    time.sleep(6)
    hover(page, ".mk-card-explore canvas")
    page.screenshot(path=IMAGES / "dashboard-explore.png", clip={"x": 0, "y": 0, "width": 1440, "height": 900})
    page.goto(url + "/?layout=overview&range=5m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=150.0, help="seconds of data before the screenshots")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp), session_lifetime="15s") as server:
        stop = threading.Event()
        sender = threading.Thread(target=traffic, args=(server.db, stop), daemon=True)
        sender.start()
        time.sleep(args.warmup)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # What a new user sees on a laptop screen (the size the issues review at).
            page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            page.set_default_timeout(180_000)
            expect.set_options(timeout=180_000)
            page.goto(server.url + "/")
            page.screenshot(path=IMAGES / "dashboard-login.png")
            page.fill("#token", server.token)
            page.click("#login")
            page.locator(".mk-chart-cpu-busy canvas").first.wait_for(state="attached")
            page.goto(server.url + "/?range=5m")  # the minutes of data the warm-up made fill the charts
            page.locator(".mk-chart-cpu-busy canvas").first.wait_for(state="attached")
            time.sleep(6)
            hover(page, ".mk-chart-cpu-busy canvas")
            page.screenshot(path=IMAGES / "dashboard.png")  # the README's picture: the first screen, a tooltip shown
            page.mouse.move(5, 5)
            page.screenshot(path=IMAGES / "dashboard-overview.png", full_page=True)
            page.locator(".mk-card-app").screenshot(path=IMAGES / "dashboard-app.png")
            page.locator(".mk-card-alerts").screenshot(path=IMAGES / "dashboard-alerts.png")
            page.locator(".mk-sql textarea").fill(QUERY)
            page.locator(".mk-sql textarea").press("Control+Enter")
            expect(page.locator("#mk-sql-done")).to_contain_text("rows")
            time.sleep(2)
            page.locator(".mk-card-sql").screenshot(path=IMAGES / "dashboard-sql.png")
            explore(page, server.url)
            page.goto(server.url + "/?layout=host&range=5m")
            page.locator(".mk-chart-disk-iops canvas").first.wait_for(state="attached")
            time.sleep(6)
            page.screenshot(path=IMAGES / "dashboard-host.png", full_page=True)
            page.goto(server.url + "/")
            page.locator(".mk-chart-cpu-busy canvas").first.wait_for(state="attached")
            page.locator(".mk-layouts button").click()
            page.locator(".mk-edit button").click()
            expect(page.locator(".mk-target select")).to_be_visible()
            time.sleep(2)
            page.screenshot(path=IMAGES / "dashboard-layouts.png", clip={"x": 0, "y": 0, "width": 1440, "height": 600})
            print(notebook_plot(browser, Path(tmp)).relative_to(ROOT))
            browser.close()
        stop.set()
        sender.join(10)
    for image in sorted(IMAGES.glob("dashboard-*.png")):
        print(image.relative_to(ROOT))


if __name__ == "__main__":
    main()
