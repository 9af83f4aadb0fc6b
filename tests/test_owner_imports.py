"""The owner's hot path loads neither pandas nor pyarrow (nor the dashboard's libraries).

DuckDB 1.5.5's Python binding imports pandas, numpy and pyarrow (about 90 MiB of RSS) on the first
statement with bound parameters or the first registered Arrow table; the owner's paths inline their
values instead (store/literals.py). This runs what `monitorkit collect` runs, in a fresh interpreter,
through each of those paths (collector commits with new series, a rule that fires and notifies,
heartbeats and health, JSON ingest, rollup, compaction, retention, the readers' allowlist parse) and
then reads ``sys.modules``; numpy too, until a reader opens the Quack endpoint (owner/quack.py).
It asserts behaviour, not RSS: the figures are in benchmarks/owner_memory_bench.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from rules_helpers import write_rule
from store_helpers import run_python

HEAVY = ("pandas", "pyarrow", "polars", "panel", "bokeh")

CHILD = """
import json, sys, threading, time
from monitorkit.config import DEFAULTS, Settings
from monitorkit.owner.client import endpoint, quack_endpoint, request
from monitorkit.owner.runtime import run_owner
from monitorkit.owner.sidecar import read_owner

db, rules = sys.argv[1], sys.argv[2]
settings = Settings(DEFAULTS, {}).with_overrides({"store.path": db, "rules.dirs": [rules], "rules.poll": "0s"})
stop = threading.Event()
seen = {}

def exercise(ctx):
    store = ctx.owner.store
    deadline = time.monotonic() + 60
    def wait(sql):
        while time.monotonic() < deadline:
            rows = store.query(sql)
            if rows and rows[0][0]:
                return rows[0][0]
            time.sleep(0.2)
        raise SystemExit("timed out waiting for: " + sql)
    port, token = endpoint(read_owner(db))
    line = json.dumps({"time": int(time.time() * 1e6), "name": "app_queue_depth", "labels": {"q": "it's \\\\ \\u00e9"},
                       "value": 3.5, "host": "h1"})
    seen["ingest"] = request(port, "POST", "/v1/samples", token, "application/x-ndjson", line.encode(), 10).status
    seen["firing"] = wait("SELECT count(*) FROM alerts WHERE rule = 'always' AND state = 'firing'")
    seen["notified"] = wait("SELECT count(*) FROM alert_events WHERE event = 'notified'")
    seen["heartbeats"] = wait("SELECT count(*) FROM heartbeats")
    seen["health"] = wait("SELECT count(*) FROM health_status")
    seen["ingested"] = wait("SELECT count(*) FROM samples_raw JOIN series USING (series_id) WHERE name = 'app_queue_depth'")
    seen["collected"] = wait("SELECT count(DISTINCT name) FROM series WHERE name LIKE 'cpu%'")
    store.rollup()
    store.compact()
    store.enforce_retention()
    ctx.owner.readers.tree("SELECT 1")  # the allowlist's parse, run for every reader statement
    # The Quack endpoint (its allowlist UDF imports numpy) opens only when a reader asks for it.
    seen["numpy_before_quack"] = "numpy" in sys.modules
    seen["port_before_quack"] = read_owner(db).port
    qport, _ = quack_endpoint(read_owner(db))
    seen["quack_published"] = qport > 0 and read_owner(db).port == qport
    stop.set()

def on_ready(ctx):
    threading.Thread(target=lambda: (exercise(ctx) if not stop.is_set() else None), daemon=True).start()

guard = threading.Timer(90, stop.set)  # a bounded run even if a path never shows
guard.daemon = True
guard.start()
run_owner(settings, stop, on_ready=on_ready)
heavy = sorted({m.partition(".")[0] for m in sys.modules} & set(sys.argv[3:]))
print(json.dumps({"seen": seen, "heavy": heavy, "numpy": "numpy" in sys.modules}))
"""


def test_collect_hot_paths_import_neither_pandas_nor_pyarrow(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    write_rule(rules, "always", "SELECT 'h1' AS host, 1.0 AS value")
    proc = run_python(CHILD, str(tmp_path / "owner.duckdb"), str(rules), *HEAVY, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    seen = report["seen"]
    # Every path ran: without these the empty list below would prove nothing.
    assert seen["ingest"] == 200 and seen["firing"] == 1 and seen["notified"] >= 1, seen
    assert seen["heartbeats"] > 0 and seen["health"] > 0 and seen["ingested"] == 1 and seen["collected"] > 0, seen
    assert report["heavy"] == [], f"the owner's hot path loaded {report['heavy']}"
    assert seen["numpy_before_quack"] is False and seen["port_before_quack"] == 0, seen
    assert seen["quack_published"] is True, seen
