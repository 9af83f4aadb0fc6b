"""CLI commands for alerts, silences, rules and health: `alerts`, `rules`, `health`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from monitorkit.cli import config_option, db_option
from monitorkit.cli.store import settings_for
from monitorkit.config import parse_duration
from monitorkit.errors import ConfigError


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items() if k not in ("alertname", "severity"))


def _print(rows: list[dict[str, Any]], columns: list[str], as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=1))
        return
    if not rows:
        click.echo(empty)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    Console().print(table)


def _connect(db: str | None, config_path: str | None) -> Any:
    from monitorkit.owner.connect import connect

    return connect(settings_for(db, config_path).get("store.path"))


def _when(text: str, now: datetime) -> datetime:
    """Read ``2024-05-01T10:00``, ``2024-05-01 10:00:00+02:00``, ``now`` or a duration ago (``6h``)."""
    if text == "now":
        return now
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now - parse_duration(text)
        except ConfigError:
            raise click.BadParameter(
                f"{text!r} is neither a date-time (2024-05-01T10:00) nor a duration ago (6h)") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# -- alerts -----------------------------------------------------------------------------------------


@click.group()
def alerts() -> None:
    """List, inspect, acknowledge and silence alerts."""


@alerts.command("list")
@db_option
@config_option
@click.option("--state", type=click.Choice(["pending", "firing", "resolved", "inactive"]), default=None)
@click.option("--all", "include_all", is_flag=True, help="Include resolved and inactive alerts.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_alerts(db: str | None, config_path: str | None, state: str | None, include_all: bool, as_json: bool) -> None:
    """List current alerts (pending and firing unless --state or --all)."""
    from monitorkit.rules.alerts import list_alerts as fetch

    con = _connect(db, config_path)
    try:
        items = fetch(con, state=state, include_all=include_all)
    finally:
        con.close()
    rows = [{"id": i.id, "rule": i.rule, "state": i.state, "severity": i.severity, "labels": _labels(i.labels),
             "value": i.value, "since": i.phase.since, "summary": i.summary,
             "acked_by": i.acked_by, "silenced_by": i.silenced_by, "inhibited": i.inhibited} for i in items]
    _print(rows, ["id", "rule", "state", "severity", "labels", "value", "since", "summary", "acked_by"], as_json,
           "no alerts")


@alerts.command("show")
@click.argument("alert_id", type=int)
@db_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show(alert_id: int, db: str | None, config_path: str | None, as_json: bool) -> None:
    """Show one alert and its whole history."""
    from monitorkit.rules.alerts import get_alert, history

    con = _connect(db, config_path)
    try:
        inst = get_alert(con, alert_id)
        events = history(con, alert_id)
    finally:
        con.close()
    if not as_json:
        click.echo(f"alert {inst.id}: {inst.rule} [{inst.severity}] {_labels(inst.labels)}")
        click.echo(f"state {inst.state}, value {_fmt(inst.value)}, since {_fmt(inst.phase.since)}, "
                   f"fired {_fmt(inst.phase.fired_at)}, resolved {_fmt(inst.phase.resolved_at)}")
        if inst.summary:
            click.echo(inst.summary)
        if inst.acked_by:
            click.echo(f"acknowledged by {inst.acked_by} at {_fmt(inst.acked_at)}: {inst.ack_comment}")
    rows = [{"time": e.time, "event": e.event, "state": e.state, "value": e.value, "actor": e.actor,
             "comment": e.comment} for e in events]
    _print(rows, ["time", "event", "state", "value", "actor", "comment"], as_json, "no events")


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
    starts = _when(start, utcnow()) if start else None
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def silences(db: str | None, config_path: str | None, expired: bool, as_json: bool) -> None:
    """List silences (active and pending; --expired adds the ended ones)."""
    from monitorkit.rules.silences import list_silences
    from monitorkit.samples import utcnow

    now = utcnow()
    con = _connect(db, config_path)
    try:
        items = list_silences(con, now, expired=expired)
    finally:
        con.close()
    rows = [{"id": s.id, "status": s.status(now), "matchers": ", ".join(map(str, s.matchers)), "starts": s.starts_at,
             "ends": s.ends_at, "by": s.created_by, "comment": s.comment} for s in items]
    _print(rows, ["id", "status", "matchers", "starts", "ends", "by", "comment"], as_json, "no silences")


# -- rules --------------------------------------------------------------------------------------------


@click.group()
def rules() -> None:
    """List, check, unit-test and backtest alert and health rules."""


@rules.command("list")
@db_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_rules(db: str | None, config_path: str | None, as_json: bool) -> None:
    """List the rules the owner loaded, with state (ok or errored), last evaluation and cost."""
    from monitorkit.rules.runner import fetch_dicts

    con = _connect(db, config_path)
    try:
        _, rows = fetch_dicts(
            con, "SELECT name, type, kind, severity, state, error, last_eval, eval_ms, rows, file FROM rules ORDER BY name")
    finally:
        con.close()
    _print(rows, ["name", "type", "kind", "severity", "state", "last_eval", "eval_ms", "rows", "error"],
           as_json, "no rules loaded yet (they load when an owner starts: `monitorkit collect`)")


@rules.command("check")
@click.argument("dirs", nargs=-1, type=click.Path(exists=True))
@db_option
@config_option
def check(dirs: tuple[str, ...], db: str | None, config_path: str | None) -> None:
    """Parse every rule (of DIRS, default: the configured folders) and dry-run it against the database."""
    from monitorkit.rules.errors import RuleEvalError
    from monitorkit.rules.loader import load_rules, rules_config
    from monitorkit.rules.runner import evaluate_rule
    from monitorkit.samples import utcnow

    settings = settings_for(db, config_path)
    paths = [Path(d) for d in dirs] or list(rules_config(settings).dirs)
    loaded = load_rules(paths)
    rows = [{"name": n, "type": "?", "state": "errored", "rows": None, "ms": None, "error": e}
            for n, (_f, e) in loaded.broken.items()]
    db_path = Path(settings.get("store.path"))
    con = _connect(db, config_path) if db_path.exists() else None
    try:
        now = utcnow()
        for name, rule in sorted(loaded.rules.items()):
            row: dict[str, Any] = {"name": name, "type": rule.type, "state": "parsed", "rows": None, "ms": None,
                                   "error": None}
            if con is not None:
                try:
                    res = evaluate_rule(con, rule, now)
                    row.update(state="ok", rows=len(res.alerts) + len(res.health), ms=res.seconds * 1000)
                except RuleEvalError as exc:
                    row.update(state="errored", error=str(exc))
            rows.append(row)
    finally:
        if con is not None:
            con.close()
    _print(rows, ["name", "type", "state", "rows", "ms", "error"], False, "no rule files found")
    if con is None:
        click.echo(f"(no database at {db_path}: rules parsed but not run)")
    bad = sum(1 for r in rows if r["state"] == "errored")
    if bad:
        raise click.ClickException(f"{bad} rule(s) errored")


@rules.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@config_option
def test(file: str, config_path: str | None) -> None:
    """Run rule unit tests from a TOML FILE (input series, times, expected alerts)."""
    from monitorkit.rules.loader import rules_config
    from monitorkit.rules.ruletests import run_rule_tests

    settings = settings_for(None, config_path)
    report = run_rule_tests(file, rule_dirs=list(rules_config(settings).dirs))
    for f in report.failures:
        click.echo(f"FAIL {f.test} at {f.at} [{f.rule}]: {f.message}")
    click.echo(f"{report.tests} tests, {report.checks} checks, {len(report.failures)} failures")
    if not report.ok:
        raise click.ClickException("rule tests failed")


@rules.command("backtest")
@click.argument("rule")
@click.option("--from", "start", default="24h", show_default=True, help="Start: a date-time or a duration ago.")
@click.option("--to", "end", default="now", show_default=True, help="End: a date-time, a duration ago or now.")
@click.option("--step", default="1m", show_default=True, help="Time between evaluations.")
@db_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def backtest_cmd(rule: str, start: str, end: str, step: str, db: str | None, config_path: str | None,
                 as_json: bool) -> None:
    """Show when RULE (a loaded rule's name or a .sql file) would have fired over stored history."""
    from monitorkit.rules.backtest import backtest
    from monitorkit.samples import utcnow

    now = utcnow()
    con = _connect(db, config_path)
    try:
        result = backtest(con, rule, _when(start, now), _when(end, now), step)
    finally:
        con.close()
    rows = [{"labels": _labels(w.labels), "start": w.start, "end": w.end or "(still firing)",
             "duration": str(w.duration), "max_value": w.max_value} for w in result.windows]
    _print(rows, ["labels", "start", "end", "duration", "max_value"], as_json, "never fired")
    if not as_json:
        click.echo(f"{result.rule}: {result.evaluations} evaluations every {result.step}, "
                   f"{len(result.windows)} firing windows, {len(result.errors)} errored evaluations")
        for at, error in result.errors[:5]:
            click.echo(f"  errored at {_fmt(at)}: {error}")



# -- health -------------------------------------------------------------------------------------------


@click.command()
@db_option
@config_option
@click.option("--history", "show_history", is_flag=True, help="Show the latest status changes too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def health(db: str | None, config_path: str | None, show_history: bool, as_json: bool) -> None:
    """Show every component's health (live from the health views) and the overall status."""
    from monitorkit.rules.runner import fetch_dicts

    con = _connect(db, config_path)
    try:
        _, comps = fetch_dicts(
            con, "SELECT c.component, c.status, c.reason, c.check_name, s.since FROM health_components c "
            "LEFT JOIN health_status s USING (component) ORDER BY c.component")
        overall = con.execute("SELECT status, components, degraded, failing FROM health_overall").fetchall()[0]
        _, hist = fetch_dicts(
            con, "SELECT time, component, previous, status, reason FROM health_history ORDER BY time DESC LIMIT 20"
        ) if show_history else ([], [])
    finally:
        con.close()
    if as_json:
        click.echo(json.dumps({"overall": overall[0], "components": comps, "history": hist}, default=str, indent=1))
        return
    _print(comps, ["component", "status", "reason", "since", "check_name"], False, "no health checks installed")
    click.echo(f"overall: {overall[0]} ({overall[1]} components, {overall[2]} degraded, {overall[3]} failing)")
    if show_history:
        _print(hist, ["time", "component", "previous", "status", "reason"], False, "no history")
