"""Notification sequences as Alertmanager documents them, on simulated time through the whole engine.

Each test names the section of Alertmanager's documentation it follows
(prometheus.io/docs/alerting/latest/configuration/ and .../alertmanager/). Alerts come from a
rule evaluated on a fake clock (``engine.run(t)``); a recording sender stands in for the
channels, so every flush is seen with its time, channel and alerts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rules_helpers import T0, FakeClock, engine_for, rule_settings, trigger, write_rule

from monitorkit.rules.engine import Engine
from monitorkit.rules.groups import Notification
from monitorkit.rules.notify import DeliveryResult
from monitorkit.rules.routing import Channel
from monitorkit.rules.silences import create_silence, expire_silence, parse_matchers
from monitorkit.store import Store

SQL = """SELECT host, labels['key'] AS key, last AS value
FROM gauge_window('{metric}', eval_time() - INTERVAL 1 MINUTE, eval_time()) WHERE last > 50"""
HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}  # never dialled: the recorder sends


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Recorder:
    """A sender recording (time, channel type, status, ((key, state), ...)) of every delivery."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, str, tuple[tuple[str, str], ...]]] = []
        self.lock = threading.Lock()

    def __call__(self, note: Notification, channel: Channel, timeout: float) -> DeliveryResult:
        with self.lock:
            self.sent.append(((note.time - T0).total_seconds(), channel.type, note.status,
                              tuple((a.labels.get("key", a.rule), a.state) for a in note.alerts)))
        return DeliveryResult(True, 200)


@dataclass
class Scenario:
    """An engine on a fake clock with a recording sender; ``at(seconds, key=value, ...)`` runs one evaluation."""

    store: Store
    engine: Engine
    recorder: Recorder
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> key -> value

    def at(self, seconds: float, metric: str = "m", **values: float) -> list[tuple[Any, ...]]:
        """Set the values of ``metric`` (others keep theirs), evaluate at T0 + ``seconds``; return what was sent."""
        self.values.setdefault(metric, {}).update(values)
        self.store.write([trigger(t(seconds), v, key=k)._replace(name=name)
                          for name, keys in self.values.items() for k, v in keys.items()])
        self.store.flush()
        before = len(self.recorder.sent)
        self.engine.run(t(seconds))
        assert self.engine.dispatcher.wait_idle(10)
        self.store.flush()
        return self.recorder.sent[before:]

    def run(self, start: float, end: float, every: float = 10.0) -> list[tuple[Any, ...]]:
        """Evaluate every ``every`` seconds from ``start`` to ``end`` with unchanged values; return what was sent."""
        out = []
        s = start
        while s <= end:
            out += self.at(s)
            s += every
        return out

    def silence(self, matcher: str, start: float, seconds: float) -> int:
        """Silence alerts matching ``matcher`` from T0 + ``start`` for ``seconds``; return its id."""
        return self.store.submit(lambda con: create_silence(
            con, parse_matchers([matcher]), starts_at=t(start), duration=timedelta(seconds=seconds),
            created_by="test", comment="maintenance", now=t(start))).result().id


@contextmanager
def scenario(tmp_path: Path, alerting: Mapping[str, Any], rules: Mapping[str, Mapping[str, str]] | None = None
             ) -> Iterator[Scenario]:
    for name, header in (rules or {"hot": {}}).items():
        write_rule(tmp_path / "rules", name, SQL.format(metric=header.get("metric", "m")),
                   **{k: v for k, v in header.items() if k != "metric"})
    settings = rule_settings(tmp_path / "rules", alerting={"receiver": "ops", **alerting})
    clock = FakeClock(T0)
    recorder = Recorder()
    with Store(tmp_path / "m.duckdb", settings=settings) as store, \
            engine_for(store, sender=recorder, clock=clock.monotonic, now=clock.utcnow) as engine:
        yield Scenario(store, engine, recorder)


def ops(*channels: Mapping[str, Any], **receiver: Any) -> list[dict[str, Any]]:
    return [{"name": "ops", "channels": list(channels or [HOOK]), **receiver}]


