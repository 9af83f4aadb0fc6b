"""What the owner's memory is made of, and RSS of `monitorkit collect` and an idle `monitorkit serve` beside node_exporter.

    .venv/bin/python benchmarks/owner_memory_bench.py [--seconds 600] [--anatomy-only]

First an anatomy, in a fresh interpreter running what `monitorkit collect` runs: RSS after each
step of an owner's start (imports, DuckDB, the store, the owner API, the services), after
20 s of collecting and after a reader opens the Quack endpoint (the side-by-side run opens none),
DuckDB's own accounting (``duckdb_memory()``, ``memory_limit``, ``threads``) and which of pandas,
numpy, pyarrow, polars, panel and bokeh it loaded.

Then, side by side for ``--seconds`` (default 600; the figures in the issue are over 10 minutes):
`monitorkit collect`, `monitorkit serve` with no browser session open, and Debian's
prometheus-node-exporter scraped once a second, each on its own fresh database: RSS every minute,
CPU over the window as a percent of one core, and for the monitorkit processes the split of RSS
into anonymous and file-backed pages (smaps_rollup) and the heavy native libraries mapped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
from collector_bench import GRACE, Peer, find, start_monitorkit, start_node_exporter, stop, wait_for, watch
from owner_growth_bench import smaps
from rich.console import Console
from rich.table import Table

from monitorkit.owner.sidecar import read_owner

MIB = 2**20
HEAVY = ("pandas", "numpy", "pyarrow", "polars", "panel", "bokeh")

ANATOMY = textwrap.dedent("""
    import json, sys, threading, time
    def rss():
        return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS"))) * 1024
    steps = [("python", rss())]
    from monitorkit.config import load_settings
    from monitorkit.owner.runtime import run_owner
    steps.append(("monitorkit.config + owner.runtime imported", rss()))
    import duckdb
    duckdb.connect().execute("SELECT 1").fetchall()
    steps.append(("duckdb imported, one in-memory query", rss()))
    from monitorkit.owner import owner as owner_module
    from monitorkit.store import store as store_module
    real_store, real_serve = store_module.Store.__init__, owner_module.Owner._serve
    def store_init(self, *a, **k):
        real_store(self, *a, **k)
        steps.append(("Store opened (file, schema)", rss()))
    def serve(self, *a, **k):
        real_serve(self, *a, **k)
        steps.append(("owner API (the Quack endpoint opens on a reader's first request)", rss()))
    store_module.Store.__init__, owner_module.Owner._serve = store_init, serve
    settings = load_settings().with_overrides({"store.path": sys.argv[1]})
    stop = threading.Event()
    out = {}
    def ready(ctx):
        steps.append(("services started", rss()))
        def later():
            time.sleep(float(sys.argv[2]))
            steps.append((f"after {sys.argv[2]} s of collecting", rss()))
            store = ctx.owner.store
            out["memory"] = store.query("SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() "
                                        "WHERE memory_usage_bytes > 0 ORDER BY 2 DESC")
            out["settings"] = store.query("SELECT current_setting('memory_limit'), current_setting('threads')")[0]
            out["heavy"] = sorted({m.partition(".")[0] for m in sys.modules} & set(sys.argv[3:]))
            ctx.owner.open_quack()
            steps.append(("then a reader opens the Quack endpoint (allowlist UDF: numpy)", rss()))
            stop.set()
        threading.Thread(target=later, daemon=True).start()
    run_owner(settings, stop, on_ready=ready)
    out["steps"] = steps
    print(json.dumps(out, default=str))
