"""The ``[alerting]`` settings: routing tree, receivers and inhibit rules (Alertmanager's model).

```toml
[alerting]
receiver = "ops"                 # the root route's receiver (default: "log")
group_by = ["alertname"]
group_wait = "250ms"             # default: batches alerts of a few commits, keeps the webhook under a second
group_interval = "1m"
repeat_interval = "4h"

[[alerting.routes]]
match = { severity = "critical" }
match_re = { host = "web.*" }
receiver = "pager"
continue = false

[[alerting.receivers]]
name = "pager"
send_resolved = true             # every channel's; a channel may set its own (defaults as Alertmanager's)
channels = [{ type = "webhook", url = "http://127.0.0.1:9000/hook", format = "slack" }]

[[alerting.inhibit_rules]]
source_match = { severity = "critical" }
target_match = { severity = "warning" }
equal = ["host"]
```
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from monitorkit.config import Settings, parse_duration
from monitorkit.errors import ConfigError
from monitorkit.rules.errors import AlertingConfigError
from monitorkit.rules.silences import Matcher, matchers_from_config, matches_all

CHANNEL_TYPES = ("log", "webhook", "email")
ROUTE_KEYS = {"match", "match_re", "matchers", "receiver", "group_by", "group_wait", "group_interval",
              "repeat_interval", "continue", "routes"}
MAX_ATTEMPTS = 100
# send_resolved when neither the channel nor its receiver says: Alertmanager's defaults
# (webhook_config true, email_config and slack_config false); the log channel logs both.
SEND_RESOLVED = {"log": True, "webhook": True, "slack": False, "email": False}
# group_wait is short: a sample reaches the webhook within a second (benchmarks/alert_bench.py), and
# alerts of the same group that a few commits bring in a row still go out together.
DEFAULT_TIMING = {"group_wait": "250ms", "group_interval": "1m", "repeat_interval": "4h"}


@dataclass(frozen=True)
class Route:
    """A node of the routing tree; ``path`` ("0", "0.1") identifies it in group keys."""

    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    group_wait: timedelta = timedelta(milliseconds=250)
    group_interval: timedelta = timedelta(minutes=1)
    repeat_interval: timedelta = timedelta(hours=4)
    continue_: bool = False
    routes: tuple[Route, ...] = ()
    path: str = "0"
    matcher_path: str = "{}"  # Alertmanager's route key: each level's matchers, root first

    @property
    def am_group_key(self) -> str:
        """Return the prefix of Alertmanager's groupKey for this route (``{}/{severity="critical"}``)."""
        return self.matcher_path

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """Return the labels this route groups ``labels`` by (``...`` groups by all of them)."""
        if "..." in self.group_by:
            return dict(sorted(labels.items()))
        return {k: labels.get(k, "") for k in self.group_by}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """Return the aggregation group key of an alert with ``labels`` on this route."""
        return f"{self.path}/{self.receiver}:{json.dumps(self.group_labels(labels), sort_keys=True)}"


@dataclass(frozen=True)
class Channel:
    """One way a receiver delivers: ``type`` is log, webhook or email; ``options`` the rest of its table."""

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    send_resolved: bool = True  # also notify when alerts resolve (the channel's, else its receiver's, else the default)

    @property
    def label(self) -> str:
        """Return a short name for records: ``webhook:http://...`` or ``email:ops@x``."""
        target = self.options.get("url") or self.options.get("to") or ""
        return f"{self.type}:{target}" if target else self.type


@dataclass(frozen=True)
class Receiver:
    """A named set of channels (Alertmanager's integrations), each with its own ``send_resolved``."""

    name: str
    channels: tuple[Channel, ...]

    @property
    def send_resolved(self) -> bool:
        """Tell whether any channel notifies resolutions."""
        return any(c.send_resolved for c in self.channels)