TIMING = {"group_by": ["alertname"], "group_wait": "30s", "group_interval": "1m", "repeat_interval": "5m"}


def test_group_wait_collects_the_first_alerts_of_a_group_into_one_notification(tmp_path: Path) -> None:
    # configuration#route, group_wait: "How long to initially wait to send a notification for a group of alerts."
    with scenario(tmp_path, {**TIMING, "receivers": ops()}) as s:
        assert s.at(0, a=90) == []
        assert s.at(10, b=90) == []
        assert s.at(20) == []
        assert s.at(30) == [(30, "webhook", "firing", (("a", "firing"), ("b", "firing")))]


def test_group_interval_batches_changes_to_a_notified_group_on_its_ticks(tmp_path: Path) -> None:
    # configuration#route, group_interval: "How long to wait before sending a notification about new alerts that
    # are added to a group of alerts for which an initial notification has already been sent."
    with scenario(tmp_path, {**TIMING, "receivers": ops()}) as s:
        s.at(0, a=90)
        assert s.run(10, 30) == [(30, "webhook", "firing", (("a", "firing"),))]
        assert s.at(40, b=90) == []  # new in the group: waits for the tick at 90 s
        assert s.at(60, c=90) == []
        assert s.run(70, 80) == []
        assert s.at(90) == [(90, "webhook", "firing", (("a", "firing"), ("b", "firing"), ("c", "firing")))]
        assert s.run(100, 200) == []  # nothing changed: the ticks at 150 s and later send nothing


def test_repeat_interval_resends_an_unchanged_group_at_the_first_tick_after_it(tmp_path: Path) -> None:
    # configuration#route, repeat_interval: "How long to wait before sending a notification again if it has
    # already been sent successfully for an alert." Alertmanager checks it on the group's ticks.
    with scenario(tmp_path, {**TIMING, "receivers": ops()}) as s:
        s.at(0, a=90)
        firing = ("webhook", "firing", (("a", "firing"),))
        assert [x[1:] for x in s.run(10, 30)] == [firing]
        assert s.run(40, 330) == []  # 30 s + 5 min = 330 s: not strictly before, so not yet
        assert s.run(340, 390) == [(390, *firing)]  # the next tick
        assert s.run(400, 690) == []
        assert s.run(700, 750) == [(750, *firing)]


def test_send_resolved_true_notifies_resolutions_on_the_next_tick(tmp_path: Path) -> None:
    # configuration#webhook_config, send_resolved: "Whether to notify about resolved alerts." (default true)
    with scenario(tmp_path, {**TIMING, "receivers": ops()}) as s:
        s.at(0, a=90, b=90)
        s.run(10, 30)
        assert s.at(40, a=10) == []
        assert s.at(90) == [(90, "webhook", "firing", (("a", "resolved"), ("b", "firing")))]
        assert s.at(100, b=10) == []
        assert s.run(110, 150) == [(150, "webhook", "resolved", (("b", "resolved"),))]
        assert s.run(160, 400) == []  # resolved alerts left the group with that flush


def test_send_resolved_false_sends_no_partial_nor_final_resolution_and_notifies_a_new_firing(tmp_path: Path) -> None:
    # configuration#email_config, send_resolved (default false for email): a partial resolution is no change to
    # notify (notification log, DedupStage); the final one clears the log without a message.
    mail = {"type": "email", "host": "127.0.0.1", "from": "mk@example.org", "to": ["ops@example.org"]}
    with scenario(tmp_path, {**TIMING, "receivers": ops(mail)}) as s:
        s.at(0, a=90, b=90)
        assert s.run(10, 30) == [(30, "email", "firing", (("a", "firing"), ("b", "firing")))]
        s.at(40, a=10)
        assert s.run(50, 200) == []  # a resolved, b still firing: nothing to tell without send_resolved
        s.at(210, b=10)
        assert s.run(220, 330) == []  # all resolved: nothing sent
        s.at(340, a=90)
        # the emptied group was dropped: a new one, notified group_wait after its first alert
        assert s.run(350, 400) == [(370, "email", "firing", (("a", "firing"),))]


