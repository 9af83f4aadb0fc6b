"""The alert state machine, pure: inactive → pending (for ``for``) → firing → resolved; and its records.

``advance(phase, active, now, timing)`` returns the next phase and the states entered, in
order; a rule with ``for: 0s`` enters pending and firing in the same evaluation, so the
recorded history never skips a state. ``Event`` is one line of an alert's history,
``RuleStatus`` how a rule last evaluated and ``PassReport`` what one evaluation pass did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from monitorkit.rules.groups import Notification

State = Literal["inactive", "pending", "firing", "resolved"]
STATES: tuple[State, ...] = ("inactive", "pending", "firing", "resolved")
# Every edge the machine may take; the history of any alert is a walk on these.
EDGES: frozenset[tuple[str, str]] = frozenset(
    {("inactive", "pending"), ("pending", "inactive"), ("pending", "firing"),
     ("firing", "resolved"), ("resolved", "pending")}
)


class Timing(NamedTuple):
    """How long a condition must hold before firing, and keep firing after it stops."""

    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)


class Phase(NamedTuple):
    """Where one alert instance is: its state and the times that decide the next one.

    ``since`` is when the current episode's condition started to hold (pending since, Prometheus's
    ActiveAt); ``last_active`` the last evaluation at which it held; ``quiet_since`` the first
    evaluation at which a firing alert's condition no longer held (Prometheus's KeepFiringSince:
    ``keep_firing_for`` counts from there). Like Prometheus, ``quiet_since`` is not kept across a
    restart.
    """

    state: State = "inactive"
    since: datetime | None = None
    fired_at: datetime | None = None
    last_active: datetime | None = None
    resolved_at: datetime | None = None
    quiet_since: datetime | None = None


def advance(phase: Phase, active: bool, now: datetime, timing: Timing) -> tuple[Phase, list[State]]:
    """Return the phase after one evaluation at ``now`` and the states entered, in order."""
    entered: list[State] = []
    if active:
        if phase.state in ("inactive", "resolved"):
            phase = Phase("pending", since=now, last_active=now)
            entered.append("pending")
        else:
            phase = phase._replace(last_active=now, quiet_since=None)
        if phase.state == "pending" and phase.since is not None and now - phase.since >= timing.for_:
            phase = phase._replace(state="firing", fired_at=now)
            entered.append("firing")
        return phase, entered
    if phase.state == "pending":
        return Phase("inactive"), ["inactive"]
    if phase.state == "firing":
        # As Prometheus: keep firing while less than keep_firing_for has passed since the first
        # evaluation that found the condition gone (with every: 1m and keep_firing_for: 1m, one more).
        quiet = phase.quiet_since or now
        if now - quiet < timing.keep_firing_for:
            return phase._replace(quiet_since=quiet), entered
        return phase._replace(state="resolved", resolved_at=now, quiet_since=None), ["resolved"]
    return phase, entered


def fingerprint(labels: Mapping[str, str]) -> str:
    """Return a stable 16-hex-digit id of a label set (order does not matter)."""
    text = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class Event(NamedTuple):
    """One line of an alert's history (a transition, ack, silence change or notification)."""

    time: datetime
    alert_id: int
    rule: str
    fingerprint: str
    labels: dict[str, str]
    event: str
    state: str | None = None
    value: float | None = None
    actor: str | None = None
    comment: str | None = None


class RuleStatus(NamedTuple):
    """How a rule last went: ok or errored (with the message), when, how long, how many rows.

    ``failures`` counts errors in a row; an errored rule is not run again before ``retry_at``
    (exponential backoff). ``slow`` rules run in the slow lane, off the pass of the others.
    """

    state: str = "ok"
    error: str | None = None
    last_eval: datetime | None = None
    eval_ms: float | None = None
    rows: int | None = None
    failures: int = 0
    retry_at: datetime | None = None
    slow: bool = False


class PassReport(NamedTuple):
    """What one evaluation did."""

    time: datetime
    evaluated: int
    errors: dict[str, str]
    events: list[Event]
    notifications: list[Notification]
    seconds: float
