"""Dashboard cost: server CPU and update lag with 1, 5 and 20 concurrent sessions at a 1 s tick.

A `monitorkit serve --port 0` child owns a fresh database (default collectors, no rules). For each
level, one real Chromium page (Playwright, Debian's /usr/bin/chromium) plus N-1 headless
websocket sessions (the same Bokeh protocol, no rendering) stay open for a window; the server's
CPU (% of one core, psutil) and the lag from a sample's timestamp to its arrival are measured:
in the browser (the page's status line, read every 20 ms) and in the headless sessions.
"0 sessions" is the same server collecting with nobody connected.

Run: .venv/bin/python benchmarks/dashboard_bench.py [--window 30] [--levels 1,5,20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Served, Watcher, metrics, served  # noqa: E402
from shared_helpers import wait_for  # noqa: E402

PAGE_PROBE = """() => {
  window.__mk_lags = [];
  let last = null;
  const find = (root) => { const el = root.querySelector('#mk-status'); if (el) return el;
    for (const n of root.querySelectorAll('*')) { if (n.shadowRoot) { const f = find(n.shadowRoot); if (f) return f; } }
    return null; };
  // The pane's element is replaced on each update, its shadow root stays: look there first, so the
  // probe itself does not walk the whole page every 20 ms (that slowed the page it measures).
  let home = null;
  const locate = () => { if (home) { const el = home.querySelector('#mk-status'); if (el) return el; }
    const el = find(document); home = el ? el.getRootNode() : null; return el; };
  setInterval(() => { const el = locate(); if (!el) return; const seq = el.dataset.seq;
    if (seq !== last) { last = seq; window.__mk_lags.push([Date.now(), Date.now() - Number(el.dataset.newest)]); } }, 20);
}"""


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of values, nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_percent(server: Served, seconds: float) -> tuple[float, dict[str, float], dict[str, float]]:
    """Return the server's CPU use (% of one core) over ``seconds`` and its counters before and after."""
    proc = psutil.Process(server.proc.pid)
    before, c0, t0 = metrics(server), proc.cpu_times(), time.monotonic()
    time.sleep(seconds)
    c1, t1, after = proc.cpu_times(), time.monotonic(), metrics(server)
    used = (c1.user + c1.system) - (c0.user + c0.system)
    return 100.0 * used / (t1 - t0), before, after


def level(server: Served, sessions: int, window: float, browser: Any, open_timeout: float = 600) -> dict[str, float]:
    """Measure one level: a Chromium page plus sessions-1 headless sessions (and the memory they leave once closed)."""
    rss = psutil.Process(server.proc.pid).memory_info
    baseline = rss().rss
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server.url}/?token={server.token}")
    page.locator(".mk-card-cpu canvas").first.wait_for(state="attached", timeout=120_000)
    page.evaluate(PAGE_PROBE)
    headless = Watcher(server.url, server.token, sessions - 1) if sessions > 1 else None
    if headless is not None:
        headless.start(timeout=open_timeout)
    time.sleep(10)  # let the backlog of opening drain
    start_ms = time.time() * 1000
    cpu, before, after = cpu_percent(server, window)
    end_ms = time.time() * 1000
    peak = rss().rss
    page_lags = [lag for at, lag in page.evaluate("window.__mk_lags") if start_ms <= at <= end_ms]
    ws_lags: list[float] = []
    if headless is not None:
        headless.stop()
        ws_lags = [at - newest for ups in headless.updates for at, _, newest in ups if start_ms <= at <= end_ms]
    page.close()
    wait_for(lambda: metrics(server)["monitorkit_dashboard_sessions"] == 0, 120, "sessions did not close")
    wait_for(lambda: metrics(server)["monitorkit_dashboard_views"] == 0, 60, "closed sessions left their views")
    time.sleep(3)  # the server trims freed memory after its garbage collection
    polls = after["monitorkit_dashboard_polls_total"] - before["monitorkit_dashboard_polls_total"]
    queries = after["monitorkit_dashboard_store_queries_total"] - before["monitorkit_dashboard_store_queries_total"]
    return {
        "sessions": sessions, "cpu": cpu, "polls": polls, "queries": queries,
        "browser_p50": percentile(page_lags, 0.5), "browser_p95": percentile(page_lags, 0.95), "browser_n": len(page_lags),
        "ws_p50": percentile(ws_lags, 0.5), "ws_p95": percentile(ws_lags, 0.95), "ws_n": len(ws_lags),
        "rss_mib": peak / 2**20, "rss_before_mib": baseline / 2**20, "rss_after_mib": rss().rss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per level")
    parser.add_argument("--levels", default="1,5,20", help="comma-separated session counts")
    parser.add_argument("--open-timeout", type=float, default=600.0, help="seconds the sessions of a level may take to open")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, served(Path(tmp), rules=False) as server:
        time.sleep(5)
        idle, before, after = cpu_percent(server, args.window)
        print(f"0 sessions: server CPU {idle:.1f} % of one core "
              f"({after['monitorkit_dashboard_polls_total'] - before['monitorkit_dashboard_polls_total']:.0f} polls)", flush=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for n in levels:
                row = level(server, n, args.window, browser, args.open_timeout)
                rows.append(row)
                print(f"{n} sessions: done", flush=True)
            browser.close()
    print()
    print(f"dashboard, {args.window:.0f} s per level, 1 s tick, default layout ({psutil.cpu_count()} CPUs)")
    print(f"{'sessions':>8} {'server CPU %':>12} {'polls':>5} {'queries':>7} {'browser lag p50/p95 ms':>24} "
          f"{'headless lag p50/p95 ms':>24} {'RSS MiB before/peak/after close':>32}")
    print(f"{0:>8} {idle:>12.1f}")
    for r in rows:
        ws = f"{r['ws_p50']:.0f} / {r['ws_p95']:.0f} (n={r['ws_n']})" if r["ws_n"] else "-"
        print(f"{r['sessions']:>8} {r['cpu']:>12.1f} {r['polls']:>5.0f} {r['queries']:>7.0f} "
              f"{r['browser_p50']:>9.0f} / {r['browser_p95']:.0f} (n={r['browser_n']}) {ws:>24} "
              f"{r['rss_before_mib']:>12.0f} / {r['rss_mib']:.0f} / {r['rss_after_mib']:.0f}")
    if rows:
        spread = statistics.pstdev([r["queries"] / max(r["polls"], 1) for r in rows])
        print(f"store queries per poll: {rows[0]['queries'] / max(rows[0]['polls'], 1):.2f} (spread across levels {spread:.2f})")


if __name__ == "__main__":
    main()
