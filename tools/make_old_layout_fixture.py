"""Remake tests/fixtures/old_layout_7775c0e.duckdb.gz: a file written by monitorkit before the package redesign.

    git archive 7775c0e | tar -x -C /tmp/oldmain        # the last main before the redesign (issue 10)
    .venv/bin/python tools/make_old_layout_fixture.py /tmp/oldmain

Every step runs the OLD code (PYTHONPATH=<old checkout> with this venv: same dependencies) in a
child process, as a user of that version would have:

1. ``monitorkit layouts import`` of a two-panel layout as the default (no owner yet: it creates
   the file with every old migration, 1-5, 10, 20-23, 40-41, settings_kv included);
2. ``monitorkit collect --duration 70`` (past a minute boundary: rollups) with the shipped rules
   and one rule that fires at once on the app's gauge ``fixture_queue_depth`` > 50, default
   collectors at a 1 s tick, notifications to the log at once (group_wait 0s);
3. an instrumented application (counter, gauge, histogram, one tracked exchange, two tool runs,
   one of them failing) sending to that owner, and a heartbeat;
4. once the alert fires: ``monitorkit alerts ack`` and ``monitorkit alerts silence``;
5. the owner stops at the end of its duration (rollups and rule state written on the way).

The file is gzipped (DuckDB leaves free blocks: ~10x smaller) and the counts of every table are
printed, so a change of the fixture shows in review.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "old_layout_7775c0e.duckdb.gz"

RULE = """-- name: fixture_queue_deep
-- kind: resource
-- severity: warning
-- for: 0s
-- every: 1s
-- summary: queue {{ queue }} on {{ host }} is {{ value }} deep
SELECT host, labels['queue'] AS queue, last AS value
FROM gauge_window('fixture_queue_depth', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE last > 50
"""

LAYOUT = {"name": "fixture", "panels": [{"kind": "cpu", "width": 6}, {"kind": "alerts", "width": 6}]}

APP = """
import sys, time
from monitorkit import instrument
from monitorkit.rules.health import heartbeat
db = sys.argv[1]
jobs = instrument.Counter("fixture_jobs_total", "Jobs done", labelnames=["queue"])
depth = instrument.Gauge("fixture_queue_depth", "Jobs waiting", labelnames=["queue"])
took = instrument.Histogram("fixture_job_seconds", "Job duration", labelnames=["queue"])
instrument.start(db_path=db, interval=0.5)
for i in range(6):
    jobs.labels(queue="a").inc(i + 1)
    depth.labels(queue="a").set(80 + i)
    took.labels(queue="a").observe(0.01 * (i + 1))
    time.sleep(0.5)
with instrument.track(protocol="http", method="GET") as ex:
    ex.status = 200
with instrument.tool_run("resize_image", {"size": "big"}):
    pass
try:
    with instrument.tool_run("resize_image", {"size": "huge"}):
        raise ValueError("too big")
except ValueError:
    pass
assert heartbeat("fixture_worker", ttl=600, db=db), "no owner received the heartbeat"
assert instrument.stop(), "samples left queued"
"""


def old(old_tree: Path, *args: str, code: str | None = None, wait: bool = True, cwd: Path) -> subprocess.Popen[str]:
    """Run the old CLI (or ``code``) in a child python that imports monitorkit from ``old_tree``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORKIT_")}
    env.update(PYTHONPATH=str(old_tree), PYTHONUNBUFFERED="1")
    entry = code if code is not None else "import sys; from monitorkit.cli import main; sys.argv[0] = 'monitorkit'; main()"
    proc = subprocess.Popen([sys.executable, "-c", entry, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if wait:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args) or 'the app'} failed:\n{out}")
        print(out.strip())
    return proc


def main(old_tree: Path) -> None:
    if not (old_tree / "monitorkit" / "migrations.py").exists():
        raise SystemExit(f"{old_tree} is not a checkout of 7775c0e (no monitorkit/migrations.py)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "old.duckdb"
        (work / "rules").mkdir()
        (work / "rules" / "fixture_queue_deep.sql").write_text(RULE)
        (work / "monitorkit.toml").write_text(
            f'[rules]\ndirs = ["{work / "rules"}"]\ndefaults = true\n\n[collect]\ninterval = 1\n\n'
            '[store]\nflush_interval = "1s"\n\n[alerting]\ngroup_wait = "0s"\ngroup_interval = "1s"\n')
        (work / "layout.json").write_text(json.dumps(LAYOUT))
        old(old_tree, "layouts", "import", str(work / "layout.json"), "--default", "--db", str(db), cwd=work)
        owner = old(old_tree, "collect", "--db", str(db), "--duration", "70", wait=False, cwd=work)
        deadline = time.monotonic() + 60
        while not (work / "old.duckdb.owner.json").exists():
            if owner.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the old owner did not start:\n{owner.communicate()[0]}")
            time.sleep(0.2)
        old(old_tree, str(db), code=APP, cwd=work)
        alerts: list[dict[str, object]] = []
        while not alerts:
            if time.monotonic() > deadline:
                raise SystemExit("the fixture rule did not fire")
            time.sleep(0.5)
            listing = subprocess.run(
                [sys.executable, "-c", "import sys; from monitorkit.cli import main; main()",
                 "alerts", "list", "--state", "firing", "--json", "--db", str(db)],
                cwd=work, env={**os.environ, "PYTHONPATH": str(old_tree)}, capture_output=True, text=True, check=True)
            alerts = [a for a in json.loads(listing.stdout) if a.get("rule") == "fixture_queue_deep"]
        old(old_tree, "alerts", "ack", str(alerts[0]["id"]), "--by", "ada", "--comment", "draining",
            "--db", str(db), cwd=work)
        old(old_tree, "alerts", "silence", "-m", "queue=a", "--for", "2h", "--by", "ada",
            "--comment", "maintenance", "--db", str(db), cwd=work)
        out, _ = owner.communicate(timeout=120)
        if owner.returncode != 0:
            raise SystemExit(f"the old owner failed:\n{out}")
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        with db.open("rb") as src, gzip.open(FIXTURE, "wb", compresslevel=9) as dst:
            shutil.copyfileobj(src, dst)
        counts = subprocess.run(
            [sys.executable, "-c",
             "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True)\n"
             "for (t,) in con.execute(\"SELECT table_name FROM duckdb_tables() ORDER BY 1\").fetchall():\n"
             "    print(f'{t:28} {con.execute(f\"SELECT count(*) FROM {t}\").fetchone()[0]:>8}')",
             str(db)], capture_output=True, text=True, check=True)
        print(counts.stdout.rstrip())
        print(f"{FIXTURE.relative_to(ROOT)}: {db.stat().st_size:,} bytes, {FIXTURE.stat().st_size:,} gzipped")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).resolve())
