"""Alert latency and rule-evaluation cost.

1. Latency, default configuration: an owner runs (the default collectors and services, the
   shipped rules plus one rule without `for`, alerts to a local webhook grouped per key). Two
   sources trip the rule: a collector in the owner (samples stamped at the tick, like every
   collector) and then an instrumented application in a child process (`monitorkit.instrument`,
   its sender pushing to the owner API), one after the other. For each alert: sample timestamp -> the alert's state
   `firing` committed (readers see it) and -> the webhook's arrival; p50/p95/p99/max.
2. Cost: 50 rules (the shipped ones plus copies) evaluated over an hour of synthetic host
   metrics: CPU time (process) and wall time per evaluation.

Run: .venv/bin/python benchmarks/alert_bench.py [--only latency|cost] [--alerts 102] [--passes 30]
     [--set store.flush_interval=100ms ...]   (settings to try instead of the shipped defaults)
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitorkit.config import load_settings
from monitorkit.rules.engine import Engine
from monitorkit.rules.loader import default_rules_dir, load_rules
from monitorkit.rules.state import PassReport
from monitorkit.samples import HOST, Sample
from monitorkit.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from receivers import Receiver  # the one local webhook receiver of tests and benchmarks

TRIGGER_RULE = """-- name: bench_trigger
-- kind: performance
-- severity: warning
-- summary: bench {{ key }}
SELECT host, name AS source, labels['key'] AS key, last AS value
FROM gauge_window('bench_%', eval_time() - INTERVAL 10 SECOND, eval_time())
WHERE last > 50
"""
PER_TICK = 6  # new alerts per second from a source: 102 alerts in 17 s, one source after the other

# The instrumented application: PER_TICK new keys a second on a gauge, pushed by the sender.
APP = """
import sys, time
from monitorkit import instrument
db, count, per_tick = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gauge = instrument.Gauge("bench_instrument", "bench trigger", labelnames=["key"])
sender = instrument.start(db_path=db)
for i in range(count):
    gauge.labels(key=f"i{i}").set(99.0)
    if i % per_tick == per_tick - 1:
        time.sleep(1.0)