@dataclass(frozen=True)
class InhibitRule:
    """Firing alerts matching ``source`` mute alerts matching ``target`` that share the ``equal`` labels."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class Retry:
    """How a failing delivery is retried: ``attempts`` in all, delays doubling from ``backoff``."""

    attempts: int = 5
    backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=5)
    timeout: timedelta = timedelta(seconds=10)

    def delay(self, attempt: int) -> float:
        """Return seconds to wait before attempt ``attempt + 1`` (attempts count from 1)."""
        return float(min(self.max_backoff.total_seconds(), self.backoff.total_seconds() * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class AlertingConfig:
    """Everything the notification side needs, parsed from ``[alerting]``."""

    root: Route
    receivers: Mapping[str, Receiver]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    retry: Retry = Retry()
    resolved_retention: timedelta = timedelta(hours=24)


def _duration(table: Mapping[str, Any], key: str, default: Any, where: str,
              limit: timedelta = timedelta(days=366)) -> timedelta:
    try:
        value = parse_duration(table.get(key, default))
    except (ConfigError, OverflowError) as exc:
        raise AlertingConfigError(f"{where}.{key}: {exc}") from None
    if value > limit:
        raise AlertingConfigError(f"{where}.{key} is at most {limit.total_seconds():g} s, got {table.get(key)!r}")
    return value


def _route(table: Mapping[str, Any], parent: Route | None, path: str) -> Route:
    where = "alerting" if parent is None else f"alerting.routes[{path}]"
    if parent is not None:
        unknown = set(table) - ROUTE_KEYS
        if unknown:
            raise AlertingConfigError(f"{where} has unknown key(s) {sorted(unknown)}; use {sorted(ROUTE_KEYS)}")
    base = parent or Route(receiver="log")
    group_by = table.get("group_by", list(base.group_by))
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise AlertingConfigError(f"{where}.group_by must be a list of label names, got {group_by!r}")
    node = Route(
        receiver=str(table.get("receiver", base.receiver)),
        matchers=tuple(matchers_from_config(table.get("match"), table.get("match_re"), table.get("matchers")))
        if parent is not None else (),
        group_by=tuple(group_by),
        group_wait=_duration(table, "group_wait", base.group_wait if parent else DEFAULT_TIMING["group_wait"], where),
        group_interval=_duration(
            table, "group_interval", base.group_interval if parent else DEFAULT_TIMING["group_interval"], where),
        repeat_interval=_duration(
            table, "repeat_interval", base.repeat_interval if parent else DEFAULT_TIMING["repeat_interval"], where),
        continue_=bool(table.get("continue", False)),
        path=path,
        matcher_path="{}" if parent is None else parent.matcher_path + "/{" + ",".join(
            f'{m.label}{m.op}{json.dumps(m.value)}' for m in matchers_from_config(
                table.get("match"), table.get("match_re"), table.get("matchers"))) + "}",
    )
    children = table.get("routes", [])
    if not isinstance(children, list):
        raise AlertingConfigError(f"{where}.routes must be a list of [[...routes]] tables")
    kids = tuple(_route(child, node, f"{path}.{i}") for i, child in enumerate(children))
    return Route(**{**node.__dict__, "routes": kids})


def _receiver(table: Mapping[str, Any]) -> Receiver:
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise AlertingConfigError("every [[alerting.receivers]] needs a name")
    default = table.get("send_resolved")
    if default is not None and not isinstance(default, bool):
        raise AlertingConfigError(f"receiver {name!r}: send_resolved must be true or false, got {default!r}")
    channels = []
    for ch in table.get("channels", []):
        kind = ch.get("type")
        if kind not in CHANNEL_TYPES:
            raise AlertingConfigError(f"receiver {name!r}: channel type must be one of {CHANNEL_TYPES}, got {kind!r}")
        opts = {k: v for k, v in ch.items() if k not in ("type", "send_resolved")}
        if kind == "webhook" and not opts.get("url"):
            raise AlertingConfigError(f"receiver {name!r}: a webhook channel needs url = \"http://...\"")
        if kind == "webhook" and opts.get("format", "json") not in ("json", "slack"):
            raise AlertingConfigError(f"receiver {name!r}: webhook format must be 'json' or 'slack'")
        if kind == "email":
            for key in ("host", "from", "to"):
                if not opts.get(key):
                    raise AlertingConfigError(f"receiver {name!r}: an email channel needs {key!r}")
            if isinstance(opts["to"], str):
                opts["to"] = [opts["to"]]
        own = ch.get("send_resolved", default)
        if own is not None and not isinstance(own, bool):
            raise AlertingConfigError(f"receiver {name!r}: send_resolved must be true or false, got {own!r}")
        style = "slack" if kind == "webhook" and opts.get("format") == "slack" else kind
        channels.append(Channel(kind, opts, SEND_RESOLVED[style] if own is None else own))
    if not channels:
        raise AlertingConfigError(f"receiver {name!r} has no channels; add channels = [{{ type = \"log\" }}]")
    return Receiver(name, tuple(channels))


def _inhibit(table: Mapping[str, Any]) -> InhibitRule:
    source = matchers_from_config(table.get("source_match"), table.get("source_match_re"), table.get("source_matchers"))
    target = matchers_from_config(table.get("target_match"), table.get("target_match_re"), table.get("target_matchers"))
    if not source or not target:
        raise AlertingConfigError("an inhibit rule needs source_match and target_match")
    return InhibitRule(tuple(source), tuple(target), tuple(table.get("equal", [])))


def alerting_config(section: Mapping[str, Any] | None) -> AlertingConfig:
    """Parse the ``[alerting]`` table (None or empty: everything to the built-in ``log`` receiver)."""
    section = dict(section or {})
    root = _route({k: v for k, v in section.items() if k in ROUTE_KEYS and k != "continue"}, None, "0")
    receivers = {"log": Receiver("log", (Channel("log"),))}
    for table in section.get("receivers", []):
        rec = _receiver(table)
        receivers[rec.name] = rec
    _check_receivers(root, receivers)
    attempts = section.get("retry_attempts", 5)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        raise AlertingConfigError(f"alerting.retry_attempts must be at least 1 and at most {MAX_ATTEMPTS}, "
                                  f"got {attempts!r}")
    retry = Retry(
        attempts=attempts,
        backoff=_duration(section, "retry_backoff", "1s", "alerting"),
        max_backoff=_duration(section, "retry_max_backoff", "5m", "alerting"),
        # the total deadline of one delivery: a dispatcher channel waits at most this long
        timeout=_duration(section, "timeout", "10s", "alerting", limit=timedelta(minutes=5)),
    )
    if retry.timeout <= timedelta(0):
        raise AlertingConfigError("alerting.timeout (the deadline of one delivery) must be longer than 0 s")
    return AlertingConfig(
        root, receivers, tuple(_inhibit(t) for t in section.get("inhibit_rules", [])), retry,
        _duration(section, "resolved_retention", "24h", "alerting"),
    )


def from_settings(settings: Settings) -> AlertingConfig:
    """Parse the ``[alerting]`` section of ``settings``."""
    return alerting_config(_section(settings, "alerting"))


def _section(settings: Settings, name: str) -> Mapping[str, Any]:
    try:
        return settings[name]
    except KeyError:
        return {}


def _check_receivers(route: Route, receivers: Mapping[str, Receiver]) -> None:
    if route.receiver not in receivers:
        raise AlertingConfigError(
            f"route {route.path} sends to receiver {route.receiver!r}, which is not defined in [[alerting.receivers]]"
        )
    for child in route.routes:
        _check_receivers(child, receivers)


def match_routes(root: Route, labels: Mapping[str, str]) -> list[Route]:
    """Return the routes an alert with ``labels`` goes to (the deepest matching ones, ``continue`` honoured)."""
    out: list[Route] = []
    for child in root.routes:
        if matches_all(child.matchers, labels):
            out.extend(match_routes(child, labels))
            if not child.continue_:
                break
    return out or [root]


def inhibited(
    labels: Mapping[str, str], fingerprint: str, firing: Sequence[tuple[str, Mapping[str, str]]],
    rules: Sequence[InhibitRule],
) -> bool:
    """Tell whether an alert is muted by a firing alert ``(fingerprint, labels)`` through an inhibit rule.

    As Alertmanager's inhibitor: an alert that matches both the source and the target side of a
    rule is not muted by alerts for which the same is true (itself included), so two such alerts
    never mute each other.
    """
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        both_sides = matches_all(rule.source, labels)
        for fp, source in firing:
            if fp == fingerprint or not matches_all(rule.source, source):
                continue
            if both_sides and matches_all(rule.target, source):
                continue  # Alertmanager's excludeTwoSidedMatch
            if all(source.get(k, "") == labels.get(k, "") for k in rule.equal):
                return True
    return False
