"""Alert latency and rule-evaluation cost.

1. Latency: an owner runs (default collectors, default rules plus one `for: 0s` rule); samples that
   trip the rule are written with the current time; a local webhook receiver notes when each
   notification arrives. Reports p50/p99 of (arrival - sample timestamp) over N alerts.
2. Cost: 50 rules (the shipped ones plus copies) evaluated over an hour of synthetic host
   metrics: CPU time (process) and wall time per evaluation.

Run: .venv/bin/python benchmarks/alert_bench.py [--alerts 120] [--passes 30]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitorkit.config import load_settings
from monitorkit.rules.engine import Engine
from monitorkit.rules.loader import default_rules_dir, load_rules
from monitorkit.samples import HOST, Sample
from monitorkit.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from receivers import Receiver  # the one local webhook receiver of tests and benchmarks

TRIGGER_RULE = """-- name: bench_trigger
-- kind: performance
-- severity: warning
-- summary: bench {{ key }}
SELECT host, labels['key'] AS key, last AS value
FROM gauge_window('bench_trigger', eval_time() - INTERVAL 10 SECOND, eval_time())
WHERE last > 50
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency(n: int) -> None:
    from monitorkit.owner.runtime import OwnerContext, run_owner

    hook = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        rules.mkdir()
        (rules / "bench_trigger.sql").write_text(TRIGGER_RULE)
        alerting = {
            "receiver": "hook", "group_wait": "0s", "group_by": ["alertname", "key"],
            "receivers": [{"name": "hook", "channels": [{"type": "webhook", "url": hook.url}]}],
        }
        settings = load_settings(env={}).with_overrides({
            "store.path": str(Path(tmp) / "bench.duckdb"), "rules.dirs": [str(rules)],
            **{f"alerting.{k}": v for k, v in alerting.items()},
        })
        stop = threading.Event()
        box: dict[str, OwnerContext] = {}
        ready = threading.Event()

        def on_ready(ctx: OwnerContext) -> None:
            box["ctx"] = ctx
            ready.set()

        owner = threading.Thread(target=run_owner, args=(settings, stop), daemon=True, kwargs={
            "services": ("monitorkit.rules.service:RuleService",), "on_ready": on_ready})
        owner.start()
        ready.wait(60)
        store = box["ctx"].owner.store
        rule_count = len(box["ctx"].services["rules"].engine.rules)  # type: ignore[attr-defined]
        time.sleep(3)  # let the collectors write a few ticks, so every rule has data
        lat: list[float] = []
        for i in range(n):
            key = f"k{i}"
            stamp = datetime.now(UTC)
            store.write([Sample(stamp, "bench_trigger", {"key": key}, 99.0, HOST)])
            arrived = hook.first(lambda body, k=key: any(
                a["labels"].get("key") == k and a["status"] == "firing" for a in body["alerts"]))
            if arrived is not None:
                lat.append(arrived - stamp.timestamp())
        stop.set()
        owner.join(30)
    hook.close()
    print(f"latency, sample timestamp -> webhook arrival, {len(lat)}/{n} alerts, {rule_count} rules loaded "
          "(shipped + 1 trigger), owner with the default collectors:")
    print(f"  p50 {pct(lat, 50) * 1000:.1f} ms   p99 {pct(lat, 99) * 1000:.1f} ms   "
          f"max {max(lat) * 1000:.1f} ms   mean {statistics.mean(lat) * 1000:.1f} ms")


def synthetic_history(store: Store, end: datetime) -> int:
    """Write an hour of host-like metrics (1 s cadence) and return how many samples."""
    start = end - timedelta(hours=1)
    names = [("cpu_percent", {}), ("memory_percent", {}), ("swap_in_bytes_total", {}), ("swap_out_bytes_total", {})]
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=120)
    parser.add_argument("--passes", type=int, default=30)
    args = parser.parse_args()
    latency(args.alerts)
    cost(args.passes)


if __name__ == "__main__":
    main()