time.sleep(3.0)
instrument.stop()
"""


class BenchCollector:
    """Emit PER_TICK new `bench_collector` keys per tick (armed by the benchmark), stamped like any collector."""

    name = "bench"
    interval = 1.0

    def __init__(self) -> None:
        self.left = 0
        self.next = 0

    def collect(self, now: datetime) -> Iterable[Sample]:
        out = []
        for _ in range(min(PER_TICK, self.left)):
            out.append(Sample(now, "bench_collector", {"key": f"c{self.next}"}, 99.0, HOST))
            self.next += 1
            self.left -= 1
        return out


def firing_of(key: str) -> Callable[[dict[str, Any]], bool]:
    """Return a test of a webhook body: does it notify alert ``key`` as firing?"""
    def match(body: dict[str, Any]) -> bool:
        return any(a["labels"].get("key") == key and a["status"] == "firing" for a in body["alerts"])
    return match


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def figures(name: str, seconds: list[float], total: int) -> str:
    if not seconds:
        return f"  {name:<34} none of {total} arrived"
    ms = [s * 1000 for s in seconds]
    return (f"  {name:<34} p50 {pct(ms, 50):7.1f}  p95 {pct(ms, 95):7.1f}  p99 {pct(ms, 99):7.1f}  "
            f"max {max(ms):7.1f} ms  ({len(ms)}/{total} alerts)")


def latency(n: int, overrides: dict[str, str]) -> None:
    from monitorkit.collectors import default_collectors
    from monitorkit.owner.runtime import OwnerContext, run_owner

    logging.getLogger("monitorkit.alerts").setLevel(logging.ERROR)
    hook = Receiver()
    bench = BenchCollector()
    fired: dict[str, float] = {}

    def on_pass(report: PassReport) -> None:  # in the writer thread, once the pass's state is committed
        now = time.time()
        for e in report.events:
            if e.event == "firing" and e.rule == "bench_trigger":
                fired.setdefault(e.labels["key"], now)

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        rules.mkdir()
        (rules / "bench_trigger.sql").write_text(TRIGGER_RULE)
        db = Path(tmp) / "bench.duckdb"
        # Routing only: one receiver, an alert per key (group_by). Every timing is the default.
        alerting = {"receiver": "hook", "group_by": ["alertname", "key"],
                    "receivers": [{"name": "hook", "channels": [{"type": "webhook", "url": hook.url}]}]}
        settings = load_settings(env={}).with_overrides({
            "store.path": str(db), "rules.dirs": [str(rules)],
            **{f"alerting.{k}": v for k, v in alerting.items()}, **overrides,
        })
        stop = threading.Event()
        box: dict[str, OwnerContext] = {}
        ready = threading.Event()

        def on_ready(ctx: OwnerContext) -> None:
            box["ctx"] = ctx
            ready.set()

        collectors = [*default_collectors(settings["collectors"]), bench]
        owner = threading.Thread(target=run_owner, args=(settings, stop), daemon=True,
                                 kwargs={"collectors": collectors, "on_ready": on_ready})
        owner.start()
        ready.wait(60)
        ctx = box["ctx"]
        engine: Engine = ctx.services["rules"].engine  # type: ignore[attr-defined]
        engine.listeners.append(on_pass)
        time.sleep(3)  # a few ticks of the default collectors first, so every rule has data
        bench.left = n  # collector data alone first, then instrumented data alone
        while bench.left and owner.is_alive():
            time.sleep(0.2)
        time.sleep(2)
        app = subprocess.Popen([sys.executable, "-c", APP, str(db), str(n), str(PER_TICK)])
        try:
            app.wait(n / PER_TICK + 30)
        finally:
            if app.poll() is None:
                app.kill()
        keys = [f"c{i}" for i in range(n)] + [f"i{i}" for i in range(n)]
        deadline = time.monotonic() + 15
        arrived: dict[str, float] = {}
        for key in keys:
            t = hook.first(firing_of(key), max(0.0, deadline - time.monotonic()))
            if t is not None:
                arrived[key] = t
        stamps = dict(ctx.owner.store.query(
            "SELECT labels['key'], min(time) FROM samples WHERE name IN ('bench_collector', 'bench_instrument') "
            "GROUP BY 1"))
        used = {k: settings.get(k) for k in ("store.flush_interval", "collect.interval", "instrument.interval",
                                            "rules.min_interval")}
        used["alerting.group_wait"] = engine.alerting.root.group_wait.total_seconds()
        stop.set()
        owner.join(30)
    hook.close()

    def lat(prefix: str, when: dict[str, float]) -> list[float]:
        return [when[k] - stamps[k].timestamp() for k in keys if k.startswith(prefix) and k in when and k in stamps]

    print(f"latency from a sample's timestamp, {n} alerts per source, settings {used}:")
    print(figures("collector data -> firing", lat("c", fired), n))
    print(figures("collector data -> webhook", lat("c", arrived), n))
    print(figures("instrumented data -> firing", lat("i", fired), n))
    print(figures("instrumented data -> webhook", lat("i", arrived), n))


def synthetic_history(store: Store, end: datetime) -> int:
    """Write an hour of host-like metrics (1 s cadence) and return how many samples."""
    start = end - timedelta(hours=1)
    names: list[tuple[str, dict[str, str]]] = [
        ("cpu_percent", {}), ("memory_percent", {}), ("swap_in_bytes_total", {}), ("swap_out_bytes_total", {})]
    names += [("cpu_percent", {"cpu": str(c)}) for c in range(2)]
    for nic in ("eth0", "lo"):
        names += [(f"net_errors_{d}_total", {"nic": nic}) for d in ("in", "out")]
    disk = {"mount": "/", "device": "sda1", "fstype": "ext4"}
    names += [("disk_used_percent", disk), ("disk_used_bytes", disk), ("disk_free_bytes", disk)]
    names += [("net_connections", {"kind": "tcp", "state": s}) for s in ("ESTABLISHED", "LISTEN", "TIME_WAIT")]
    names += [("monitorkit_collector_up", {"collector": c}) for c in ("cpu", "memory", "disk", "network")]
    total = 0
    for sec in range(0, 3600, 60):
        batch = []
        for s in range(60):
            t = start + timedelta(seconds=sec + s)
            for i, (name, labels) in enumerate(names):
                batch.append(Sample(t, name, labels, float((sec + s) * (i + 1) % 97), HOST))
        store.write(batch, validate=False)
        total += len(batch)
    store.flush()
    return total


def cost(passes: int) -> None:
    logging.getLogger("monitorkit.alerts").setLevel(logging.ERROR)  # the log receiver: alerts on synthetic data
    with tempfile.TemporaryDirectory() as tmp:
        shipped = load_rules([default_rules_dir()]).rules
        extra = Path(tmp) / "rules"
        extra.mkdir()
        alerts = [r for r in shipped.values() if r.type == "alert"]
        i = 0
        while len(shipped) + i < 50:
            rule = alerts[i % len(alerts)]
            text = (Path(rule.file).read_text().replace(f"-- name: {rule.name}", f"-- name: {rule.name}_copy{i}"))
            (extra / f"{rule.name}_copy{i}.sql").write_text(text)
            i += 1
        settings = load_settings(env={}).with_overrides({"rules.dirs": [str(extra)]})
        end = datetime.now(UTC)
        with Store(Path(tmp) / "cost.duckdb", settings=settings) as store:
            rows = synthetic_history(store, end)
            engine = Engine(store, settings)
            engine.start()
            try:
                engine.run(end)  # warm-up
                worst = measure(engine, [end] * passes, all_due=True)
                slowest = store.query("SELECT name, eval_ms FROM rules ORDER BY eval_ms DESC LIMIT 3")
                # steady state at a 1 s tick: rules with `every:` run only when due
                steady = measure(engine, [end + timedelta(seconds=k + 1) for k in range(2 * passes)])
                errored = [n for n, s in engine.status.items() if s.state != "ok"]
            finally:
                engine.close()
    print(f"evaluation cost, {len(engine.rules)} rules ({len(errored)} errored) over {rows:,} samples "
          f"(1 h x {rows // 3600} series at 1 s):")
    print(f"  all 50 due:            CPU {worst[0]:.1f} ms per pass (process time, all threads), "
          f"wall {worst[1]:.1f} ms ({passes} passes)")
    print(f"  1 s ticks with every: CPU {steady[0]:.1f} ms per pass, wall {steady[1]:.1f} ms ({2 * passes} passes)")
    print("  slowest rules: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in slowest))


def measure(engine: Engine, times: list[datetime], all_due: bool = False) -> tuple[float, float]:
    """Return (CPU ms, wall ms) per evaluation at each of ``times`` (``all_due``: ignore `every:`)."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for at in times:
        if all_due:
            engine.status.update({n: s._replace(last_eval=None) for n, s in engine.status.items()})
        engine.run(at)
    return (time.process_time() - cpu0) / len(times) * 1000, (time.perf_counter() - wall0) / len(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", choices=("latency", "cost"))
    parser.add_argument("--alerts", type=int, default=102, help="alerts per source")
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting instead of its default, e.g. store.flush_interval=100ms")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    if args.only in (None, "latency"):
        latency(args.alerts, overrides)
    if args.only in (None, "cost"):
        cost(args.passes)


if __name__ == "__main__":
    main()
