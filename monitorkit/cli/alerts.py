"""The `monitorkit alerts` commands: list, show, recent, ack, silence, unsilence, silences."""

from __future__ import annotations

from typing import Any

import click

from monitorkit.cli import output
from monitorkit.cli.options import config_option, db_option, parse_when, settings_for


def shown_labels(labels: dict[str, str]) -> dict[str, str]:
    """Return an alert's labels without alertname and severity (they have their own columns)."""
    return {k: v for k, v in labels.items() if k not in ("alertname", "severity")}


def open_db(db: str | None, config_path: str | None) -> Any:
    """Open the selected database for reading (through its owner when one runs)."""
    from monitorkit.owner.connect import connect

    return connect(settings_for(db, config_path).get("store.path"))


@click.group()
def alerts() -> None:
    """List, inspect, acknowledge and silence alerts."""


@alerts.command("list")
@db_option
@config_option
@click.option("--state", type=click.Choice(["pending", "firing", "resolved", "inactive"]), default=None)
@click.option("--all", "include_all", is_flag=True, help="Include resolved and inactive alerts.")
@output.format_options
def list_alerts(db: str | None, config_path: str | None, state: str | None, include_all: bool, fmt: str | None) -> None:
    """List current alerts (pending and firing unless --state or --all)."""
    from monitorkit.rules.alerts import list_alerts as fetch

    con = open_db(db, config_path)
    try:
        items = fetch(con, state=state, include_all=include_all)
    finally:
        con.close()
    rows = [{"id": i.id, "rule": i.rule, "state": i.state, "severity": i.severity, "labels": shown_labels(i.labels),
             "value": i.value, "since": i.phase.since, "summary": i.summary,
             "acked_by": i.acked_by, "silenced_by": i.silenced_by, "inhibited": i.inhibited} for i in items]
    output.emit(rows, ["id", "rule", "state", "severity", "labels", "value", "since", "summary", "acked_by"], fmt,
                empty="no alerts")


@alerts.command("recent")
@db_option
@config_option
@click.option("--since", "since", default="24h", show_default=True, help="A date-time or a duration ago.")
@output.format_options
def recent(db: str | None, config_path: str | None, since: str, fmt: str | None) -> None:
    """List the alerts that ended since --since: resolved after firing, or pending only (never fired)."""
    from monitorkit.rules.report import recent_alerts
    from monitorkit.samples import utcnow

    start = parse_when(since, utcnow())
    con = open_db(db, config_path)
    try:
        items = recent_alerts(con, start)
    finally:
        con.close()
    rows = [{"id": a.id, "rule": a.rule, "outcome": a.outcome, "state": a.state, "severity": a.severity,
             "labels": shown_labels(a.labels), "ended": a.ended, "fired_at": a.fired_at, "acked_by": a.acked_by}
            for a in items]
    output.emit(rows, ["ended", "id", "rule", "outcome", "severity", "labels", "acked_by"], fmt,
                empty=f"no alert ended since {output.cell(start)}")


@alerts.command("show")
@click.argument("alert_id", type=int)
@db_option
@config_option
@output.format_options
def show(alert_id: int, db: str | None, config_path: str | None, fmt: str | None) -> None:
    """Show one alert and its whole history."""
    from monitorkit.rules.alerts import get_alert, history
    from monitorkit.rules.report import outcome

    con = open_db(db, config_path)
    try:
        inst = get_alert(con, alert_id)
        events = history(con, alert_id)
    finally:
        con.close()
    if fmt not in ("json", "csv"):
        cell = output.cell
        click.echo(f"alert {inst.id}: {inst.rule} [{inst.severity}] {cell(shown_labels(inst.labels))}")
        click.echo(f"state {outcome(inst.state)}, value {cell(inst.value)}, since {cell(inst.phase.since)}, "
                   f"fired {cell(inst.phase.fired_at)}, resolved {cell(inst.phase.resolved_at)}")
        if inst.summary:
            click.echo(inst.summary)
        if inst.acked_by:
            click.echo(f"acknowledged by {inst.acked_by} at {cell(inst.acked_at)}: {inst.ack_comment}")
    rows = [{"time": e.time, "event": e.event, "state": e.state, "value": e.value, "actor": e.actor,
             "comment": e.comment} for e in events]
    output.emit(rows, ["time", "event", "state", "value", "actor", "comment"], fmt, empty="no events")


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", required=True, help="Who acknowledges.")
@click.option("--comment", default="", help="Why, or what is being done.")
@db_option
@config_option
def ack(alert_id: int, by: str, comment: str, db: str | None, config_path: str | None) -> None:
    """Acknowledge an alert (works while an owner runs)."""
    from monitorkit.rules.actions import ack_alert

    settings = settings_for(db, config_path)
    out = ack_alert(settings.get("store.path"), alert_id, by=by, comment=comment, settings=settings)
    click.echo(f"alert {out['id']} ({out['rule']}, {out['state']}) acknowledged by {out['acked_by']}")


@alerts.command("silence")
@click.option("-m", "--match", "matchers", multiple=True, required=True,
              help="Label matcher: host=web1, env!=dev, alertname=~cpu.*, mount!~/boot.* (repeatable).")
@click.option("--for", "duration", default="1h", show_default=True, help="How long, e.g. 30m, 2h, 1d.")
@click.option("--start", default=None, help="Start time (default now), e.g. 2024-05-01T22:00.")
@click.option("--by", required=True, help="Who silences.")
@click.option("--comment", required=True, help="Why.")
@db_option
@config_option
def silence(matchers: tuple[str, ...], duration: str, start: str | None, by: str, comment: str, db: str | None,
            config_path: str | None) -> None:
    """Silence alerts whose labels match every matcher."""
    from monitorkit.rules.actions import add_silence
    from monitorkit.samples import utcnow

    settings = settings_for(db, config_path)
    starts = parse_when(start, utcnow()) if start else None
    out = add_silence(settings.get("store.path"), list(matchers), duration=duration, by=by, comment=comment,
                      starts_at=starts, settings=settings)
    click.echo(f"silence {out['id']} ({', '.join(out['matchers'])}) until {out['ends_at']}")


@alerts.command("unsilence")
@click.argument("silence_id", type=int)
@db_option
@config_option
def unsilence(silence_id: int, db: str | None, config_path: str | None) -> None:
    """End a silence now (it stays listed as expired)."""
    from monitorkit.rules.actions import remove_silence

    settings = settings_for(db, config_path)
    out = remove_silence(settings.get("store.path"), silence_id, settings=settings)
    click.echo(f"silence {out['id']} expired at {out['ends_at']}")


@alerts.command("silences")
@db_option
@config_option
@click.option("--expired", is_flag=True, help="Include expired silences.")
@output.format_options
def silences(db: str | None, config_path: str | None, expired: bool, fmt: str | None) -> None:
    """List silences (active and pending; --expired adds the ended ones)."""
    from monitorkit.rules.silences import list_silences
    from monitorkit.samples import utcnow

    now = utcnow()
    con = open_db(db, config_path)
    try:
        items = list_silences(con, now, expired=expired)
    finally:
        con.close()
    rows = [{"id": s.id, "status": s.status(now), "matchers": [str(m) for m in s.matchers], "starts": s.starts_at,
             "ends": s.ends_at, "by": s.created_by, "comment": s.comment} for s in items]
    output.emit(rows, ["id", "status", "matchers", "starts", "ends", "by", "comment"], fmt, empty="no silences")