""")


def anatomy(workdir: Path, seconds: float, console: Console) -> None:
    """Run the anatomy child and print its steps, DuckDB's accounting and the heavy modules it loaded."""
    proc = subprocess.run([sys.executable, "-c", ANATOMY, str(workdir / "anatomy.duckdb"), str(seconds), *HEAVY],
                          capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"anatomy child failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    table = Table(title="RSS of an owner as `monitorkit collect` starts (one fresh interpreter)")
    for col in ("step", "RSS MiB", "added MiB"):
        table.add_column(col, justify="left" if col == "step" else "right")
    last = 0
    for name, rss in out["steps"]:
        table.add_row(name, f"{rss / MIB:.0f}", f"{(rss - last) / MIB:+.0f}" if last else "")
        last = rss
    console.print(table)
    limit, threads = out["settings"]
    used = sum(int(row[1]) for row in out["memory"])
    console.print(f"DuckDB: memory_limit {limit}, threads {threads}; duckdb_memory() in use {used / MIB:.1f} MiB: "
                  + ", ".join(f"{tag} {int(b) / MIB:.1f}" for tag, b, _ in out["memory"]))
    console.print(f"heavy modules loaded before the Quack endpoint opened: {', '.join(out['heavy']) or 'none'} "
                  f"(of {', '.join(HEAVY)})")


def start_serve(workdir: Path) -> Peer:
    """Start `monitorkit serve` on a fresh database and a free port; no browser opens a session."""
    db = workdir / "serve.duckdb"
    proc = subprocess.Popen([find("monitorkit") or "monitorkit", "serve", "--db", str(db), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: read_owner(db) is not None or proc.poll() is not None, 60, "monitorkit serve")
    if proc.poll() is not None:
        raise RuntimeError(f"monitorkit serve exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return Peer("monitorkit serve (no session)", proc, psutil.Process(proc.pid))


def split(pid: int) -> str:
    """Return anonymous / file-backed RSS (MiB) from smaps_rollup."""
    pages = smaps(pid)
    return f"anon {pages['anon']} / file {pages['file']}"


def mapped(pid: int) -> str:
    """Return which of the heavy libraries have native code mapped into ``pid``."""
    text = Path(f"/proc/{pid}/maps").read_text()
    return ", ".join(m for m in HEAVY if f"site-packages/{m}/" in text) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="side-by-side window (default 600)")
    parser.add_argument("--anatomy-seconds", type=float, default=20.0, help="collecting before the anatomy's last look")
    parser.add_argument("--anatomy-only", action="store_true", help="print the anatomy and stop")
    args = parser.parse_args()
    console = Console(width=150)
    workdir = Path(tempfile.mkdtemp(prefix="owner-memory-bench-"))
    peers: list[Peer] = []
    try:
        anatomy(workdir, args.anatomy_seconds, console)
        if args.anatomy_only:
            return
        peers.append(start_monitorkit(workdir))
        peers.append(start_serve(workdir))
        exporter = start_node_exporter()
        if exporter is not None:
            peers.append(exporter)
        time.sleep(GRACE)
        for peer in peers:
            peer.open_window()
        watch(peers, args.seconds)
        for peer in peers:
            peer.rss_trace.append(peer.ps.memory_info().rss)
        results = [(peer, 100 * (peer.cpu() - peer.cpu0) / (time.monotonic() - peer.t0)) for peer in peers]
        notes = {peer.name: (split(peer.ps.pid), mapped(peer.ps.pid)) for peer in peers
                 if peer.name.startswith("monitorkit")}
    finally:
        for peer in peers:
            stop(peer)
        shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"side by side, 1 s cadence, {args.seconds:.0f} s window ({psutil.cpu_count()} cores)")
    for col in ("process", "CPU % of one core", "RSS at start", "RSS at end", "RSS split (smaps_rollup)",
                "heavy native libraries mapped"):
        table.add_column(col, justify="left" if col == "process" or "heavy" in col else "right")
    for peer, cpu in results:
        rss_split, libs = notes.get(peer.name, ("", ""))
        table.add_row(peer.name, f"{cpu:.2f}", f"{peer.rss0 / MIB:.0f} MiB", f"{peer.rss_trace[-1] / MIB:.0f} MiB",
                      rss_split, libs)
    console.print(table)
    trace = Table(title="RSS every minute (MiB; the last row at the window's end)")
    trace.add_column("minute")
    for peer, _ in results:
        trace.add_column(peer.name, justify="right")
    for i in range(len(peers[0].rss_trace)):
        label = str(i) if i < len(peers[0].rss_trace) - 1 else "end"
        trace.add_row(label, *(f"{p.rss_trace[i] / MIB:.0f}" for p, _ in results))
    console.print(trace)
    if exporter is None:
        console.print("[yellow]prometheus-node-exporter not installed (apt-get install -y prometheus-node-exporter)[/]")
    console.print(f"load average during the run: {', '.join(f'{x:.2f}' for x in psutil.getloadavg())}")


if __name__ == "__main__":
    main()
