"""SIGKILL the owner while one alert is pending and one firing: after a restart both resume, nothing is sent twice."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from receivers import receiver
from rules_helpers import webhook_alerting, write_rule
from shared_helpers import wait_until
from store_helpers import read_line, spawn_python

from monitorkit.owner.connect import connect

# An owner whose only collector reads {key: value} from a JSON file every 0.2 s as `trigger` samples.
OWNER_CHILD = """
    import copy, json, sys, threading
    from monitorkit.config import DEFAULTS, Settings
    from monitorkit.owner.runtime import run_owner
    from monitorkit.samples import Sample

    db, rules, state, alerting = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    overrides = {"store.path": db, "collect.interval": 0.2, "rules.dirs": [rules], "rules.defaults": False,
                 **{f"alerting.{k}": v for k, v in alerting.items()}}
    settings = Settings(copy.deepcopy(DEFAULTS), {}).with_overrides(overrides)

    class FileCollector:
        name = "file"
        interval = 0.2

        def collect(self, now):
            with open(state) as fh:
                values = json.load(fh)
            return [Sample(now, "trigger", {"key": k}, float(v)) for k, v in values.items()]

    run_owner(settings, threading.Event(), collectors=[FileCollector()],
              services=("monitorkit.rules.service:RuleService",), on_ready=lambda ctx: print("ready", flush=True))
"""

RULE = """SELECT host, labels['key'] AS key, last AS value
FROM gauge_window('trigger', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE labels['key'] LIKE '{prefix}%' AND last > 50"""


def alerts(con: Any) -> dict[str, tuple[Any, ...]]:
    rows = con.execute("SELECT labels['key'], state, since, fired_at, id FROM alerts").fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.mark.slow
def test_pending_and_firing_alerts_survive_a_killed_owner_without_a_second_notification(tmp_path: Path) -> None:
    db, state = tmp_path / "m.duckdb", tmp_path / "values.json"
    write_rule(tmp_path / "rules", "pend", RULE.format(prefix="p"), for_="1h")
    write_rule(tmp_path / "rules", "fire", RULE.format(prefix="f"))
    state.write_text(json.dumps({"p": 80, "f": 80}))
    with receiver() as hook:
        args = (str(db), str(tmp_path / "rules"), str(state),
                json.dumps(webhook_alerting(hook.url, group_by=["alertname", "key"])))
        first = spawn_python(OWNER_CHILD, *args, cwd=tmp_path)
        try:
            read_line(first, "ready")
            with connect(db) as con:  # through the owner, over Quack
                query = lambda sql: con.execute(sql).fetchall()  # noqa: E731
                assert wait_until(lambda: {k: v[0] for k, v in alerts(con).items()} == {"p": "pending", "f": "firing"})
                [note] = hook.wait_for(1)
                assert [a["labels"]["key"] for a in note["alerts"]] == ["f"]
                # the delivery is recorded (through the writer) before we pull the plug
                assert wait_until(lambda: query("SELECT count(*) FROM notify_groups") == [(1,)])
                assert query("SELECT key FROM alert_fire") == [("f",)]  # the rule's view, over Quack
                before = alerts(con)
                transitions = query("SELECT count(*) FROM alert_events WHERE event <> 'notified'")
                before_kill = query("SELECT max(last_active) FROM alerts")[0][0]
            os.kill(first.pid, signal.SIGKILL)
            first.communicate(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first.returncode == -signal.SIGKILL

        second = spawn_python(OWNER_CHILD, *args, cwd=tmp_path)
        try:
            read_line(second, "ready")
            with connect(db) as con:
                query = lambda sql: con.execute(sql).fetchall()  # noqa: E731
                restarted = query("SELECT max(loaded_at) FROM rules")[0][0]
                # both rules evaluated since the restart (the engine read its saved state first)
                assert wait_until(lambda: query("SELECT count(*) FROM rules WHERE last_eval > "
                                                f"TIMESTAMPTZ '{restarted.isoformat()}'") == [(2,)])
                after = alerts(con)
                assert after["f"] == before["f"]  # same id, firing stays firing
                # the pending one keeps its id; its `for` clock does not count the outage (Prometheus's
                # RestoreForState within --rules.alert.for-outage-tolerance): since moves by the downtime
                (kind, since, fired, ident), (kind0, since0, fired0, ident0) = after["p"], before["p"]
                assert (kind, fired, ident) == (kind0, fired0, ident0)
                first_eval = query("SELECT max(last_eval) FROM rules")[0][0]  # the first pass after the restart
                assert since0 < since <= since0 + (first_eval - before_kill)
                restored = query("SELECT event FROM alert_events WHERE event NOT IN ('notified', 'restored')")
                assert len(restored) == transitions[0][0]
            # a new alert after the restart: its notification comes after any duplicate would have
            state.write_text(json.dumps({"p": 80, "f": 80, "f2": 80}))
            bodies = hook.wait_for(2)
            assert [[a["labels"]["key"] for a in b["alerts"]] for b in bodies] == [["f"], ["f2"]]
            os.kill(second.pid, signal.SIGKILL)
            second.communicate(timeout=30)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert len(hook.requests) == 2
