"""Cost of monitorkit.instrument beside prometheus_client: ns per operation and the RSS an application gains.

    .venv/bin/python benchmarks/instrument_bench.py [--repeat 5] [--number 200000]

Goals: each operation within 2x of prometheus_client; under 10 MB of RSS for importing
monitorkit.instrument and using 100 metrics (measured in fresh subprocesses).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import timeit

import prometheus_client as prom
from rich.console import Console
from rich.table import Table

from monitorkit import instrument as mi

RSS_CHILD = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import psutil
    proc = psutil.Process()
    before = proc.memory_info().rss
    kind = sys.argv[1]
    if kind == "monitorkit":
        from monitorkit import instrument as lib
        Counter, Gauge, Histogram = lib.Counter, lib.Gauge, lib.Histogram
    else:
        import prometheus_client as lib
        Counter, Gauge, Histogram = lib.Counter, lib.Gauge, lib.Histogram
    imported = proc.memory_info().rss
    for i in range(40):
        c = Counter(f"app_counter_{i}_total", "c", ["route"])
        for r in range(5):
            c.labels(route=f"/r{r}").inc()
    for i in range(30):
        Gauge(f"app_gauge_{i}", "g", ["kind"]).labels(kind="a").set(i)
    for i in range(30):
        h = Histogram(f"app_hist_{i}_seconds", "h", ["route"])
        for r in range(5):
            h.labels(route=f"/r{r}").observe(0.1 * r)
    used = proc.memory_info().rss
    sending = used
    queued = 0
    if kind == "monitorkit" and len(sys.argv) > 2:
        # the sender too, in its worst case: no owner running, its queue filled to the default bound
        sender = lib.start(os.path.join(tempfile.mkdtemp(), "none.duckdb"), interval=60)
        while sender.dropped == 0:
            sender.flush()
        queued = sender.queued
        sending = proc.memory_info().rss
    print(json.dumps({"before": before, "imported": imported, "used": used, "sending": sending, "queued": queued,
                      "modules": sorted(m for m in ("duckdb", "pyarrow", "asyncio", "http.client") if m in sys.modules)}))
    """
)


def best_ns(ours: object, theirs: object, number: int, repeat: int) -> tuple[float, float]:
    """Return the best ns per call of each op, timing them alternately so machine load hits both alike."""
    a = b = float("inf")
    for _ in range(repeat):
        a = min(a, timeit.timeit(ours, number=number))  # type: ignore[arg-type]
        b = min(b, timeit.timeit(theirs, number=number))  # type: ignore[arg-type]
    return a / number * 1e9, b / number * 1e9


def operations() -> list[tuple[str, object, object]]:
    """Return (label, monitorkit op, prometheus_client op) for each measured operation."""
    mreg = mi.Registry()
    preg = prom.CollectorRegistry()
    mc = mi.Counter("bench_jobs_total", "Jobs", ["queue"], registry=mreg)
    pc = prom.Counter("bench_jobs_total", "Jobs", ["queue"], registry=preg)
    mh = mi.Histogram("bench_seconds", "Latency", ["queue"], registry=mreg)
    ph = prom.Histogram("bench_seconds", "Latency", ["queue"], registry=preg)
    mu = mi.Counter("bench_plain_total", "Plain", registry=mreg)
    pu = prom.Counter("bench_plain", "Plain", registry=preg)
    mcc, pcc = mc.labels(queue="a"), pc.labels(queue="a")
    mhc, phc = mh.labels(queue="a"), ph.labels(queue="a")
    return [
        ("counter inc (no labels)", mu.inc, pu.inc),
        ("counter inc (child cached)", mcc.inc, pcc.inc),
        ("counter .labels(queue=...).inc()", lambda: mc.labels(queue="a").inc(),
         lambda: pc.labels(queue="a").inc()),
        ("histogram observe (child cached)", lambda: mhc.observe(0.3), lambda: phc.observe(0.3)),
        ("histogram .labels(queue=...).observe()", lambda: mh.labels(queue="a").observe(0.3),
         lambda: ph.labels(queue="a").observe(0.3)),
    ]


def rss(kind: str, *extra: str) -> dict[str, object]:
    """Run the RSS probe in a fresh interpreter and return its figures."""
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, kind, *extra], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=100_000)
    args = parser.parse_args()
    console = Console(width=130)

    table = Table(title=f"ns per operation (best of {args.repeat} x {args.number:,})")
    for col in ("operation", "monitorkit", "prometheus_client", "ratio", "goal <= 2x"):
        table.add_column(col, justify="right" if col != "operation" else "left")
    for label, ours, theirs in operations():
        a, b = best_ns(ours, theirs, args.number, args.repeat)
        ratio = a / b
        table.add_row(label, f"{a:,.0f}", f"{b:,.0f}", f"{ratio:.2f}x", "yes" if ratio <= 2 else "NO")
    console.print(table)

    mib = 2**20
    table = Table(title="RSS an application gains (fresh subprocess; 100 metrics, 430 series)")
    sender_col = "+ sender, owner down, queue full"
    for col in ("library", "import", "import + 100 metrics used", sender_col, "goal < 10 MB", "loaded"):
        table.add_column(col, justify="right" if col not in ("library", "loaded") else "left")
    for kind in ("monitorkit", "prometheus_client"):
        r = rss(kind, "send") if kind == "monitorkit" else rss(kind)
        base = int(r["before"])  # type: ignore[call-overload]
        imported = (int(r["imported"]) - base) / mib  # type: ignore[call-overload]
        used = (int(r["used"]) - base) / mib  # type: ignore[call-overload]
        sending = (int(r["sending"]) - base) / mib  # type: ignore[call-overload]
        table.add_row(kind, f"{imported:.1f} MiB", f"{used:.1f} MiB",
                      f"{sending:.1f} MiB ({r['queued']:,} samples)" if kind == "monitorkit" else "-",
                      ("yes" if used < 10 else "NO") if kind == "monitorkit" else "-",
                      ", ".join(r["modules"]) or "-")  # type: ignore[arg-type]
    console.print(table)
    console.print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
