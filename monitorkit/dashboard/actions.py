"""Acknowledge and silence alerts from the dashboard, through monitorkit.rules' own actions.

The rule engine keeps alert state, so the dashboard never writes the ``alerts`` tables itself:
it calls ``monitorkit.rules.actions`` (which goes through the owner's control endpoint when
one runs). ``AlertActions`` is the small interface the alerts panel needs; tests substitute it.
Who acts is the name typed in ``NameInput`` (one login token is shared, so the account says
nothing); each browser remembers it in its ``localStorage``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, unquote

import param
from panel.reactive import ReactiveHTML

from monitorkit.dashboard.errors import AlertActionError
from monitorkit.dashboard.records import AlertRow
from monitorkit.errors import MonitorkitError


class AlertActions(Protocol):
    """What the alerts panel can do to an alert."""

    def acknowledge(self, alert: AlertRow, *, by: str, comment: str) -> None:
        """Record that ``by`` is handling ``alert``."""
        ...

    def silence(self, alert: AlertRow, *, duration: timedelta, by: str, comment: str) -> int:
        """Silence alerts with ``alert``'s labels for ``duration``; return the silence id."""
        ...


NAME_MAX = 64
NAME_KEY = "monitorkit.name"  # the localStorage key a browser keeps its user's name under


def check_actor(name: str) -> str:
    """Return ``name`` stripped if it can be recorded as who acted, else raise AlertActionError."""
    name = name.strip()
    if not name:
        raise AlertActionError("type your name in 'Your name' first: it is recorded with the acknowledgement or "
                               "silence (this browser remembers it)")
    if len(name) > NAME_MAX or not name.isprintable():
        raise AlertActionError(f"a name is 1-{NAME_MAX} printable characters, got {len(name)}")
    return name


class NameInput(ReactiveHTML):
    """The 'Your name' box: who acknowledges or silences, kept in the browser's localStorage between visits.

    ``value`` is the name. It travels percent-encoded (``encoded``): Panel strips what looks like a tag
    from text it sends to the page, so "Ada <L>" would come back as "Ada ".
    """

    encoded = param.String(default="", doc="The name, percent-encoded (encodeURIComponent).")

    # The name never goes into the template either (Panel would re-render the markup with it); the
    # scripts move it between the box, ``data`` and localStorage as text.
    _template = (
        '<label class="mk-who">Your name'
        f'<input id="who" class="mk-who-input" maxlength="{NAME_MAX}" onchange="${{script(\'typed\')}}" '
        'placeholder="recorded with the action" autocomplete="name"></input></label>'
    )
    _scripts: ClassVar[dict[str, str | list[str]]] = {
        "render": f"""
        let saved = null
        try {{ saved = window.localStorage.getItem('{NAME_KEY}') }} catch (e) {{}}  // storage may be disabled
        if (saved && !data.encoded) {{ data.encoded = encodeURIComponent(saved) }}
        self.encoded()
        """,
        "typed": "data.encoded = encodeURIComponent(who.value)",
        "encoded": f"""
        let name = ''
        try {{ name = decodeURIComponent(data.encoded) }} catch (e) {{ return }}
        if (who.value !== name) {{ who.value = name }}
        try {{ if (name) window.localStorage.setItem('{NAME_KEY}', name) }} catch (e) {{}}
        """,
    }
    _stylesheets: ClassVar[list[str]] = ["""
    .mk-who { display: flex; flex-direction: column; font-size: 13px; gap: 4px; }
    .mk-who-input { font: inherit; padding: 5px 8px; border: 1px solid #d0d5dd; border-radius: 4px; width: 160px; }
    """]

    def __init__(self, value: str = "", **params: Any) -> None:
        super().__init__(encoded=quote(value, safe=""), **params)

    @property
    def value(self) -> str:
        """Return the name typed (or remembered by this browser)."""
        return unquote(self.encoded)

    @value.setter
    def value(self, name: str) -> None:
        self.encoded = quote(name, safe="")


def silence_matchers(alert: AlertRow) -> list[str]:
    """Return matchers that select exactly ``alert``'s label set (``alertname`` included)."""
    labels = {"alertname": alert.rule, **dict(alert.labels)}
    return [f'{k}="{v}"' for k, v in sorted(labels.items()) if '"' not in v]


class RulesActions:
    """Alert actions on database ``db`` through ``monitorkit.rules.actions`` (the owner's control routes)."""

    def __init__(self, db: str | Path, settings: Any = None) -> None:
        self.db = Path(db)
        self.settings = settings

    def acknowledge(self, alert: AlertRow, *, by: str, comment: str) -> None:
        """Acknowledge ``alert`` as ``by``."""
        from monitorkit.rules.actions import ack_alert

        try:
            ack_alert(self.db, alert.id, by=by, comment=comment, settings=self.settings)
        except MonitorkitError as exc:
            raise AlertActionError(f"could not acknowledge alert {alert.id}: {exc}") from exc

    def silence(self, alert: AlertRow, *, duration: timedelta, by: str, comment: str) -> int:
        """Silence ``alert``'s label set for ``duration``; return the silence id."""
        from monitorkit.rules.actions import add_silence

        try:
            answer = add_silence(self.db, silence_matchers(alert), duration=duration, by=by, comment=comment,
                                 settings=self.settings)
        except MonitorkitError as exc:
            raise AlertActionError(f"could not silence alert {alert.id}: {exc}") from exc
        return int(answer.get("id", 0))