def test_send_resolved_defaults_per_channel_webhook_true_email_false(tmp_path: Path) -> None:
    # configuration#webhook_config (send_resolved default true), #email_config (default false): each channel is
    # an integration with its own notification log.
    mail = {"type": "email", "host": "127.0.0.1", "from": "mk@example.org", "to": ["ops@example.org"]}
    with scenario(tmp_path, {**TIMING, "receivers": ops(HOOK, mail)}) as s:
        s.at(0, a=90)
        assert sorted(s.run(10, 30)) == [(30, "email", "firing", (("a", "firing"),)),
                                         (30, "webhook", "firing", (("a", "firing"),))]
        s.at(40, a=10)
        assert s.run(50, 150) == [(90, "webhook", "resolved", (("a", "resolved"),))]
    config = s.engine.alerting.receivers["ops"]
    assert [c.send_resolved for c in config.channels] == [True, False]


def test_inhibition_mutes_targets_with_equal_labels_while_the_source_fires(tmp_path: Path) -> None:
    # configuration#inhibit_rule: "An inhibition rule mutes an alert (target) matching a set of matchers when an
    # alert (source) exists that matches another set of matchers. Both target and source alerts must have the
    # same label values for the label names in the equal list."
    rules = {"crit": {"metric": "c", "severity": "critical"}, "warn": {"metric": "w", "severity": "warning"}}
    alerting = {**TIMING, "group_by": ["alertname", "key"], "receivers": ops(), "inhibit_rules": [
        {"source_match": {"severity": "critical"}, "target_match": {"severity": "warning"}, "equal": ["key"]}]}
    with scenario(tmp_path, alerting, rules) as s:
        s.at(0, "c", a=90)
        s.at(0, "w", a=90, b=90)
        sent = s.run(10, 30)
        assert sorted(x[3] for x in sent) == [(("a", "firing"),), (("b", "firing"),)]  # crit a, warn b: not warn a
        s.at(40, "c", a=10)  # the source resolves: warn a is no longer muted
        assert sorted(x[3] for x in s.run(50, 90)) == [(("a", "firing"),), (("a", "resolved"),)]


def test_inhibition_ignores_sources_that_match_both_sides_like_the_target(tmp_path: Path) -> None:
    # configuration#inhibit_rule: "an alert that matches both the target and the source side of a rule cannot
    # be inhibited by alerts for which the same is true (including itself)."
    rules = {"crit": {"metric": "c", "severity": "critical"}, "warn": {"metric": "w", "severity": "warning"}}
    alerting = {**TIMING, "group_by": ["alertname", "key"], "receivers": ops(), "inhibit_rules": [
        {"source_match": {"severity": "critical"}, "target_match_re": {"severity": "critical|warning"},
         "equal": ["host"]}]}
    with scenario(tmp_path, alerting, rules) as s:
        s.at(0, "c", a=90, b=90)  # two critical alerts on one host: each matches both sides
        s.at(0, "w", a=90)  # a warning on that host: muted by them
        sent = s.run(10, 30)
        assert sorted(x[3] for x in sent) == [(("a", "firing"),), (("b", "firing"),)]
        alerts = s.store.query("SELECT rule, labels['key'], inhibited FROM alerts ORDER BY rule, 2")
        assert alerts == [("crit", "a", False), ("crit", "b", False), ("warn", "a", True)]


