"""Notebook 06 without the internet: executed, exported to HTML and opened in Chromium with every other host blocked.

Also run the way a user does: in JupyterLab (Run All) in Chromium offline, where the dashboard must
render, keep moving after the last cell, and never draw a line back in time; and against a running
`monitorkit serve`, whose database it must show instead of starting its own owner.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, require_chromium, served
from shared_helpers import child_env, stop_process, wait_for

from monitorkit.owner.sidecar import free_port

NOTEBOOK = ROOT / "notebooks" / "06_live_dashboard.ipynb"
JUPYTER = Path(ROOT / ".venv" / "bin" / "jupyter")
CHART_TITLES = {"CPU busy", "Memory and swap used", "CPU busy per core"}  # one sample round is enough for these

# Every plot view on the page with its glyph renderers, and how many of those have points to draw.
PLOTS_JS = """() => {
  if (!window.Bokeh || !Bokeh.index) return null;
  const plots = [], seen = new Set();
  const length = (data, field) => { const v = data.get ? data.get(field) : data[field]; return v ? v.length : 0 };
  const walk = (view) => {
    if (!view || seen.has(view)) return;
    seen.add(view);
    if (view.renderer_views) {
      let glyphs = 0, drawn = 0;
      for (const rv of view.renderer_views.values()) {
        if (rv.model.type !== 'GlyphRenderer') continue;
        glyphs += 1;
        const x = rv.model.glyph.x && rv.model.glyph.x.field;
        if (x && length(rv.model.data_source.data, x) > 0) drawn += 1;
      }
      plots.push({title: view.model.title ? view.model.title.text : '', glyphs, drawn,
                  height: view.canvas_view ? view.canvas_view.bbox.height : 0});
    }
    for (const child of (view.child_views || [])) walk(child);
  };
  for (const root of Object.values(Bokeh.index)) walk(root);
  return plots;
}"""

# Per line (GlyphRenderer with x and y columns): its name, its times where it has a value, how often they go back.
LINES_JS = """() => {
  const out = [];
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) for (const m of doc._all_models.values()) {
    if (m.type !== 'GlyphRenderer' || !m.glyph || !m.glyph.x || !m.glyph.y) continue;
    const data = m.data_source.data, get = (f) => data.get ? data.get(f) : data[f];
    const xs = get(m.glyph.x.field), ys = get(m.glyph.y.field);
    if (!xs || !ys) continue;
    const ts = Array.from(xs).filter((t, i) => !Number.isNaN(ys[i]));
    let back = 0;
    for (let i = 1; i < ts.length; i++) if (ts[i] < ts[i - 1]) back += 1;
    out.push({name: m.name || '', points: ts.length, back});
  }
  return out;
}"""


def _drawn(plots: list[dict[str, Any]]) -> set[str]:
    """Return which of CHART_TITLES have a plot of some height with points to draw (titles may add the metric)."""
    return {t for t in CHART_TITLES for p in plots if p["title"].startswith(t) and p["drawn"] and p["height"] > 50}


def _kernel_env(**extra: str) -> dict[str, str]:
    env = {**child_env(), "TZ": "UTC", **extra}
    env.pop("PYTHONUNBUFFERED", None)
    return env


def _execute(folder: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    """Run notebook 06 in a fresh kernel started in ``folder`` (no owner of its configured database there)."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute(env=env)
    return nb


