"""The [alerting] settings: the routing tree, receivers, inhibit rules, retries and their errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from monitorkit.rules.errors import AlertingConfigError
from monitorkit.rules.routing import alerting_config, inhibited, match_routes

TREE: dict[str, Any] = {
    "receiver": "ops",
    "group_by": ["alertname", "host"],
    "group_wait": "10s",
    "routes": [
        {"match": {"severity": "critical"}, "receiver": "pager", "continue": True,
         "routes": [{"match_re": {"host": "db.*"}, "receiver": "dba", "group_wait": "0s"}]},
        {"matchers": ["team=web", "env!=dev"], "receiver": "web"},
        {"match": {"team": "web"}, "receiver": "never"},  # shadowed by the route above (no continue)
    ],
    "receivers": [
        {"name": n, "channels": [{"type": "webhook", "url": f"http://127.0.0.1:9/{n}"}]}
        for n in ("ops", "pager", "dba", "web", "never")
    ],
    "inhibit_rules": [{"source_match": {"severity": "critical"}, "target_match_re": {"severity": "warning|info"},
                       "equal": ["host"]}],
    "retry_attempts": 4, "retry_backoff": "2s", "retry_max_backoff": "5s",
}


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "critical", "host": "db1"}, ["dba"]),  # the deepest match; continue finds nothing else
        ({"severity": "critical", "host": "web1", "team": "web"}, ["pager", "web"]),  # continue
        ({"severity": "warning", "team": "web"}, ["web"]),
        ({"severity": "warning", "team": "web", "env": "dev"}, ["never"]),
        ({"severity": "warning"}, ["ops"]),  # nothing matches: the root
    ],
)
def test_routing_tree(labels: dict[str, str], receivers: list[str]) -> None:
    config = alerting_config(TREE)
    routes = match_routes(config.root, labels)
    assert [r.receiver for r in routes] == receivers
    for route in routes:
        assert route.group_by == ("alertname", "host")  # inherited from the root


def test_route_settings_are_inherited_and_overridden() -> None:
    config = alerting_config(TREE)
    [dba] = match_routes(config.root, {"severity": "critical", "host": "db1"})[:1]
    assert dba.group_wait == timedelta(0) and config.root.group_wait == timedelta(seconds=10)
    assert dba.group_key({"alertname": "x", "host": "db1", "other": "y"}).endswith('{"alertname": "x", "host": "db1"}')
    assert [config.retry.delay(a) for a in (1, 2, 3, 4)] == [2.0, 4.0, 5.0, 5.0]


def test_inhibition_needs_a_firing_source_with_equal_labels() -> None:
    rules = alerting_config(TREE).inhibit_rules
    crit = ("fp1", {"severity": "critical", "host": "h1"})
    assert inhibited({"severity": "warning", "host": "h1"}, "fp2", [crit], rules)
    assert not inhibited({"severity": "warning", "host": "h2"}, "fp2", [crit], rules)
    assert not inhibited({"severity": "critical", "host": "h1"}, "fp3", [crit], rules)
    assert not inhibited({"severity": "critical", "host": "h1"}, "fp1", [crit], rules)  # never itself


def test_no_alerting_section_sends_to_the_log() -> None:
    config = alerting_config(None)
    assert config.root.receiver == "log" and [c.type for c in config.receivers["log"].channels] == ["log"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"receiver": "nobody"}, "not defined"),
        ({"receivers": [{"name": "x", "channels": [{"type": "sms"}]}]}, "channel type"),
        ({"receivers": [{"name": "x", "channels": [{"type": "webhook"}]}]}, "needs url"),
        ({"receivers": [{"name": "x", "channels": [{"type": "webhook", "url": "u", "format": "xml"}]}]}, "format"),
        ({"receivers": [{"name": "x", "channels": [{"type": "email", "host": "h", "to": "a@b"}]}]}, "'from'"),
        ({"receivers": [{"name": "x"}]}, "no channels"),
        ({"routes": [{"recever": "log"}]}, "unknown key"),
        ({"group_wait": "soon"}, "invalid duration"),
        ({"routes": [{"match_re": {"host": "("}}]}, "regular expression"),
        ({"inhibit_rules": [{"source_match": {"a": "b"}}]}, "target_match"),
        ({"retry_attempts": 0}, "at least 1"),
        ({"retry_attempts": "1e308"}, "at most 100"),
        ({"retry_attempts": 10**12}, "at most 100"),
        ({"timeout": "0s"}, "longer than 0 s"),
        ({"timeout": "1h"}, "at most 300 s"),
        ({"group_wait": "99999999999d"}, "group_wait"),
    ],
)
def test_bad_alerting_sections_are_refused(section: dict[str, Any], message: str) -> None:
    with pytest.raises(AlertingConfigError, match=message):
        alerting_config(section)
