"""Make the pictures in the docs from the real app: the served dashboard and a notebook plot.

Run with ``make screenshots``; needs Debian's chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bokeh.io import output_file, save
from bokeh.plotting import figure
from playwright.sync_api import sync_playwright

import monitorkit
from monitorkit import demo

OUT = Path(__file__).resolve().parent / "images"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def dashboard(browser: object, tmp: Path) -> Path:
    """Serve a fresh database, log in with the printed token and capture the overview."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("monitorkit")), "serve", "--db", str(tmp / "live.duckdb"),
         "--port", "0", "--duration", "90"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        url = next(m.group(1) for line in proc.stdout if (m := re.search(r"(http://\S+token=\S+)", line)))
        time.sleep(12)  # let a dozen ticks arrive so the charts have lines
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(url)
        page.wait_for_selector(".bk-Canvas, canvas", timeout=30_000)
        time.sleep(6)
        path = OUT / "dashboard.png"
        page.screenshot(path=str(path))
        return path
    finally:
        proc.terminate()
        proc.wait(30)


def notebook_plot(browser: object, tmp: Path) -> Path:
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
    path = OUT / "notebook_cpu_incident.png"
    page.screenshot(path=str(path))
    return path


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for path in (notebook_plot(browser, Path(tmp)), dashboard(browser, Path(tmp))):
            print(f"wrote {path}")
        browser.close()


if __name__ == "__main__":
    main()