def _stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(str(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.get("name") == "stdout")


def _errors(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


@pytest.fixture
def offline_page() -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page whose requests to any host but 127.0.0.1 are aborted (listed in the second item)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(120_000)
        page.route("**/*", route)
        try:
            yield page, blocked
        finally:
            browser.close()


@pytest.mark.browser
def test_exported_live_dashboard_renders_offline(tmp_path: Path, offline_page: tuple[Any, list[str]]) -> None:
    from nbconvert import HTMLExporter

    nb = _execute(tmp_path, _kernel_env())
    assert _errors(nb) == []
    out = _stdout(nb)
    assert "no owner runs on" in out, "no owner in the temporary folder: the notebook starts its own"
    assert "every chart panel grew: True" in out and "no line goes back in time: True" in out, out
    html, _ = HTMLExporter().from_notebook_node(nb)
    (tmp_path / "06.html").write_text(html)

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page, blocked = offline_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/06.html")
        page.wait_for_function(f"() => {{ const p = ({PLOTS_JS})(); return p && p.filter(x => x.drawn).length >= 3 }}",
                               timeout=60_000)
        plots = page.evaluate(PLOTS_JS)
        missing = page.get_by_text("library is missing").count()
    finally:
        server.shutdown()
    assert CHART_TITLES <= _drawn(plots), plots
    assert missing == 0 and errors == [], errors
    # Only nbconvert's own page template reaches out (require.js, MathJax); Bokeh and Panel came inline.
    assert all("require" in url or "mathjax" in url.lower() for url in blocked), blocked


@pytest.mark.slow
def test_the_notebook_shows_the_running_owners_database(tmp_path: Path) -> None:
    (tmp_path / "served").mkdir()
    with served(tmp_path / "served") as owner:
        nb = _execute(tmp_path, _kernel_env(MONITORKIT_STORE__PATH=str(owner.db)))
        pid = owner.proc.pid
    assert _errors(nb) == []
    out = _stdout(nb)
    assert f"showing {owner.db}, owned by process {pid}" in out, out
    assert "every chart panel grew: True" in out and "no line goes back in time: True" in out, out
    assert "no owner runs" not in out


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 over a copy of notebook 06 (it autosaves: never the committed file); yield its URL."""
    if not JUPYTER.exists():
        pytest.fail(f"{JUPYTER} is missing: the dev extra installs jupyterlab (pip install -e '.[dev]')")
    (tmp_path / "notebooks").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "notebooks" / NOTEBOOK.name)
    port = free_port()
    env = {**_kernel_env(), "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(tmp_path / ".run")}
    lab = subprocess.Popen(
        [str(JUPYTER), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=test-token", f"--ServerApp.root_dir={tmp_path}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.port_retries=0"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token=test-token", timeout=2) as resp:
                return bool(json.loads(resp.read()))
        except OSError:
            return lab.poll() is not None  # exited: stop waiting, the assertion below says so

    try:
        wait_for(up, 90, "JupyterLab did not answer within 90 s", every=0.5)
        assert lab.poll() is None, "JupyterLab exited at start"
        yield url
    finally:
        stop_process(lab, grace=30)


NOTEBOOK_READY = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel
            && w.sessionContext.session.kernel.status === 'idle') }"""
ALL_RAN = """() => { const w = window.jupyterapp.shell.currentWidget;
  return w.sessionContext.session.kernel.status === 'idle'
    && Array.from(w.content.widgets).every(c => c.model.type !== 'code' || c.model.executionCount) }"""
OUTPUT_TEXT = """() => Array.from(window.jupyterapp.shell.currentWidget.content.widgets)
  .filter(c => c.model.type === 'code').map(c => JSON.stringify(c.model.outputs.toJSON())).join('\\n')"""


@pytest.mark.slow
@pytest.mark.browser
def test_run_all_in_jupyterlab_offline_leaves_a_live_dashboard(jupyterlab: str,
                                                               offline_page: tuple[Any, list[str]]) -> None:
    page, blocked = offline_page
    page.goto(f"{jupyterlab}/lab/tree/notebooks/{NOTEBOOK.name}?token=test-token")
    page.wait_for_function(NOTEBOOK_READY)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(ALL_RAN, timeout=240_000)
    outputs = page.evaluate(OUTPUT_TEXT)
    assert '"output_type":"error"' not in outputs, outputs[-3000:]
    assert "no line goes back in time: True" in outputs
    page.wait_for_function(f"() => {{ const p = ({PLOTS_JS})(); return p && p.filter(x => x.drawn).length >= 3 }}")
    plots = page.evaluate(PLOTS_JS)
    assert CHART_TITLES <= _drawn(plots), plots

    def cpu_points() -> int:
        return max((line["points"] for line in page.evaluate(LINES_JS) if line["name"] == "all CPUs"), default=0)

    after_run = cpu_points()
    assert after_run > 0
    deadline = time.monotonic() + 20
    wait_for(lambda: cpu_points() >= after_run + 3 or time.monotonic() > deadline, 25, "no CPU points after Run All")
    assert cpu_points() >= after_run + 3, "the dashboard stopped when the last cell finished"
    lines = page.evaluate(LINES_JS)
    assert [line for line in lines if line["back"]] == [], "a line went back in time in the browser"
    # Offline nothing but Panel's theme and spinner stylesheets of panes created after the first render is asked
    # of a CDN (cosmetic); every script the page runs came from the notebook or JupyterLab.
    assert [url for url in blocked if ".js" in url.split("?")[0]] == [], blocked
