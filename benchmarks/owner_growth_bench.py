"""What grows in a collecting owner: Python objects, DuckDB's own accounting or the rest of the heap.

    .venv/bin/python benchmarks/owner_growth_bench.py [--seconds 360] [--every 30] [--no-trace]
        [--memory-limit 1GB] [--checkpoint-every 0]

Runs what `monitorkit collect` runs, in this interpreter (so DuckDB's accounting is read through
the owner's own store and tracemalloc sees every Python allocation), on a fresh database. Every
``--every`` seconds it prints RSS split into anonymous and file-backed pages (smaps_rollup),
DuckDB's ``duckdb_memory()`` by tag, and the bytes tracemalloc traces. It snapshots tracemalloc
after the first minute and at the end and prints the lines whose allocations grew most, then
what ``malloc_trim(0)`` hands back to the kernel (glibc's free-but-kept pages).

``--no-trace`` measures without tracemalloc's own overhead (it adds ~35 MiB of RSS and makes each
snapshot a visible step); run it under ``MALLOC_ARENA_MAX=2`` to compare glibc's arenas.
``--checkpoint-every`` forces a CHECKPOINT on the writer every N seconds, to see whether the
uncheckpointed rows DuckDB keeps in memory (``IN_MEMORY_TABLE``) are what grows.
"""

from __future__ import annotations

import argparse
import ctypes
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

MIB = 2**20


def smaps(pid: int | str = "self") -> dict[str, int]:
    """Return RSS, anonymous and file-backed MiB of process ``pid`` (/proc/<pid>/smaps_rollup)."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Anonymous:"):
                fields[parts[0].rstrip(":")] = int(parts[1]) // 1024
    return {"rss": fields["Rss"], "anon": fields["Anonymous"], "file": fields["Rss"] - fields["Anonymous"]}


def duck_memory(store: Any) -> dict[str, float]:
    """Return DuckDB's own accounting by tag, MiB, for tags in use."""
    rows = store.query("SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0")
    return {str(tag): used / MIB for tag, used in rows}


def watch(store: Any, args: argparse.Namespace, stop: threading.Event, started: float) -> None:
    """Print a line every ``args.every`` seconds, diff the two snapshots, then stop the owner."""
    first: tracemalloc.Snapshot | None = None
    next_line, next_checkpoint = 0.0, args.checkpoint_every or float("inf")
    print(f"{'s':>5} {'RSS':>5} {'anon':>5} {'file':>5} {'duckdb':>7} {'traced':>7}  duckdb_memory() by tag, MiB")
    while not stop.is_set():
        elapsed = time.monotonic() - started
        if elapsed >= next_checkpoint:
            store.submit(lambda con: con.execute("CHECKPOINT")).result()
            next_checkpoint += args.checkpoint_every
        if elapsed >= next_line or elapsed >= args.seconds:
            mem, duck = smaps(), duck_memory(store)
            traced = tracemalloc.get_traced_memory()[0] / MIB if tracemalloc.is_tracing() else float("nan")
            tags = " ".join(f"{k}={v:.1f}" for k, v in sorted(duck.items(), key=lambda kv: -kv[1]) if v >= 0.05)
            print(f"{elapsed:5.0f} {mem['rss']:5d} {mem['anon']:5d} {mem['file']:5d} {sum(duck.values()):7.1f} "
                  f"{traced:7.1f}  {tags}", flush=True)
            next_line += args.every
        if tracemalloc.is_tracing() and first is None and elapsed >= 60:
            first = tracemalloc.take_snapshot()
        if elapsed >= args.seconds:
            break
        time.sleep(0.5)
    if first is not None:
        keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
        last = tracemalloc.take_snapshot().filter_traces(keep)
        print(f"\ntracemalloc growth from 60 s to {args.seconds:.0f} s, top {args.top} lines:")
        for stat in last.compare_to(first.filter_traces(keep), "lineno")[: args.top]:
            print(f"  {stat}")
    before = smaps()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after = smaps()
    print(f"\nmalloc_trim(0): anonymous {before['anon']} -> {after['anon']} MiB, RSS {before['rss']} -> {after['rss']} MiB")
    stop.set()


def main() -> None:
    """Parse the options, start tracing if asked, run the owner until the watcher stops it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=360.0, help="how long to collect (default 360)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between lines (default 30)")
    parser.add_argument("--no-trace", action="store_true", help="do not run tracemalloc")
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames per allocation (default 1)")
    parser.add_argument("--top", type=int, default=15, help="lines of tracemalloc growth to print")
    parser.add_argument("--memory-limit", default="", help="store.memory_limit for this run (default: the setting)")
    parser.add_argument("--checkpoint-every", type=float, default=0.0, help="CHECKPOINT every N s (0: never)")
    args = parser.parse_args()
    if not args.no_trace:
        tracemalloc.start(args.frames)  # before the imports, so the modules' own objects are traced too
    from monitorkit.config import load_settings
    from monitorkit.owner.runtime import OwnerContext, run_owner

    with tempfile.TemporaryDirectory(prefix="owner-growth-") as tmp:
        overrides: dict[str, Any] = {"store.path": str(Path(tmp) / "m.duckdb")}
        if args.memory_limit:
            overrides["store.memory_limit"] = args.memory_limit
        settings = load_settings().with_overrides(overrides)
        stop, started = threading.Event(), time.monotonic()

        def ready(ctx: OwnerContext) -> None:
            threading.Thread(target=watch, args=(ctx.owner.store, args, stop, started), daemon=True).start()

        run_owner(settings, stop, on_ready=ready)


if __name__ == "__main__":
    main()
