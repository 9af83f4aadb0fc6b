"""Notification channels: log, webhook (Alertmanager-style JSON or Slack) and email (SMTP).

Each ``send_*`` delivers one Notification once within a total deadline (``deadline.py``) and
returns a DeliveryResult, whatever the receiver does: every exception becomes a failed
result with its error. Retries and records are the dispatcher's job.
"""

from __future__ import annotations

import http.client
import json
import logging
import smtplib
import time
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from typing import Any, NamedTuple

from monitorkit.rules.deadline import Deadline
from monitorkit.rules.groups import AlertView, Notification
from monitorkit.rules.routing import Channel
from monitorkit.rules.templates import non_finite

log = logging.getLogger("monitorkit.alerts")
ZERO_TIME = "0001-01-01T00:00:00Z"
ANSWER_BYTES = 65536  # of a receiver's answer body: read (to free the connection), never stored


class DeliveryResult(NamedTuple):
    """How one delivery attempt went."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    seconds: float = 0.0


def _iso(t: datetime | None) -> str:
    return t.isoformat().replace("+00:00", "Z") if t else ZERO_TIME


def _common(items: list[Mapping[str, str]]) -> dict[str, str]:
    if not items:
        return {}
    first = dict(items[0])
    return {k: v for k, v in first.items() if all(i.get(k) == v for i in items[1:])}


def _value(value: float | None) -> float | str | None:
    """Return a value for JSON: a number, or Prometheus's text of +Inf, -Inf and NaN (JSON has no such numbers)."""
    if value is None:
        return None
    return non_finite(value) or value


def _alert_json(a: AlertView) -> dict[str, Any]:
    return {
        "status": a.state,
        "labels": dict(a.labels),
        "annotations": a.all_annotations,
        "startsAt": _iso(a.fired_at),
        "endsAt": _iso(a.resolved_at) if a.state == "resolved" else ZERO_TIME,
        "generatorURL": "",
        "fingerprint": a.fingerprint,
        "id": a.id,
        "value": _value(a.value),
    }


def webhook_payload(note: Notification) -> dict[str, Any]:
    """Return the JSON body of a webhook: Alertmanager's webhook format, version 4, plus each alert's id and value."""
    alerts = [_alert_json(a) for a in note.alerts]
    return {
        "version": "4",
        "groupKey": note.am_group_key or note.group_key,
        "truncatedAlerts": 0,
        "status": note.status,
        "receiver": note.receiver,
        "groupLabels": {k: v for k, v in note.group_labels.items() if v},  # a missing label is no group label
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": "",
        "alerts": alerts,
    }


def title(note: Notification) -> str:
    """Return a one-line title: ``[FIRING:2] cpu_saturation host=web1``."""
    firing = sum(1 for a in note.alerts if a.state == "firing")
    count = firing if firing else len(note.alerts)
    labels = " ".join(f"{k}={v}" for k, v in note.group_labels.items() if v)
    return f"[{note.status.upper()}:{count}] {labels}".strip()


def _line(a: AlertView) -> str:
    text = a.summary or ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
    return f"{a.state.upper()} #{a.id} {text}"


def slack_payload(note: Notification) -> dict[str, Any]:
    """Return a Slack incoming-webhook body: a text line and one attachment per alert."""
    colors = {"firing": "danger", "resolved": "good"}
    return {
        "text": title(note),
        "attachments": [
            {
                "color": colors.get(a.state, "warning"),
                "title": f"{a.labels.get('alertname', a.rule)} ({a.state})",
                "text": a.summary or a.description,
                "fields": [{"title": k, "value": v, "short": True} for k, v in sorted(a.labels.items())],
                "footer": f"monitorkit alert #{a.id}",
            }
            for a in note.alerts
        ],
    }


def email_message(note: Notification, channel: Channel) -> EmailMessage:
    """Return the email of ``note`` for an email channel (plain text)."""
    msg = EmailMessage()
    msg["Subject"] = title(note)
    msg["From"] = str(channel.options["from"])
    msg["To"] = ", ".join(channel.options["to"])
    lines = [title(note), ""]
    for a in note.alerts:
        lines.append(_line(a))
        lines.extend(f"    {v}" if k == "description" else f"    {k}: {v}"
                     for k, v in a.all_annotations.items() if k != "summary")
        lines.append("    " + ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items())))
    msg.set_content("\n".join(lines) + "\n")
    return msg