def test_an_inhibition_ending_does_not_resend_what_was_notified_before_repeat_interval(tmp_path: Path) -> None:
    # alertmanager#inhibition with the notification log (notify DedupStage): a muted alert is only left out of
    # the flushes; once unmuted it is a change only if it was not notified already.
    rules = {"crit": {"metric": "c", "severity": "critical"}, "warn": {"metric": "w", "severity": "warning"}}
    alerting = {**TIMING, "receivers": ops(), "group_by": ["alertname"], "inhibit_rules": [
        {"source_match": {"severity": "critical"}, "target_match": {"severity": "warning"}}]}
    with scenario(tmp_path, alerting, rules) as s:
        s.at(0, "w", a=90)
        assert [x[3] for x in s.run(10, 30)] == [(("a", "firing"),)]  # warn a notified
        s.at(40, "c", a=90)  # now the source fires: warn a muted
        assert [x[3] for x in s.run(50, 70)] == [(("a", "firing"),)]  # crit a's own group, at its group_wait
        s.at(100, "c", a=10)  # the source resolves: warn a unmuted, already notified
        sent = s.run(110, 320)
        assert [x for x in sent if x[3] == (("a", "firing"),)] == []  # warn a: not again before repeat_interval
        assert s.store.query("SELECT event FROM alert_events WHERE rule = 'warn' AND event LIKE '%inhibited' "
                             "ORDER BY time") == [("inhibited",), ("uninhibited",)]
        # crit a's resolution went out in its own group at 150 s; warn a repeats 5 min after 30 s, at 390 s
        repeated = [x[0] for x in s.run(330, 400) if x[3] == (("a", "firing"),)]
        assert repeated == [390]


def test_a_silence_expiring_does_not_resend_what_was_notified_before_repeat_interval(tmp_path: Path) -> None:
    # alertmanager#silences and the notification log: a silence only mutes; the log still knows what was sent.
    with scenario(tmp_path, {**TIMING, "repeat_interval": "10m", "receivers": ops()}) as s:
        s.at(0, a=90)
        assert [x[3] for x in s.run(10, 30)] == [(("a", "firing"),)]
        s.silence("key=a", 40, 120)  # until 160 s
        assert s.run(40, 600) == []  # silenced, then unsilenced at 160 s: known to the log, no resend
        # repeat_interval from the notification at 30 s: the first tick strictly after 630 s
        assert s.run(610, 700) == [(690, "webhook", "firing", (("a", "firing"),))]


def test_an_alert_silenced_before_its_first_notification_is_notified_once_the_silence_expires(tmp_path: Path) -> None:
    # alertmanager#silences: "Alerts that match all the matchers of an active silence will not generate any
    # notifications." When it expires the alert is new to the log: the next tick notifies it.
    with scenario(tmp_path, {**TIMING, "receivers": ops()}) as s:
        sid = s.silence("key=a", 0, 3600)
        s.at(0, a=90)
        assert s.run(10, 100) == []
        s.store.submit(lambda con: expire_silence(con, sid, t(105))).result()
        assert s.run(110, 150) == [(150, "webhook", "firing", (("a", "firing"),))]


def test_a_partial_silence_of_a_group_sends_only_the_unmuted_alerts_and_no_extra_notification(tmp_path: Path) -> None:
    # alertmanager#silences with the notification log: muting one alert of a notified group is no change.
    with scenario(tmp_path, {**TIMING, "receivers": ops()}) as s:
        s.at(0, a=90, b=90)
        assert [x[3] for x in s.run(10, 30)] == [(("a", "firing"), ("b", "firing"))]
        s.silence("key=a", 40, 100)
        assert s.run(40, 320) == []


# -- the webhook body, checked by a receiver written for Alertmanager ------------------------------

V4_KEYS = {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
           "commonAnnotations", "externalURL", "alerts"}
ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}


