"""After a restart, restore an alert's ``for`` clock as Prometheus does (rules/manager.go, RestoreForState).

An instance read back at a start is restored at its rule's first evaluation, when its condition
still holds. Prometheus's flags, with the same names and defaults in ``[rules]``:

- ``for_outage_tolerance`` (``--rules.alert.for-outage-tolerance``, 1 h): after a longer outage
  nothing is restored: the alert starts over, pending from this evaluation.
- ``for_grace_period`` (``--rules.alert.for-grace-period``, 10 min): a rule whose ``for`` is
  shorter is not restored (it starts over and waits its ``for``); otherwise a pending alert
  counts only the time it was pending before the outage, and waits at least the grace period.

A firing alert within the tolerance keeps firing (Prometheus fires it again at the next
evaluation and Alertmanager, which still holds it, notices nothing); after a longer outage it
is resolved and starts over, as Alertmanager resolved it while nothing was sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from monitorkit.rules.state import Phase, State


class RestoreSettings(NamedTuple):
    """Prometheus's ``--rules.alert.for-outage-tolerance`` and ``--rules.alert.for-grace-period``."""

    outage_tolerance: timedelta = timedelta(hours=1)
    grace_period: timedelta = timedelta(minutes=10)


PROMETHEUS_DEFAULTS = RestoreSettings()

def restore_phase(phase: Phase, now: datetime, for_: timedelta,
                  settings: RestoreSettings = PROMETHEUS_DEFAULTS) -> tuple[Phase, list[State], str | None]:
    """Return the phase of an instance read back at a start whose condition holds at ``now``, the states
    entered and a note of what was done (None: nothing to restore)."""
    if phase.state not in ("pending", "firing") or phase.since is None:
        return phase, [], None
    down_at = phase.last_active or phase.since  # its last evaluation before the outage
    outage = now - down_at
    if outage > settings.outage_tolerance:
        note = f"down {outage} > for_outage_tolerance {settings.outage_tolerance}: starts over"
        if phase.state == "firing":
            return phase._replace(state="resolved", resolved_at=now, quiet_since=None), ["resolved"], note
        return phase._replace(since=now), [], note
    if phase.state == "firing":
        return phase, [], None
    if for_ < settings.grace_period:
        return phase._replace(since=now), [], f"for {for_} < for_grace_period {settings.grace_period}: starts over"
    remaining = for_ - (down_at - phase.since)
    if remaining <= timedelta(0):
        return phase, [], None
    if remaining < settings.grace_period:
        since = now + settings.grace_period - for_  # fires one grace period from now
        return phase._replace(since=since), [], f"{remaining} left < for_grace_period: fires at {now + settings.grace_period}"
    return phase._replace(since=phase.since + outage), [], f"pending since {phase.since + outage} (down {outage})"
