"""What other processes send the rules service is range-checked: a TTL is a duration, an id a whole number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rules_helpers import engine_for, rule_settings, write_rule

from monitorkit.owner.api import Request, json_route
from monitorkit.rules.errors import InvalidRequestError, RuleFileError
from monitorkit.rules.health import heartbeat_from_json, make_heartbeat
from monitorkit.rules.loader import parse_rule
from monitorkit.rules.service import routes
from monitorkit.store import Store

Answer = tuple[int, dict[str, Any]]


@pytest.fixture
def post(tmp_path: Path) -> Iterator[Any]:
    """Return ``post(path, payload) -> (status, body)`` through the rules service's real routes."""
    write_rule(tmp_path / "rules", "hot")
    with Store(tmp_path / "m.duckdb", settings=rule_settings(tmp_path / "rules")) as store, \
            engine_for(store) as engine:
        handlers = {path: json_route(fn) for path, fn in routes(engine).items()}

        def call(path: str, payload: dict[str, Any]) -> Answer:
            body = json.dumps(payload).encode()
            answer = handlers[path](Request("POST", path, "application/json", body, {}))
            return answer.status, json.loads(answer.body)

        yield call


@pytest.mark.parametrize(("ttl", "message"), [
    (1e308, "heartbeat ttl is a duration of at most 604800 s (7 days), got 1e+308"),
    (0, "heartbeat ttl must be longer than 0 s, got 0"),
    (-5, "must be longer than 0 s"),
    (True, "is a duration in seconds, got True"),
    ("soon", "must be a duration such as 30, '30s' or '5m'"),
    ("99999999999d", "must be a duration such as"),
])
def test_a_heartbeat_ttl_is_a_duration_and_anything_else_is_a_clear_400(post: Any, ttl: object, message: str) -> None:
    status, body = post("/heartbeat", {"component": "billing", "ttl": ttl})
    assert status == 400 and message in body["error"], body


def test_a_heartbeat_with_a_ttl_in_range_is_stored(post: Any) -> None:
    assert post("/heartbeat", {"component": "billing", "ttl": "30s"}) == (200, {"ok": True})
    assert post("/heartbeat", {"component": "billing", "ttl": 604800}) == (200, {"ok": True})


@pytest.mark.parametrize(("payload", "message"), [
    ({"component": "x" * 201}, "component"),
    ({"component": "b", "reason": "r" * 2001}, "heartbeat reason is 2001 characters long"),
    ({"component": "b", "pid": 2**40}, "heartbeat pid must be between 0 and 2147483647"),
    ({"component": "b", "pid": "12x"}, "heartbeat pid must be a whole number"),
    ({"component": "b", "host": ["h"]}, "heartbeat host must be a string"),
    ({"component": "b", "status": "fine"}, "must be ok, degraded or failing"),
])
def test_other_heartbeat_fields_are_checked(post: Any, payload: dict[str, Any], message: str) -> None:
    status, body = post("/heartbeat", payload)
    assert status == 400 and message in body["error"], body


@pytest.mark.parametrize(("path", "payload", "message"), [
    ("/ack", {"id": 1.5, "by": "ana"}, "alert id must be a whole number, got 1.5"),  # not alert 1
    ("/ack", {"id": 0, "by": "ana"}, "alert id must be between 1 and"),
    ("/ack", {"id": 1, "by": "a" * 201}, "--by is 201 characters long"),
    ("/silence", {"matchers": ["host=a"], "seconds": 1e308, "by": "a", "comment": "c"},
     "a silence is a duration of at most 31622400 s (366 days)"),
    ("/silence", {"matchers": "host=a", "seconds": 60, "by": "a", "comment": "c"}, "matchers must be a list"),
    ("/silence", {"matchers": ["host=a"], "seconds": 60, "by": "a", "comment": "c",
                  "starts_at": "2024-05-01T10:00:00"}, "starts_at needs a time zone"),
    ("/silence", {"matchers": ["host=a"], "seconds": 60, "by": "a", "comment": "c",
                  "starts_at": "3024-05-01T10:00:00+00:00"}, "starts_at must be within 366 days of now"),
    ("/unsilence", {"id": "many"}, "silence id must be a whole number"),
])
def test_acks_and_silences_are_range_checked(post: Any, path: str, payload: dict[str, Any], message: str) -> None:
    status, body = post(path, payload)
    assert status == 400 and message in body["error"], body


def test_heartbeats_built_in_python_are_checked_the_same_way() -> None:
    with pytest.raises(InvalidRequestError, match="at most 604800 s"):
        make_heartbeat("worker", ttl=1e308)
    assert heartbeat_from_json({"component": "w", "ttl": "1m"}).ttl == 60.0


@pytest.mark.parametrize(("header", "message"), [
    ("for: 99999999999d", "for is at most 366 days, got '99999999999d'"),  # past timedelta's range too
    ("every: 400d", "every is at most 366 days"),
    ("timeout: 0s", "timeout must be longer than 0 s"),
    ("timeout: 2h", "timeout is at most 3600 s"),
])
def test_rule_durations_are_range_checked(header: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        parse_rule(f"-- kind: error\n-- {header}\nSELECT 1 AS value", default_name="x")