def alertmanager_v4_problems(body: Any) -> list[str]:
    """Check a body against Alertmanager's webhook_config payload (version 4); return what is wrong."""
    def strings(value: Any) -> bool:
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())

    def rfc3339(value: Any) -> bool:
        try:
            return isinstance(value, str) and value.endswith("Z") and datetime.fromisoformat(value) is not None
        except ValueError:
            return False

    problems = []
    if not isinstance(body, dict) or not V4_KEYS <= set(body):
        return [f"top level keys: {sorted(body) if isinstance(body, dict) else body!r}"]
    if body["version"] != "4" or body["status"] not in ("firing", "resolved"):
        problems.append(f"version {body['version']!r}, status {body['status']!r}")
    if not isinstance(body["groupKey"], str) or not isinstance(body["truncatedAlerts"], int):
        problems.append("groupKey must be a string, truncatedAlerts an int")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        if not strings(body[key]):
            problems.append(f"{key} must map strings to strings")
    if not isinstance(body["externalURL"], str) or not isinstance(body["receiver"], str):
        problems.append("externalURL and receiver must be strings")
    for alert in body["alerts"]:
        if not ALERT_KEYS <= set(alert) or alert["status"] not in ("firing", "resolved"):
            problems.append(f"alert keys {sorted(alert)}")
            continue
        if not strings(alert["labels"]) or not strings(alert["annotations"]) or "alertname" not in alert["labels"]:
            problems.append("alert labels and annotations must map strings to strings, with alertname")
        if not rfc3339(alert["startsAt"]) or not rfc3339(alert["endsAt"]):
            problems.append(f"times {alert['startsAt']!r} {alert['endsAt']!r}")
        if (alert["status"] == "firing") != (alert["endsAt"] == "0001-01-01T00:00:00Z"):
            problems.append("endsAt is the zero time exactly while firing")
        if not isinstance(alert["generatorURL"], str) or len(alert["fingerprint"]) != 16:
            problems.append("generatorURL a string, fingerprint 16 hex digits")
        int(alert["fingerprint"], 16)
    if body["status"] != ("firing" if any(a["status"] == "firing" for a in body["alerts"]) else "resolved"):
        problems.append("status is firing while any alert fires")
    return problems


def test_a_receiver_written_for_alertmanager_takes_the_webhook_unchanged(tmp_path: Path) -> None:
    # configuration#webhook_config: the JSON payload of version 4.
    import json

    from receivers import receiver
    from rules_helpers import webhook_alerting

    sql = """SELECT host, labels['key'] AS key, last / 0 AS value
FROM gauge_window('trigger', eval_time() - INTERVAL 1 MINUTE, eval_time()) WHERE last > 50"""
    write_rule(tmp_path / "rules", "hot", sql, summary="{{ $labels.key }} at {{ $value }}",
               description="over 50", **{"annotations.runbook_url": "https://wiki.example.org/hot/{{ key }}"})
    with receiver() as hook:
        settings = rule_settings(tmp_path / "rules", alerting=webhook_alerting(hook.url, group_by=["alertname", "x"]))
        with Store(tmp_path / "m.duckdb", settings=settings) as store, engine_for(store) as engine:
            store.write([trigger(t(0), 80), trigger(t(60), 10)])
            store.flush()
            engine.run(t(0))
            hook.wait_for(1)
            assert engine.dispatcher.wait_idle(5)
            engine.run(t(60))
            firing, resolved = hook.wait_for(2)
    for body in (firing, resolved):
        assert alertmanager_v4_problems(body) == []
        json.dumps(body, allow_nan=False)  # strict JSON: +Inf travels as text
    [alert] = firing["alerts"]
    assert alert["annotations"] == {"summary": "a at +Inf", "description": "over 50",
                                    "runbook_url": "https://wiki.example.org/hot/a"}
    assert alert["value"] == "+Inf" and firing["groupLabels"] == {"alertname": "hot"}
    assert firing["groupKey"] == '{}:{alertname="hot"}'  # Alertmanager's: route matchers, then group labels
    assert firing["commonAnnotations"] == alert["annotations"]
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] == "2024-05-01T10:01:00Z"


def test_emails_carry_every_annotation(tmp_path: Path) -> None:
    from monitorkit.rules.groups import AlertView
    from monitorkit.rules.notify import email_message
    from monitorkit.rules.routing import alerting_config

    mail = {"type": "email", "host": "127.0.0.1", "from": "mk@example.org", "to": ["ops@example.org"]}
    [channel] = alerting_config({"receivers": ops(mail), "receiver": "ops"}).receivers["ops"].channels
    alert = AlertView(1, "hot", "0" * 16, {"alertname": "hot", "host": "web1"}, "firing", 95.0, "web1 is hot",
                      "too hot", T0, None, annotations={"summary": "web1 is hot", "description": "too hot",
                                                        "runbook_url": "https://wiki/hot"})
    note = Notification("k", "ops", {"alertname": "hot"}, (alert,), T0, {"0" * 16: "firing"}, 0)
    body = email_message(note, channel).get_content()
    assert "FIRING #1 web1 is hot" in body and "    too hot" in body and "    runbook_url: https://wiki/hot" in body
