"""Notifications to real local receivers: webhook JSON and Slack, SMTP email, receivers that are down or misbehave."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from receivers import BEHAVIOURS, misbehaving, receiver
from rules_helpers import T0, engine_for, rule_settings, trigger, webhook_alerting, write_rule

from monitorkit.owner.sidecar import free_port
from monitorkit.store import Store


def at(seconds: float) -> Any:
    return T0 + timedelta(seconds=seconds)


def test_webhook_receives_alertmanager_json_for_firing_then_resolved(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "hot", summary="{{ key }} is {{ value }}", description="too hot")
    with receiver() as hook:
        settings = rule_settings(tmp_path / "rules", alerting=webhook_alerting(hook.url))
        with Store(tmp_path / "m.duckdb", settings=settings) as store, engine_for(store) as engine:
            store.write([trigger(at(0), 80), trigger(at(70), 10)])
            store.flush()
            engine.run(at(0))
            [firing] = hook.wait_for(1)
            engine.dispatcher.wait_idle(5)
            engine.run(at(70))
            bodies = hook.wait_for(2)
            engine.dispatcher.wait_idle(5)
            store.flush()  # attempts are recorded through the writer
            notes = store.query("SELECT status, attempt, ok, status_code, alerts FROM notifications ORDER BY time")
    assert firing["version"] == "4" and firing["status"] == "firing" and firing["receiver"] == "hook"
    assert firing["groupLabels"] == {"alertname": "hot"}
    assert firing["commonLabels"] == {"alertname": "hot", "host": "h1", "key": "a", "severity": "warning"}
    [alert] = firing["alerts"]
    assert alert["status"] == "firing" and alert["labels"]["key"] == "a" and alert["value"] == 80
    assert alert["annotations"] == {"summary": "a is 80", "description": "too hot"}
    assert alert["startsAt"] == "2024-05-01T10:00:00Z" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert len(alert["fingerprint"]) == 16 and alert["id"] == 1
    resolved = bodies[1]
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2024-05-01T10:01:10Z"
    assert notes == [("firing", 1, True, 200, [1]), ("resolved", 1, True, 200, [1])]


def test_slack_format(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "hot", summary="{{ key }} is {{ value }}")
    with receiver() as hook:
        settings = rule_settings(tmp_path / "rules", alerting=webhook_alerting(hook.url, fmt="slack"))
        with Store(tmp_path / "m.duckdb", settings=settings) as store, engine_for(store) as engine:
            store.write([trigger(at(0), 80, key="a"), trigger(at(0), 90, key="b")])
            store.flush()
            engine.run(at(0))
            [body] = hook.wait_for(1)
    assert body["text"] == "[FIRING:2] alertname=hot"
    assert [a["text"] for a in body["attachments"]] == ["a is 80", "b is 90"]
    assert body["attachments"][0]["color"] == "danger"
    assert {"title": "key", "value": "a", "short": True} in body["attachments"][0]["fields"]


def test_email_reaches_an_smtp_server(tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[tuple[str, list[str], bytes]] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        channel = {"type": "email", "host": "127.0.0.1", "port": controller.port, "from": "mk@example.org",
                   "to": ["ops@example.org"]}
        alerting = {"receiver": "mail", "group_wait": "0s", "receivers": [{"name": "mail", "channels": [channel]}]}
        write_rule(tmp_path / "rules", "hot", summary="{{ key }} is {{ value }}")
        settings = rule_settings(tmp_path / "rules", alerting=alerting)
        with Store(tmp_path / "m.duckdb", settings=settings) as store, engine_for(store) as engine:
            store.write([trigger(at(0), 80)])
            store.flush()
            engine.run(at(0))
            assert engine.dispatcher.wait_idle(10)
            store.flush()
            notes = store.query("SELECT channel, ok, status_code FROM notifications")
    finally:
        controller.stop()
    assert notes == [("email:['ops@example.org']", True, 250)]
    [(sender, rcpts, content)] = inbox.messages
    assert sender == "mk@example.org" and rcpts == ["ops@example.org"]
    msg = message_from_bytes(content)
    assert msg["Subject"] == "[FIRING:1] alertname=hot"
    assert "FIRING #1 a is 80" in msg.get_payload()


def test_a_receiver_that_is_down_is_retried_and_never_delays_evaluation(tmp_path: Path) -> None:
    write_rule(tmp_path / "rules", "hot")
    with receiver(503, hold=True) as down:  # holds every request until released, then refuses it
        alerting = webhook_alerting(down.url, group_by=["key"])
        settings = rule_settings(tmp_path / "rules", alerting=alerting, defaults=True)
        with Store(tmp_path / "m.duckdb", settings=settings) as store, engine_for(store) as engine:
            store.write([trigger(at(0), 80, key="a")])
            store.flush()
            engine.run(at(0))
            assert down.arrived.wait(10)  # the first delivery now hangs in the dispatcher thread
            for i, key in enumerate("bcdef", start=1):  # evaluation goes on meanwhile
                store.write([trigger(at(i), 80, key=key)])
                store.flush()
                report = engine.run(at(i))
                assert [e.event for e in report.events] == ["pending", "firing"]
            assert store.query("SELECT count(*) FROM alerts WHERE state = 'firing'")[0][0] == 6
            assert store.query("SELECT count(*) FROM notifications")[0][0] == 0
            down.release()
            assert engine.dispatcher.wait_idle(30)
            store.flush()
            rows = store.query("SELECT group_key, attempt, ok, status_code, error FROM notifications "
                               "ORDER BY group_key, attempt")
            # attempts are stamped with the wall clock: read the notifier health check live
            live = store.query("SELECT status, reason FROM health_notifiers")
    assert len(rows) == 6 * 3  # six groups, three attempts each
    assert {(attempt, ok, code) for _, attempt, ok, code, _ in rows} == {(1, False, 503), (2, False, 503),
                                                                         (3, False, 503)}
    assert all("HTTP 503" in error for *_, error in rows)
    [(status, reason)] = live
    assert status == "failing" and "HTTP 503" in reason


# What each misbehaving receiver's attempts must say: the exception or the deadline, never silence.
EXPECTED_ERRORS = {
    "truncated": "IncompleteRead", "not_http": "BadStatusLine", "trickle": "deadline", "hang": "deadline",
    "http_500": "HTTP 500", "reset": "Connection",
}


def alert_key(key: str) -> Callable[[dict[str, Any]], bool]:
    """Return a test of a webhook body: is it about the alert with label key=``key``?"""
    return lambda body: bool(body["alerts"][0]["labels"]["key"] == key)


def test_misbehaving_receivers_cost_the_good_ones_nothing_and_every_bad_attempt_is_recorded(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_rule(tmp_path / "rules", "hot")
    keys = ["a", "b", "c"]
    with ExitStack() as stack:
        good = stack.enter_context(receiver())
        bad = {name: stack.enter_context(misbehaving(name)) for name in BEHAVIOURS}
        targets = {"good": good.url, **{name: b.url for name, b in bad.items()}}
        alerting = {
            "receiver": "good", "group_by": ["alertname", "key"], "group_wait": "0s",
            "retry_attempts": 2, "retry_backoff": "0.05s", "timeout": "1s",
            "receivers": [{"name": n, "channels": [{"type": "webhook", "url": u}]} for n, u in targets.items()],
            # every alert goes to every receiver, the built-in log one included
            "routes": [{"receiver": n, "continue": True} for n in [*targets, "log"]],
        }
        settings = rule_settings(tmp_path / "rules", alerting=alerting)
        caplog.set_level(logging.WARNING, logger="monitorkit.alerts")
        with Store(tmp_path / "m.duckdb", settings=settings) as store, engine_for(store) as engine:
            sent: dict[str, float] = {}
            for i, key in enumerate(keys):
                store.write([trigger(at(i), 80, key=key)])
                store.flush()
                sent[key] = time.time()
                engine.run(at(i))
            arrived = {key: good.first(alert_key(key), 10) for key in keys}
            assert engine.dispatcher.wait_idle(30)
            health = {r.component: r for r in engine.health_rows()}
            store.flush()
            rows = store.query("SELECT receiver, ok, error FROM notifications ORDER BY time")
    # the good webhook got each alert within the deadline one bad delivery may take (1 s), not after them
    assert all((arrived[k] or float("inf")) - sent[k] < 1.0 for k in keys), (arrived, sent)
    assert [r.getMessage() for r in caplog.records if r.name == "monitorkit.alerts"] == [
        f"FIRING #{i} alertname=hot, host=h1, key={k}, severity=warning" for i, k in enumerate(keys, start=1)]
    by_receiver: dict[str, list[tuple[bool, str | None]]] = {}
    for name, ok, error in rows:
        by_receiver.setdefault(name, []).append((ok, error))
    assert by_receiver["good"] == [(True, None)] * 3 and by_receiver["log"] == [(True, None)] * 3
    for name, expected in EXPECTED_ERRORS.items():
        attempts = by_receiver[name]
        assert len(attempts) == len(keys) * 2, name  # two attempts per alert, each one a row
        assert all(not ok and error and expected in error for ok, error in attempts), (name, attempts)
        assert health[f"receiver:{name}"].status == "failing" and expected in health[f"receiver:{name}"].reason
    assert health["receiver:good"].status == "ok" and health["receiver:log"].status == "ok"
    assert health["dispatcher"].status == "ok"  # every worker lives and nothing waits past its time
