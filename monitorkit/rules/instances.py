"""Alert instances in memory: advance them with a rule's rows, mute them, retire and forget them.

``AlertBook`` holds every instance of the owner keyed by (rule, fingerprint); each method
adds the events it causes to ``events`` and the instances it touches to ``changed``, which
the engine then writes in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from monitorkit.rules.alerts import Instance
from monitorkit.rules.groups import AlertView
from monitorkit.rules.restore import PROMETHEUS_DEFAULTS, RestoreSettings, restore_phase
from monitorkit.rules.routing import InhibitRule, inhibited
from monitorkit.rules.runner import RuleResult, alert_labels
from monitorkit.rules.silences import Silence, silenced_by
from monitorkit.rules.state import Event, State, Timing, advance, fingerprint
from monitorkit.rules.templates import render

Changed = dict[int, Instance]


class AlertBook:
    """Every alert instance, keyed by (rule, fingerprint): ``book.apply(result, now, events, changed)``."""

    def __init__(self, instances: dict[tuple[str, str], Instance] | None = None,
                 restore: RestoreSettings = PROMETHEUS_DEFAULTS) -> None:
        self.instances: dict[tuple[str, str], Instance] = dict(instances or {})
        self.next_id = max((i.id for i in self.instances.values()), default=0) + 1
        self.restore = restore
        for inst in self.instances.values():  # read back from a previous owner: restored at their first evaluation
            inst.restoring = inst.state in ("pending", "firing")

    def apply(self, res: RuleResult, now: datetime, events: list[Event], changed: Changed) -> None:
        """Advance the instances of an alert rule with the rows it returned at ``now``."""
        rule = res.rule
        timing = Timing(rule.for_, rule.keep_firing_for)
        seen: set[str] = set()
        for row in res.alerts:
            labels = alert_labels(rule, row.labels, {**row.row, "value": row.value})
            fp = fingerprint(labels)
            if fp in seen:
                continue  # two rows with the same labels: the first one counts
            seen.add(fp)
            inst = self.instances.get((rule.name, fp))
            if inst is None:
                inst = Instance(self.next_id, rule.name, fp, labels, rule.kind, labels["severity"])
                self.next_id += 1
                self.instances[(rule.name, fp)] = inst
            context = {**row.row, **labels, "value": row.value}
            inst.value, inst.kind, inst.severity = row.value, rule.kind, labels["severity"]
            inst.annotations = {k: render(t, context, row.labels) for k, t in rule.annotation_templates.items()}
            inst.summary, inst.description = inst.annotations.get("summary", ""), inst.annotations.get("description", "")
            if inst.restoring:
                self._restore(inst, now, rule.for_, events)
            self._step(inst, True, now, timing, events)
            changed[inst.id] = inst
        for (name, fp), inst in self.instances.items():
            if name != rule.name or fp in seen or inst.state in ("inactive", "resolved"):
                continue
            inst.restoring = False  # its condition is gone: the usual path ends it (or keeps it firing)
            if self._step(inst, False, now, timing, events):
                changed[inst.id] = inst

    def _restore(self, inst: Instance, now: datetime, for_: timedelta, events: list[Event]) -> None:
        """Restore the for-state of an instance read back at a start, at its first evaluation since."""
        inst.restoring = False
        inst.phase, entered, note = restore_phase(inst.phase, now, for_, self.restore)
        for state in entered:
            events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, state, state, inst.value,
                                "engine", f"restart: {note}"))
        if note is not None and not entered:
            events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, "restored", inst.state,
                                inst.value, "engine", note))

    @staticmethod
    def _step(inst: Instance, active: bool, now: datetime, timing: Timing, events: list[Event]) -> bool:
        phase, entered = advance(inst.phase, active, now, timing)
        inst.phase = phase
        for state in entered:
            if state == "pending":
                inst.acked_by = inst.acked_at = inst.ack_comment = None  # a new episode starts unacknowledged
            events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, state, state, inst.value))
        if entered or active:
            inst.updated_at = now
        return bool(entered)

    def any_live(self) -> bool:
        """Tell whether any instance is pending, firing or resolved: the ones ``mute`` looks at."""
        return any(i.state != "inactive" for i in self.instances.values())

    def mute(self, silences: Sequence[Silence], inhibit_rules: Sequence[InhibitRule], now: datetime,
             events: list[Event], changed: Changed) -> None:
        """Apply the silences in force and the inhibit rules to every pending or firing instance."""
        firing = [(i.fingerprint, i.labels) for i in self.instances.values() if i.state == "firing"]
        for inst in self.instances.values():
            if inst.state == "inactive":
                continue
            sid = silenced_by(silences, inst.labels, now)
            inh = inst.state == "firing" and inhibited(inst.labels, inst.fingerprint, firing, inhibit_rules)
            if sid != inst.silenced_by:
                event = "silenced" if sid is not None else "unsilenced"
                events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, event, inst.state,
                                    inst.value, None, f"silence {sid or inst.silenced_by}"))
                inst.silenced_by = sid
                changed[inst.id] = inst
            if inh != inst.inhibited:
                events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels,
                                    "inhibited" if inh else "uninhibited", inst.state, inst.value))
                inst.inhibited = inh
                changed[inst.id] = inst

    def collect_garbage(self, now: datetime, retention: timedelta) -> list[int]:
        """Forget instances inactive or resolved for longer than ``retention``; return their ids."""
        limit = now - retention
        gone = [k for k, i in self.instances.items()
                if i.state in ("inactive", "resolved") and i.updated_at is not None and i.updated_at < limit]
        return [self.instances.pop(k).id for k in gone]

    def retire(self, names: set[str], now: datetime) -> tuple[list[Instance], list[Event]]:
        """End the episodes of removed rules ``names``; return their instances and the events."""
        events = []
        for inst in self.instances.values():
            if inst.rule in names and inst.state in ("pending", "firing"):
                state: State = "inactive" if inst.state == "pending" else "resolved"
                inst.phase = inst.phase._replace(state=state, resolved_at=now if state == "resolved" else None)
                inst.updated_at = now
                events.append(Event(now, inst.id, inst.rule, inst.fingerprint, inst.labels, state, state,
                                    inst.value, "engine", "rule removed"))
        return [i for i in self.instances.values() if i.rule in names], events

    def copy_ack(self, stored: Instance) -> None:
        """Take the acknowledgement of ``stored`` (just written) onto the live instance, if there is one."""
        live = self.instances.get((stored.rule, stored.fingerprint))
        if live is not None:
            live.acked_by, live.acked_at, live.ack_comment = stored.acked_by, stored.acked_at, stored.ack_comment

    def views(self) -> list[AlertView]:
        """Return what notification needs of every firing or resolved instance."""
        return [
            AlertView(i.id, i.rule, i.fingerprint, i.labels, i.state, i.value, i.summary, i.description,
                      i.phase.fired_at, i.phase.resolved_at, i.acked_by is not None,
                      i.silenced_by is not None or i.inhibited, i.annotations)
            for i in self.instances.values() if i.state in ("firing", "resolved")
        ]
