"""CPU and RSS of `monitorkit collect` beside prometheus-node-exporter and glances, run side by side.

    .venv/bin/python benchmarks/collector_bench.py [--seconds 60] [--soak 600] [--profile out.txt]

All three run at once for the same window (so machine load hits them alike), each at a 1 s
cadence: `monitorkit collect` with the full default collector set and services;
Debian's prometheus-node-exporter on 127.0.0.1 and a free port, scraped once a second by
this script; glances with ``--quiet --export csv -t 1``. CPU is user+system time of the
process over the window (startup excluded) as a percent of one core; RSS at the window's
start and end. ``--soak 600`` runs ten minutes and prints RSS every minute. ``--profile``
samples the collector with py-spy during the window and prints where its time goes.
Missing peers are reported and skipped (``apt-get install -y prometheus-node-exporter``,
``pip install glances``).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from monitorkit.owner.sidecar import free_port, read_owner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from shared_helpers import stop_process, wait_for  # the one poll of tests and benchmarks

VENV_BIN = Path(sys.executable).parent
GRACE = 5.0  # seconds after startup before the window opens: imports and first scans are not steady state


@dataclass
class Peer:
    """One measured process."""

    name: str
    proc: subprocess.Popen[bytes]
    ps: psutil.Process
    cpu0: float = 0.0
    rss0: int = 0
    t0: float = 0.0
    rss_trace: list[int] = field(default_factory=list)
    threads0: dict[int, float] = field(default_factory=dict)
    scrape_port: int | None = None
    scrapes: int = 0

    def cpu(self) -> float:
        """Return user+system seconds of the process and its children."""
        t = self.ps.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def open_window(self) -> None:
        """Record CPU and RSS at the start of the window."""
        self.cpu0, self.rss0, self.t0 = self.cpu(), self.ps.memory_info().rss, time.monotonic()
        self.threads0 = self.thread_cpu()

    def thread_cpu(self) -> dict[int, float]:
        """Return user+system seconds per thread id."""
        return {t.id: t.user_time + t.system_time for t in self.ps.threads()}


def find(binary: str) -> str | None:
    """Return the path of ``binary`` in the venv or on PATH."""
    local = VENV_BIN / binary
    return str(local) if local.exists() else shutil.which(binary)


# The owner with the default collectors and only the ingest service: what collecting costs without rules.
COLLECT_ONLY = """
import signal, sys, threading
from monitorkit.config import load_settings
from monitorkit.owner.runtime import run_owner
settings = load_settings().with_overrides({"store.path": sys.argv[1]})
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
run_owner(settings, stop, services=("monitorkit.owner.ingest:IngestService",))
"""


def start_monitorkit(workdir: Path, *, collect_only: bool = False) -> Peer:
    """Start `monitorkit collect` (or the owner without the rule service) on a fresh database."""
    db = workdir / ("collect-only.duckdb" if collect_only else "bench.duckdb")
    if collect_only:
        cmd = [sys.executable, "-c", COLLECT_ONLY, str(db)]
        name = "monitorkit owner, collectors + ingest only"
    else:
        cmd = [find("monitorkit") or "monitorkit", "collect", "--db", str(db)]
        name = "monitorkit collect"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: read_owner(db) is not None or proc.poll() is not None, 60, name)
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return Peer(name, proc, psutil.Process(proc.pid))


def start_node_exporter() -> Peer | None:
    """Start prometheus-node-exporter on 127.0.0.1:<free port>, or return None if it is not installed."""
    exe = find("prometheus-node-exporter") or find("node_exporter")
    if exe is None:
        return None
    port = free_port()
    proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peer = Peer("prometheus-node-exporter (scraped 1/s)", proc, psutil.Process(proc.pid), scrape_port=port)
    wait_for(lambda: scrape(peer), 30, "prometheus-node-exporter")
    return peer


def start_glances(workdir: Path) -> Peer | None:
    """Start glances exporting CSV every second, or return None if it is not installed."""
    exe = find("glances")
    if exe is None:
        return None
    csv = workdir / "glances.csv"
    proc = subprocess.Popen([exe, "--quiet", "--export", "csv", "--export-csv-file", str(csv), "-t", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (csv.exists() and csv.stat().st_size > 0) or proc.poll() is not None, 60, "glances")
    return Peer("glances --export csv -t 1", proc, psutil.Process(proc.pid))


def scrape(peer: Peer) -> bool:
    """GET the exporter's /metrics once; return whether it answered."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{peer.scrape_port}/metrics", timeout=2) as resp:
            resp.read()
    except OSError:
        return False
    peer.scrapes += 1
    return True


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample ``pid`` with py-spy for ``seconds`` into ``out`` (collapsed stacks), if py-spy is installed."""
    exe = find("py-spy")
    if exe is None:
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                             "--format", "raw", "--threads", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


IDLE = ("Condition.wait (threading.py", "Event.wait (threading.py", ".select (selectors.py",
        "_wait_for_tstate_lock", "sleep (")


def summarize_profile(out: Path, console: Console, thread_cpu: dict[int, float], elapsed: float,
                      top: int = 20) -> None:
    """Print CPU by thread (exact, from the kernel) and the functions where active samples fall (py-spy)."""
    if not out.exists():
        console.print("[yellow]py-spy produced no profile[/yellow]")
        return
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    names: dict[int, str] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        head = frames[0]  # "thread (0x..., 1234): name" or "thread (1234): name"
        if head.startswith("thread ("):
            tid_part, _, name = head.partition("): ")
            tid_text = tid_part.rsplit(" ", 1)[-1].strip("(")
            if tid_text.isdigit():
                names[int(tid_text)] = name or "?"
        if not frames or any(marker in frames[-1] for marker in IDLE):
            continue
        n = int(count)
        total += n
        self_time[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    table = Table(title=f"where the collector's active time goes ({total} samples)")
    table.add_column("function (file:line)")
    table.add_column("inclusive", justify="right")
    table.add_column("self", justify="right")
    for frame, n in inclusive.most_common(top):
        table.add_row(frame[:110], f"{100 * n / total:.1f}%", f"{100 * self_time[frame] / total:.1f}%")
    console.print(table)
    threads = Table(title="CPU by thread over the window (kernel accounting)")
    threads.add_column("thread")
    threads.add_column("% of one core", justify="right")
    for tid, seconds in sorted(thread_cpu.items(), key=lambda kv: -kv[1])[:10]:
        threads.add_row(f"{names.get(tid, '(not Python / unnamed)')} [{tid}]", f"{100 * seconds / elapsed:.2f}")
    console.print(threads)


def stop(peer: Peer) -> None:
    """Stop a peer with SIGTERM (SIGKILL after 20 s)."""
    stop_process(peer.proc, grace=20)


def watch(peers: list[Peer], seconds: float) -> None:
    """Scrape the peers that serve /metrics once a second for ``seconds``, noting each one's RSS every minute."""
    start = next_trace = time.monotonic()
    while (now := time.monotonic()) < start + seconds:
        for peer in peers:
            if peer.scrape_port is not None:
                scrape(peer)
        if now >= next_trace:
            next_trace += 60
            for peer in peers:
                peer.rss_trace.append(peer.ps.memory_info().rss)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window (default 60)")
    parser.add_argument("--soak", type=float, default=None, help="run this long instead (e.g. 600) and trace RSS")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the collector into this file")
    parser.add_argument("--collect-only", action="store_true",
                        help="also run the owner without the rule service, to tell collecting from rule evaluation")
    parser.add_argument("--profile-target", choices=("collect", "collect-only"), default="collect",
                        help="which monitorkit process --profile samples")
    args = parser.parse_args()
    seconds = args.soak or args.seconds
    console = Console(width=140)
    workdir = Path(tempfile.mkdtemp(prefix="collector-bench-"))
    peers: list[Peer] = []
    missing: list[str] = []
    try:
        peers.append(start_monitorkit(workdir))
        if args.collect_only:
            peers.append(start_monitorkit(workdir, collect_only=True))
        for starter, name in ((start_node_exporter, "prometheus-node-exporter"), (lambda: start_glances(workdir), "glances")):
            peer = starter()
            if peer is None:
                missing.append(name)
            else:
                peers.append(peer)
        time.sleep(GRACE)
        for peer in peers:
            peer.open_window()
        target = peers[1] if args.profile_target == "collect-only" and args.collect_only else peers[0]
        spy = profile(target.proc.pid, seconds, args.profile) if args.profile else None
        watch(peers, seconds)
        profiled: tuple[dict[int, float], float] = ({}, 1.0)
        if args.profile:
            now_threads = target.thread_cpu()
            profiled = ({tid: cpu - target.threads0.get(tid, 0.0) for tid, cpu in now_threads.items()},
                        time.monotonic() - target.t0)
        results = []
        for peer in peers:
            elapsed = time.monotonic() - peer.t0
            results.append((peer, 100 * (peer.cpu() - peer.cpu0) / elapsed, peer.ps.memory_info().rss, elapsed))
        if spy is not None:
            spy.wait(timeout=seconds + 60)
    finally:
        for peer in peers:
            stop(peer)
        shutil.rmtree(workdir, ignore_errors=True)

    mib = 2**20
    table = Table(title=f"collectors side by side, 1 s cadence, {seconds:.0f} s window ({psutil.cpu_count()} cores)")
    for col in ("process", "CPU % of one core", "RSS at start", "RSS at end", "notes"):
        table.add_column(col, justify="left" if col in ("process", "notes") else "right")
    for peer, cpu, rss_end, _elapsed in results:
        note = f"{peer.scrapes} scrapes" if peer.scrape_port is not None else ""
        if peer is peers[0]:
            note = "full default collectors + services; goal < 1%"
        elif peer.name.startswith("monitorkit"):
            note = "same collectors, no rule service"
        table.add_row(peer.name, f"{cpu:.2f}", f"{peer.rss0 / mib:.0f} MiB", f"{rss_end / mib:.0f} MiB", note)
    console.print(table)
    if args.soak:
        trace = Table(title="RSS every minute (MiB)")
        trace.add_column("minute")
        for peer, *_ in results:
            trace.add_column(peer.name, justify="right")
        for i in range(max(len(p.rss_trace) for p, *_ in results)):
            trace.add_row(str(i), *(f"{p.rss_trace[i] / mib:.0f}" if i < len(p.rss_trace) else "-"
                                    for p, *_ in results))
        console.print(trace)
    if missing:
        console.print(f"[yellow]not measured (not installed): {', '.join(missing)}[/yellow]")
    console.print(f"load average during the run: {', '.join(f'{x:.2f}' for x in psutil.getloadavg())}")
    if args.profile:
        summarize_profile(args.profile, console, *profiled)


if __name__ == "__main__":
    main()
