"""After a restart a pending alert's `for` clock is restored as Prometheus restores it (promtool cannot test this).

Prometheus's RestoreForState (rules/manager.go) with its flags, named alike in ``[rules]``:
``--rules.alert.for-outage-tolerance`` (``for_outage_tolerance``, 1 h) and
``--rules.alert.for-grace-period`` (``for_grace_period``, 10 min). Each test stops an engine,
starts another on the same file later (a restart on a fake clock) and watches the alert.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from rules_helpers import T0, FakeClock, engine_for, events, rule_settings, trigger, write_rule

from monitorkit.config import Settings
from monitorkit.rules.engine import Engine
from monitorkit.rules.restore import RestoreSettings, restore_phase
from monitorkit.rules.state import Phase
from monitorkit.store import Store

M = timedelta(minutes=1)


class Owner:
    """One database and a fake clock; ``up()`` starts an engine (a new process, as far as state goes)."""

    def __init__(self, tmp_path: Path, for_: str, **rules: str) -> None:
        write_rule(tmp_path / "rules", "hot", for_=for_)
        overrides: dict[str, Any] = {f"rules.{k}": v for k, v in rules.items()}
        self.settings: Settings = rule_settings(tmp_path / "rules", **overrides)
        self.store = Store(tmp_path / "m.duckdb", settings=self.settings)
        self.clock = FakeClock(T0)

    def up(self) -> Any:
        return engine_for(self.store, self.settings, clock=self.clock.monotonic, now=self.clock.utcnow)

    def at(self, engine: Engine, minute: float, value: float = 80) -> list[str]:
        """Write a sample and evaluate at ``minute``; return the events of that evaluation."""
        when = T0 + M * minute
        self.store.write([trigger(when, value)])
        self.store.flush()
        return [e.event for e in engine.run(when).events]

    def alert(self) -> tuple[Any, ...]:
        return self.store.query("SELECT id, state, since, fired_at FROM alerts")[0]


def test_an_outage_longer_than_for_outage_tolerance_starts_a_pending_alert_over(tmp_path: Path) -> None:
    # Before: the downtime counted as pending and a `for: 1h` alert fired at the first evaluation after 3 h down.
    o = Owner(tmp_path, "1h")
    with o.up() as engine:
        assert o.at(engine, 0) == ["pending"] and o.at(engine, 1) == []
    with o.up() as engine:  # down from 0:01 to 3:01
        assert o.at(engine, 181) == ["restored"]
        assert o.alert()[1:3] == ("pending", T0 + M * 181)
        assert o.at(engine, 240) == []
        assert o.at(engine, 241) == ["firing"]  # `for` counted from the restart
    history = o.store.query("SELECT event, comment FROM alert_events WHERE event = 'restored'")
    assert [e for e, _ in history] == ["restored"] and "for_outage_tolerance" in history[0][1]
    o.store.close()


def test_a_short_outage_is_not_counted_as_pending(tmp_path: Path) -> None:
    o = Owner(tmp_path, "1h")
    with o.up() as engine:
        o.at(engine, 0)
        o.at(engine, 10)
    with o.up() as engine:  # down 5 minutes, from 0:10 to 0:15
        assert o.at(engine, 15) == ["restored"]
        assert o.alert()[2] == T0 + M * 5  # since moved by the outage
        assert o.at(engine, 64) == []
        assert o.at(engine, 65) == ["firing"]
    o.store.close()


def test_less_than_the_grace_period_left_waits_the_grace_period(tmp_path: Path) -> None:
    o = Owner(tmp_path, "30m")
    with o.up() as engine:
        o.at(engine, 0)
        o.at(engine, 25)  # 5 minutes of `for` left
    with o.up() as engine:
        assert o.at(engine, 26) == ["restored"]
        assert o.at(engine, 35) == []
        assert o.at(engine, 36) == ["firing"]  # one grace period (10 min) after the restart
    o.store.close()


def test_a_for_shorter_than_the_grace_period_is_not_restored(tmp_path: Path) -> None:
    o = Owner(tmp_path, "5m")
    with o.up() as engine:
        o.at(engine, 0)
        o.at(engine, 3)
    with o.up() as engine:
        assert o.at(engine, 4) == ["restored"]
        assert o.at(engine, 8) == []
        assert o.at(engine, 9) == ["firing"]  # a full `for` after the restart
    o.store.close()


def test_a_firing_alert_keeps_firing_within_the_tolerance_and_starts_over_after_it(tmp_path: Path) -> None:
    o = Owner(tmp_path, "0s")
    with o.up() as engine:
        assert o.at(engine, 0) == ["pending", "firing"]
        o.at(engine, 1)
    with o.up() as engine:
        assert o.at(engine, 31) == []  # down 30 minutes: still firing, nothing to tell
        assert o.alert()[1] == "firing" and o.alert()[3] == T0
    with o.up() as engine:
        assert o.at(engine, 200) == ["resolved", "pending", "firing"]  # down over an hour: a new episode
        assert o.alert()[3] == T0 + M * 200
    assert [e[1] for e in events(o.store)] == ["pending", "firing", "resolved", "pending", "firing"]
    o.store.close()


def test_the_settings_have_prometheus_names_and_can_be_changed(tmp_path: Path) -> None:
    o = Owner(tmp_path, "1h", for_outage_tolerance="10m", for_grace_period="1m")
    with o.up() as engine:
        assert engine.book.restore == RestoreSettings(timedelta(minutes=10), timedelta(minutes=1))
        o.at(engine, 0)
    with o.up() as engine:
        o.at(engine, 15)  # down 15 minutes > 10
        assert o.alert()[2] == T0 + M * 15
    o.store.close()


def test_restore_phase_follows_restore_for_state() -> None:
    pending = Phase("pending", since=T0, last_active=T0 + M * 40)
    one_hour = timedelta(hours=1)
    # remaining 20 min >= grace: shifted by the downtime (5 min)
    assert restore_phase(pending, T0 + M * 45, one_hour)[0].since == T0 + M * 5
    # remaining 20 min, grace 30 min: fires 30 min after the restart
    assert restore_phase(pending, T0 + M * 45, one_hour, RestoreSettings(one_hour, M * 30))[0].since == \
        T0 + M * 45 + M * 30 - one_hour
    # spent the whole `for` before going down: unchanged, fires at once
    assert restore_phase(pending._replace(last_active=T0 + M * 61), T0 + M * 62, one_hour)[0] == \
        pending._replace(last_active=T0 + M * 61)
    assert restore_phase(Phase(), T0, one_hour) == (Phase(), [], None)
