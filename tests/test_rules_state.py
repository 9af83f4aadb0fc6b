"""Property tests of the alert state machine, silences, inhibition and aggregation groups."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_helpers import T0, engine_for, rule_settings, series, write_rule

from monitorkit.rules.groups import AlertView, Groups, Notification
from monitorkit.rules.notify import DeliveryResult
from monitorkit.rules.routing import Channel, alerting_config
from monitorkit.rules.state import EDGES, Phase, Timing, advance
from monitorkit.store import Store

steps = st.lists(st.tuples(st.integers(min_value=1, max_value=90), st.booleans()), min_size=1, max_size=60)
durations = st.integers(min_value=0, max_value=240).map(lambda s: timedelta(seconds=s))


@settings(max_examples=300, deadline=None)
@given(steps, durations, durations)
def test_state_machine_fires_and_resolves_only_when_due(seq: list[tuple[int, bool]], for_: timedelta,
                                                        keep: timedelta) -> None:
    timing = Timing(for_, keep)
    phase = Phase()
    t = T0
    history: list[tuple] = []  # (time, active)
    states = ["inactive"]
    for gap, active in seq:
        t += timedelta(seconds=gap)
        before = phase
        phase, entered = advance(phase, active, t, timing)
        history.append((t, active))
        for state in entered:
            assert (states[-1], state) in EDGES, f"{states[-1]} -> {state} skips a state"
            states.append(state)
        if active and before.state in ("inactive", "resolved"):
            assert entered[:1] == ["pending"] and phase.since == t
        if "firing" in entered:
            since = phase.since
            assert since is not None and t - since >= for_
            window = [a for (when, a) in history if since <= when <= t]
            assert all(window), "fired although the condition did not hold all along"
            earlier = [when for (when, a) in history[:-1] if when >= since]
            assert not earlier or earlier[-1] - since < for_, "fired later than it should have"
        if "resolved" in entered:
            # Prometheus counts keep_firing_for from the first evaluation that found the condition gone.
            last = before.last_active
            assert last is not None
            quiet = [when for (when, a) in history if when > last]
            assert not any(a for (when, a) in history if when > last), "resolved while the condition held"
            assert t - quiet[0] >= keep, "resolved before keep_firing_for passed since the first quiet evaluation"
            assert all(when - quiet[0] < keep for when in quiet[:-1]), "resolved later than it should have"
        if phase.state == "firing" and not active:
            last = before.last_active
            assert before.state == "firing" and last is not None
            quiet = [when for (when, a) in history if when > last]
            assert t - quiet[0] < keep
    assert phase.state == states[-1]


def test_keep_firing_for_counts_from_the_first_quiet_evaluation_as_prometheus() -> None:
    # every: 1m with keep_firing_for: 1m keeps a firing alert one evaluation longer (rules/alerting.go)
    timing = Timing(timedelta(0), timedelta(minutes=1))
    phase, states = Phase(), []
    for minute, active in enumerate([True, False, False, False]):
        phase, entered = advance(phase, active, T0 + timedelta(minutes=minute), timing)
        states.append((minute, entered, phase.state))
    assert states == [(0, ["pending", "firing"], "firing"), (1, [], "firing"), (2, ["resolved"], "resolved"),
                      (3, [], "resolved")]
    phase, entered = advance(Phase(), True, T0, Timing())
    phase, entered = advance(phase, False, T0 + timedelta(minutes=1), Timing())
    assert entered == ["resolved"]  # without keep_firing_for: the first quiet evaluation resolves


# -- notification: silenced and inhibited alerts are never sent ---------------------------------------

KEYS = ["a", "b", "c", "d"]
HOSTS = ["h1", "h2"]


def _alert(i: int, labels: dict[str, str], muted: bool = False) -> AlertView:
    return AlertView(i, labels["alertname"], f"fp{i}", labels, "firing", 1.0, "", "", T0, None, False, muted)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(HOSTS), st.booleans()), min_size=1, max_size=12,
                unique_by=lambda x: (x[0], x[1])))
def test_groups_never_send_muted_alerts_and_send_every_other_one(items: list[tuple[str, str, bool]]) -> None:
    config = alerting_config({"group_wait": "0s", "group_by": ["host"]})
    groups = Groups(config)
    alerts = [_alert(i, {"alertname": "r", "key": k, "host": h}, muted) for i, (k, h, muted) in enumerate(items)]
    notes = groups.plan(alerts, T0)
    sent = {a.id for n in notes for a in n.alerts}
    assert sent == {a.id for a in alerts if not a.muted}
    assert all(len({a.labels["host"] for a in n.alerts}) == 1 for n in notes)  # grouped by host


def test_groups_flush_on_ticks_then_batch_then_repeat() -> None:
    # Alertmanager's aggregation group: a tick group_wait after the first alert, then every group_interval;
    # at a tick a channel is notified only for what changed, or once repeat_interval passed (docs: route).
    config = alerting_config({"group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"})
    groups = Groups(config)
    one = _alert(1, {"alertname": "r", "key": "a"})
    two = _alert(2, {"alertname": "r", "key": "b"})
    t = lambda minutes, seconds=0: T0 + timedelta(minutes=minutes, seconds=seconds)  # noqa: E731
    assert groups.plan([one], T0) == []  # group_wait
    assert groups.next_due() == t(0, 30)
    [note] = groups.plan([one, two], t(0, 30))
    assert [a.id for a in note.alerts] == [1, 2]
    assert groups.plan([one, two], t(0, 31)) == []  # no tick
    groups.delivered(note)
    assert groups.plan([one, two], t(30, 30)) == []  # a tick, nothing new, repeat_interval not over
    resolved = one._replace(state="resolved", resolved_at=t(31))
    assert groups.plan([resolved, two], t(31)) == []  # changed, but the next tick is 35:30
    [note] = groups.plan([resolved, two], t(35, 30))
    assert [(a.id, a.state) for a in note.alerts] == [(1, "resolved"), (2, "firing")]
    groups.delivered(note)
    three = _alert(3, {"alertname": "r", "key": "c"})
    assert groups.plan([resolved, two, three], t(40, 29)) == []
    [note] = groups.plan([resolved, two, three], t(40, 30))
    assert [a.id for a in note.alerts] == [2, 3]  # the resolution was notified and left the group
    groups.delivered(note)
    # repeat_interval passes at 1:40:30; Alertmanager repeats at the first tick strictly after it
    assert groups.next_due() == t(105, 30)
    assert groups.plan([resolved, two, three], t(100, 30)) == []
    [again] = groups.plan([resolved, two, three], t(105, 30))
    assert [a.id for a in again.alerts] == [2, 3]
    groups.delivered(again)
    acked = [two._replace(acked=True), three._replace(acked=True)]
    assert groups.plan(acked, t(300, 30)) == []  # acknowledged: no repeats (monitorkit's addition)
    assert groups.next_due() is None


def test_restored_groups_do_not_notify_twice() -> None:
    config = alerting_config({"group_wait": "0s"})
    alert = _alert(1, {"alertname": "r", "key": "a"})
    first = Groups(config)
    [note] = first.plan([alert], T0)
    first.delivered(note)
    for key in (note.log_key, note.group_key):  # the group key alone: a row written before per-channel logs
        again = Groups(config)
        again.restore([(key, note.time, json.dumps(dict(note.sent)))])
        assert again.plan([alert], T0 + timedelta(minutes=5)) == []
        fresh = _alert(2, {"alertname": "r", "key": "b"})._replace(fired_at=T0 + timedelta(minutes=5))
        assert again.plan([alert, fresh], T0 + timedelta(minutes=5, seconds=59)) == []
        [new] = again.plan([alert, fresh], T0 + timedelta(minutes=6))  # the group's next tick (group_interval 1m)
        assert [a.id for a in new.alerts] == [1, 2]


class Recorder:
    """A sender that records every notification instead of sending it."""

    def __init__(self) -> None:
        self.notes: list[Notification] = []
        self.lock = threading.Lock()

    def __call__(self, note: Notification, channel: Channel, timeout: float) -> DeliveryResult:
        with self.lock:
            self.notes.append(note)
        return DeliveryResult(True, 200)


CRIT_SQL = """SELECT host, labels['key'] AS key, last AS value
FROM gauge_window('crit', eval_time() - INTERVAL 1 MINUTE, eval_time()) WHERE last > 50"""
WARN_SQL = CRIT_SQL.replace("'crit'", "'warn'")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    crit=st.sets(st.tuples(st.sampled_from(KEYS), st.sampled_from(HOSTS)), max_size=3),
    warn=st.sets(st.tuples(st.sampled_from(KEYS), st.sampled_from(HOSTS)), min_size=1, max_size=6),
    silence=st.sampled_from([None, "key=a", "host=h2", "key=~[bc]", "alertname=warn,host!=h1"]),
)
def test_engine_sends_nothing_silenced_and_records_but_does_not_send_inhibited(
    tmp_path_factory: object, crit: set[tuple[str, str]], warn: set[tuple[str, str]], silence: str | None,
) -> None:
    from monitorkit.rules.silences import create_silence, parse_matchers

    base = Path(tmp_path_factory.mktemp("engine"))  # type: ignore[attr-defined]
    write_rule(base / "rules", "crit", CRIT_SQL, severity="critical")
    write_rule(base / "rules", "warn", WARN_SQL, severity="warning")
    alerting = {"group_wait": "0s", "group_by": ["alertname", "host", "key"], "inhibit_rules": [
        {"source_match": {"severity": "critical"}, "target_match": {"severity": "warning"}, "equal": ["host"]}]}
    settings_ = rule_settings(base / "rules", alerting=alerting)
    recorder = Recorder()
    with Store(base / "m.duckdb", settings=settings_) as store, engine_for(store, sender=recorder) as engine:
        for metric, pairs in (("crit", crit), ("warn", warn)):
            for key, host in pairs:
                store.write(series(metric, T0 - timedelta(seconds=5), [90], labels={"key": key}, host=host))
        store.flush()
        matchers = parse_matchers([silence]) if silence else []
        if matchers:
            store.submit(lambda con: create_silence(con, matchers, starts_at=T0 - timedelta(hours=1),
                                                           duration=timedelta(hours=2), created_by="t",
                                                           comment="c", now=T0)).result()
        engine.run(T0)
        assert engine.dispatcher.wait_idle(10)
        sent = {(a.labels["alertname"], a.labels["key"], a.labels["host"]) for n in recorder.notes for a in n.alerts}
        rows = store.query("SELECT rule, labels['key'], labels['host'], state, silenced_by, inhibited FROM alerts")
        assert {(r[0], r[1], r[2]) for r in rows} == {("crit", k, h) for k, h in crit} | {("warn", k, h)
                                                                                           for k, h in warn}
        crit_hosts = {h for _, h in crit}
        for rule, key, host, state, silenced_by, inhibited in rows:
            labels = {"alertname": rule, "key": key, "host": host, "severity": "critical" if rule == "crit" else
                      "warning"}
            is_silenced = bool(matchers) and all(m.matches(labels) for m in matchers)
            is_inhibited = rule == "warn" and host in crit_hosts
            assert state == "firing"
            assert (silenced_by is not None) == is_silenced
            assert inhibited == is_inhibited
            assert ((rule, key, host) in sent) == (not is_silenced and not is_inhibited)
        inhibited_events = store.query("SELECT count(*) FROM alert_events WHERE event = 'inhibited'")[0][0]
        assert inhibited_events == sum(1 for r in rows if r[5])
