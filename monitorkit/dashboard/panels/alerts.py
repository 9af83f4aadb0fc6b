"""The alerts panel: firing and recent alerts, with Acknowledge and Silence."""

from __future__ import annotations

import html
from datetime import timedelta
from functools import partial
from typing import Any

import panel as pn

from monitorkit.dashboard.actions import NameInput, check_actor
from monitorkit.dashboard.errors import AlertActionError
from monitorkit.dashboard.history import TimeRange
from monitorkit.dashboard.layouts import PanelSpec
from monitorkit.dashboard.panels.base import HEADER, PanelContext, PanelView, clock_text
from monitorkit.dashboard.records import AlertRow, Delta
from monitorkit.dashboard.style import html_pane
from monitorkit.rules.report import outcome

SEVERITY_COLORS = {"critical": "#b42318", "warning": "#b54708", "info": "#175cd3"}
SILENCE_CHOICES = {"1 h": 1, "4 h": 4, "24 h": 24}


def label_text(labels: dict[str, str] | Any) -> str:
    """Return an alert's labels (but its name and severity) as escaped ``k=v, ...`` HTML text."""
    shown = {k: v for k, v in dict(labels).items() if k not in ("alertname", "severity")}
    return ", ".join(f"{html.escape(k)}={html.escape(str(v))}" for k, v in sorted(shown.items()))


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


class AlertsPanel(PanelView):
    """Firing and pending alerts with Acknowledge and Silence buttons, then the last day's resolved ones."""

    def __init__(self, spec: PanelSpec, ctx: PanelContext) -> None:
        self.duration = pn.widgets.Select(label="Silence for", options=list(SILENCE_CHOICES), value="1 h", width=90)
        self.comment = pn.widgets.TextInput(label="Comment", placeholder="why (kept with the ack or silence)", width=260)
        self.who = NameInput(value=ctx.user(), margin=(5, 10))
        self.message = html_pane("", css_classes=["mk-message"], sizing_mode="stretch_width")
        self.active = pn.Column(sizing_mode="stretch_width")
        self.recent = html_pane("", sizing_mode="stretch_width")
        self._signature: tuple[Any, ...] | None = None
        body = pn.Column(pn.Row(self.who, self.duration, self.comment), self.message, self.active, self.recent,
                         sizing_mode="stretch_width", scroll=True)
        super().__init__(spec, ctx, (), body)
        self.render()

    def set_height(self, height: int) -> None:
        self.body.height = max(120, height - HEADER)

    def apply(self, delta: Delta, rng: TimeRange) -> int:
        if delta.alerts:
            self.render()
        return 0

    def clear(self) -> None:
        """Show the newly selected host's alerts."""
        self._signature = None
        self.render()

    def render(self) -> None:
        """Rebuild the lists when an alert's state, acknowledgement or silence changed (the selected host's only)."""
        host = self.ctx.host
        everything = list(self.ctx.feed.alerts.values())
        # An alert about another host is not this one's; one without a host label (the rule engine, an app) is everyone's.
        mine = [a for a in everything if host is None or dict(a.labels).get("host", host) == host]
        alerts = sorted(mine, key=lambda a: (a.state != "firing", -(a.since_ms or 0)))
        elsewhere = sum(1 for a in everything if a.state in ("firing", "pending")) - sum(
            1 for a in alerts if a.state in ("firing", "pending"))
        signature = (host, elsewhere, *((a.id, a.state, a.acked_by, a.silenced_by) for a in alerts))
        if signature == self._signature:
            return
        self._signature = signature
        active = [a for a in alerts if a.state in ("firing", "pending")]
        self.active.objects = [self._row(a) for a in active] or [
            html_pane("<p class='mk-ok' id='mk-no-alerts'>No alert is firing.</p>", sizing_mode="stretch_width")
        ]
        if elsewhere > 0:
            self.active.objects = [*self.active.objects, html_pane(
                f"<p class='mk-empty' id='mk-alerts-elsewhere'>{elsewhere} more firing or pending on other hosts.</p>",
                sizing_mode="stretch_width")]
        resolved = [a for a in alerts if a.state not in ("firing", "pending")][:50]
        rows = "".join(
            f"<tr><td>{clock_text(a.resolved_ms or a.updated_ms)}</td><td>{html.escape(a.rule)}</td>"
            f"<td>{label_text(a.labels)}</td>"
            f"<td>{html.escape(outcome(a.state))}</td><td>{html.escape(a.acked_by or '')}</td></tr>"
            for a in resolved
        )
        self.recent.object = (
            "<b>Recent (last 24 h)</b><table class='mk-table'><tr><th>ended</th><th>rule</th><th>labels</th>"
            f"<th>state</th><th>acked by</th></tr>{rows or '<tr><td colspan=5>none</td></tr>'}</table>"
        )

    def _row(self, alert: AlertRow) -> Any:
        color = SEVERITY_COLORS.get(alert.severity, "#475467")
        acked = f" · acknowledged by {html.escape(alert.acked_by)}" if alert.acked_by else ""
        silenced = f" · silenced (#{html.escape(str(alert.silenced_by))})" if alert.silenced_by else ""
        text = html_pane(
            f"<div class='mk-alert' data-alert-id='{int(alert.id)}' data-state='{html.escape(alert.state)}'>"
            f"<span class='mk-badge' style='background:{color}'>{html.escape(alert.severity)}</span> "
            f"<b>{html.escape(alert.rule)}</b> <span class='mk-state'>{html.escape(alert.state)}</span>{acked}{silenced}"
            f"<br><small>{label_text(alert.labels)} · since {clock_text(alert.since_ms)} · value {_num(alert.value)}"
            f"</small><br>{html.escape(alert.summary)}</div>",
            sizing_mode="stretch_width",
        )
        ack = pn.widgets.Button(label="Acknowledge", color="primary", width=120, disabled=bool(alert.acked_by) or
                                self.ctx.actions is None, css_classes=["mk-ack"])
        silence = pn.widgets.Button(label="Silence", color="warning", width=90, disabled=bool(alert.silenced_by) or
                                    self.ctx.actions is None, css_classes=["mk-silence"])
        ack.on_click(partial(self._clicked, alert, "ack"))
        silence.on_click(partial(self._clicked, alert, "silence"))
        return pn.Row(text, ack, silence, sizing_mode="stretch_width", styles={"border-bottom": "1px solid #eaecf0"})

    def _clicked(self, alert: AlertRow, what: str, event: Any = None) -> None:
        self._act(alert, what)

    def _act(self, alert: AlertRow, what: str) -> None:
        actions = self.ctx.actions
        if actions is None:
            self.message.object = "<span class='mk-error'>This dashboard cannot change alerts (read-only).</span>"
            return
        comment = self.comment.value or "from the dashboard"
        try:
            by = check_actor(self.who.value)
            if what == "ack":
                actions.acknowledge(alert, by=by, comment=comment)
                done = f"Alert {alert.id} ({html.escape(alert.rule)}) acknowledged by {html.escape(by)}."
            else:
                hours = SILENCE_CHOICES[self.duration.value]
                sid = actions.silence(alert, duration=timedelta(hours=hours), by=by, comment=comment)
                done = f"Silence #{sid} created for {hours} h on {html.escape(alert.rule)}."
        except AlertActionError as exc:
            self.message.object = f"<span class='mk-error'>{html.escape(str(exc))}</span>"
            return
        self.message.object = f"<span class='mk-done'>{done}</span>"