def send_log(note: Notification, channel: Channel, timeout: float) -> DeliveryResult:
    """Write the notification to the ``monitorkit.alerts`` logger."""
    level = logging.WARNING if note.status == "firing" else logging.INFO
    for a in note.alerts:
        log.log(level, "%s", _line(a))
    return DeliveryResult(True)


def send_webhook(note: Notification, channel: Channel, timeout: float) -> DeliveryResult:
    """POST the notification as JSON (``format = "json"`` or ``"slack"``) within ``timeout`` seconds in all."""
    fmt = channel.options.get("format", "json")
    body = json.dumps(slack_payload(note) if fmt == "slack" else webhook_payload(note), allow_nan=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "monitorkit"}
    headers.update({str(k): str(v) for k, v in dict(channel.options.get("headers", {})).items()})
    started = time.perf_counter()
    deadline = Deadline(timeout)
    try:
        with deadline:
            status, reason = _post(str(channel.options["url"]), body, headers, deadline)
    except Exception as exc:  # any failure of any receiver is one failed attempt, never a dead dispatcher
        return DeliveryResult(False, None, _error(exc, deadline), time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if 200 <= status < 300:
        return DeliveryResult(True, status, None, seconds)
    hint = " (redirects are not followed: configure the final URL)" if 300 <= status < 400 else ""
    return DeliveryResult(False, status, f"HTTP {status} {reason}{hint}".strip(), seconds)


def _post(url: str, body: bytes, headers: Mapping[str, str], deadline: Deadline) -> tuple[int, str]:
    """POST ``body`` to ``url``; return (status, reason) once the whole answer is read (at most ANSWER_BYTES)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook url must be http:// or https://, got {url!r}")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    # The socket timeout is only a backstop: the deadline shuts the socket down first.
    conn = cls(parts.hostname, parts.port, timeout=deadline.left() + 1.0)
    deadline.watch(lambda: conn.sock)
    try:
        conn.connect()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers=dict(headers))
        response = conn.getresponse()
        _drain(response)
        return response.status, response.reason
    finally:
        conn.close()


def _drain(response: http.client.HTTPResponse) -> None:
    """Read the answer body, at most ANSWER_BYTES; raise IncompleteRead if it ends before its Content-Length."""
    left = ANSWER_BYTES
    while left > 0:
        chunk = response.read(min(left, 8192))
        if not chunk:
            if response.length:  # EOF with bytes still promised (read(n) does not raise it itself)
                raise http.client.IncompleteRead(b"", response.length)
            return
        left -= len(chunk)


def _error(exc: BaseException, deadline: Deadline) -> str:
    if deadline.expired:
        return deadline.message()
    text = " ".join((str(exc) or repr(exc)).split())  # one line: a non-HTTP answer may hold \r\n
    name = type(exc).__name__
    return (text if text.startswith(name) else f"{name}: {text}")[:2000]


def send_email(note: Notification, channel: Channel, timeout: float) -> DeliveryResult:
    """Send the notification by SMTP within ``timeout`` seconds in all (``starttls`` off unless set)."""
    opts = channel.options
    started = time.perf_counter()
    deadline = Deadline(timeout)
    try:
        with deadline:
            smtp = smtplib.SMTP(timeout=deadline.left() + 1.0)  # a backstop: the deadline comes first
            deadline.watch(lambda: smtp.sock)
            try:
                smtp.connect(str(opts["host"]), int(opts.get("port", 25)))
                if opts.get("starttls", False):
                    smtp.starttls()
                if opts.get("username"):
                    smtp.login(str(opts["username"]), str(opts.get("password", "")))
                smtp.send_message(email_message(note, channel))
            finally:
                smtp.close()
    except smtplib.SMTPResponseException as exc:
        return DeliveryResult(False, exc.smtp_code, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                              time.perf_counter() - started)
    except Exception as exc:  # any failure is one failed attempt, never a dead dispatcher
        return DeliveryResult(False, None, _error(exc, deadline), time.perf_counter() - started)
    return DeliveryResult(True, 250, None, time.perf_counter() - started)


SENDERS = {"log": send_log, "webhook": send_webhook, "email": send_email}


def send(note: Notification, channel: Channel, timeout: float) -> DeliveryResult:
    """Deliver ``note`` once through ``channel``."""
    return SENDERS[channel.type](note, channel, timeout)
