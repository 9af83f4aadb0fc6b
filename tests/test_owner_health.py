"""Health tells the truth about every part of the owner, from memory, within one tick."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from store_helpers import isolated_settings

from monitorkit.owner.health import HealthService
from monitorkit.owner.owner import Owner
from monitorkit.owner.runtime import serving
from monitorkit.owner.scheduler import Scheduler
from monitorkit.samples import utcnow
from monitorkit.store import duck


def test_every_part_reports_and_a_stopped_quack_endpoint_turns_health_failing(tmp_path: Path) -> None:
    settings = isolated_settings(**{"store.path": str(tmp_path / "m.duckdb")})
    with Owner(tmp_path / "m.duckdb", settings=settings) as owner:
        with serving(owner, Scheduler(owner.store, []), settings, threading.Event()) as ctx:
            health = HealthService()
            health.start(ctx)
            ctx.services[health.name] = health
            overall, parts = health.snapshot()
            assert overall == "ok"
            assert {p.component for p in parts} >= {"writer", "rollup", "compaction", "quack", "owner_api"}
            health.tick(utcnow())
            owner.store.flush()
            assert {c for (c,) in owner.store.query("SELECT component FROM heartbeats")} >= {"writer", "quack"}

            quack = next(p for p in parts if p.component == "quack")
            assert quack.status == "ok" and "opens on a reader's first request" in quack.reason  # not opened yet
            info = owner.open_quack()
            health.tick(utcnow())
            quack = next(p for p in health.snapshot()[1] if p.component == "quack")
            assert quack.status == "ok" and f"127.0.0.1:{info.port}" in quack.reason
            duck.quack_stop(owner.store.cursor(), info.port)  # as if something stopped the endpoint
            health.tick(utcnow())  # one tick later
            overall, parts = health.snapshot()
            quack = next(p for p in parts if p.component == "quack")
            assert overall == "failing" and quack.status == "failing" and "Quack endpoint stopped" in quack.reason
            owner.store.flush()
            assert owner.store.query("SELECT status FROM heartbeats WHERE component = 'quack'") == [("failing",)]
            health.stop()


def test_a_failing_rollup_is_logged_and_shows_in_health(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = isolated_settings()
    with Owner(tmp_path / "m.duckdb", settings=settings) as owner, caplog.at_level(logging.ERROR):
        owner.store.submit(lambda con: con.execute("DROP TABLE rollup_state")).result()  # as a damaged file would
        future = owner.store.rollup_soon()
        owner.store.flush()
        assert future.exception() is not None
        rollup = next(p for p in owner.store.parts() if p.component == "rollup")
        assert rollup.status == "failing" and "rollup_state" in rollup.reason
        assert "rolling up" in caplog.text and "rollup_state" in caplog.text


def test_the_rule_engine_and_dispatcher_report_into_the_owners_health(tmp_path: Path) -> None:
    from monitorkit.rules.service import RuleService

    settings = isolated_settings(**{"store.path": str(tmp_path / "m.duckdb")})
    with Owner(tmp_path / "m.duckdb", settings=settings) as owner:
        with serving(owner, Scheduler(owner.store, []), settings, threading.Event()) as ctx:
            rules, health = RuleService(), HealthService()
            for service in (rules, health):
                service.start(ctx)
                ctx.services[service.name] = service
            try:
                health.check()  # what each tick does
                _, parts = health.snapshot()
                components = {p.component: p.status for p in parts}
                assert components.get("rule_engine") == "ok" and "dispatcher" in components, parts
            finally:
                health.stop()
                rules.stop()
