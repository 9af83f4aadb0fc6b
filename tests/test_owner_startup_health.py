"""Health right after an owner starts: no check judges an empty file or the previous run's last reports.

The shipped checks run every 30 s or 1 min; a first pass evaluated before the owner's first tick
is committed said `writer` failing ("no sample written") on a fresh file and every collector
failing ("no report since <the last stop>") after a restart, and /healthz held 503 for that long.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from store_helpers import isolated_settings

from monitorkit.dashboard.http import health_summary
from monitorkit.owner.runtime import DEFAULT_SERVICES, run_owner
from monitorkit.rules.health import HealthTracker
from monitorkit.rules.runner import HealthRow
from monitorkit.samples import utcnow
from monitorkit.store.status import Part


class SlowStart:
    """A service that takes seconds to start, as the dashboard does (Panel's imports): the engine's
    loop already runs while the scheduler has not ticked yet."""

    name = "slow_start"

    def start(self, ctx: Any) -> None:
        time.sleep(3.0)

    def stop(self) -> None:
        pass


def first_pass_health(db: Path) -> dict[str, tuple[str, str]]:
    """Run a real owner until each health check ran once; return health_status as it was then."""
    settings = isolated_settings(**{"store.path": str(db)})
    stop = threading.Event()
    seen: dict[str, tuple[str, str]] = {}
    failure: list[BaseException] = []

    def ready(ctx: Any) -> None:
        engine = ctx.services["rules"].engine
        store = ctx.owner.store

        def written(report: Any) -> None:
            if seen or stop.is_set():
                return
            checks = [n for n, r in engine.rules.items() if r.type == "health"]
            if any(engine.status[n].last_eval is None for n in checks):
                return  # passes spread the `every:` checks: wait until each ran once
            try:
                rows = store.query("SELECT component, status, reason FROM health_status")
                seen.update({c: (s, r) for c, s, r in rows})
            except BaseException as exc:  # handed to the test thread
                failure.append(exc)
            stop.set()

        engine.listeners.append(written)

    services = (*DEFAULT_SERVICES, f"{__name__}:SlowStart")
    thread = threading.Thread(target=run_owner, args=(settings, stop), daemon=True,
                              kwargs={"on_ready": ready, "services": services})
    thread.start()
    stop.wait(60)
    thread.join(30)
    assert not thread.is_alive(), "the owner did not stop"
    assert not failure, failure
    assert seen, "no rule pass within 60 s"
    return seen


def test_the_first_pass_on_a_fresh_file_sees_the_first_tick(tmp_path: Path) -> None:
    health = first_pass_health(tmp_path / "m.duckdb")
    assert health["writer"] == ("ok", "writing")
    collectors = {c: v for c, v in health.items() if c.startswith("collector:")}
    assert set(collectors) >= {"collector:cpu", "collector:memory", "collector:processes"}
    assert all(status == "ok" for status, _ in collectors.values()), collectors
    assert health["overall"][0] == "ok", health


def test_after_a_restart_the_first_pass_does_not_judge_the_last_runs_reports(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    first_pass_health(db)
    time.sleep(4.0)  # the last reports are now older than 3 x their 1 s spacing: "late" if judged at once
    health = first_pass_health(db)
    assert {"writer", "collector:cpu", "collector:processes", "overall"} <= set(health)
    late = {c: v for c, v in health.items() if v[0] != "ok"}
    assert not late, late


def test_one_verdict_reported_by_two_checks_is_not_a_change() -> None:
    tracker = HealthTracker()
    now = utcnow()
    upserts, history, _ = tracker.update([("engine", HealthRow("dispatcher", "ok", "delivering"))], now)
    assert [u[0] for u in upserts] == ["dispatcher", "overall"] and len(history) == 2
    # The heartbeats check reports the same part with the same verdict: nothing to write.
    upserts, history, _ = tracker.update([("heartbeats", HealthRow("dispatcher", "ok", "delivering")),
                                          ("engine", HealthRow("dispatcher", "ok", "delivering"))], now)
    assert upserts == [] and history == []
    upserts, history, _ = tracker.update([("engine", HealthRow("dispatcher", "failing", "thread died"))], now)
    assert [u[:3] for u in upserts] == [("dispatcher", "engine", "failing"), ("overall", "overall", "failing")]


def test_healthz_sums_up_the_merged_parts_not_the_tables_stale_overall() -> None:
    rows = {"overall": SimpleNamespace(component="overall", status="failing", reason="not ok: writer"),
            "writer": SimpleNamespace(component="writer", status="failing", reason="no sample written"),
            "collector:cpu": SimpleNamespace(component="collector:cpu", status="ok", reason="reporting")}
    feed = SimpleNamespace(health=rows, latest={}, series={}, newest_ms=0)
    summary = health_summary(feed, lambda: ("ok", [Part("writer", "ok", "writing")]))  # type: ignore[arg-type]
    assert summary["status"] == "ok"
    assert {c["component"]: c["status"] for c in summary["components"]} == {"writer": "ok", "collector:cpu": "ok"}
    rows["collector:cpu"].status = "degraded"  # a table component the owner does not know still counts
    assert health_summary(feed, lambda: ("ok", [Part("writer", "ok", "writing")]))["status"] == "degraded"  # type: ignore[arg-type]
