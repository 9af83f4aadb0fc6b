"""The `monitorkit rules` commands: list, check, test, backtest."""

from __future__ import annotations

from pathlib import Path

import click

from monitorkit.cli import output
from monitorkit.cli.alerts import open_db, shown_labels
from monitorkit.cli.options import config_option, db_option, parse_when, settings_for


@click.group()
def rules() -> None:
    """List, check, unit-test and backtest alert and health rules."""


@rules.command("list")
@db_option
@config_option
@output.format_options
def list_rules(db: str | None, config_path: str | None, fmt: str | None) -> None:
    """List the rules the owner loaded, with state (ok or errored), last evaluation and cost."""
    from monitorkit.rules.runner import fetch_dicts

    con = open_db(db, config_path)
    try:
        _, rows = fetch_dicts(
            con, "SELECT name, type, kind, severity, state, error, last_eval, eval_ms, rows, file FROM rules ORDER BY name")
    finally:
        con.close()
    output.emit(rows, ["name", "type", "kind", "severity", "state", "last_eval", "eval_ms", "rows", "error"], fmt,
                empty="no rules loaded yet (they load when an owner starts: `monitorkit collect`)")


@rules.command("check")
@click.argument("dirs", nargs=-1, type=click.Path(exists=True))
@db_option
@config_option
@output.format_options
def check(dirs: tuple[str, ...], db: str | None, config_path: str | None, fmt: str | None) -> None:
    """Parse every rule (of DIRS, default: the configured folders) and dry-run it against the database.

    A metric a rule names that neither the catalog nor the series table knows is reported on
    stderr; only parse and run errors make the check fail.
    """
    from monitorkit.rules.check import check_rules
    from monitorkit.rules.loader import rules_config

    settings = settings_for(db, config_path)
    paths = [Path(d) for d in dirs] or list(rules_config(settings).dirs)
    report = check_rules(paths, Path(settings.get("store.path")))
    for c in report.checks:
        for unknown in c.unknown:
            click.echo(f"warning: rule {c.name}: {unknown.message}", err=True)
    rows = [{"name": c.name, "type": c.type, "state": c.state, "rows": c.rows, "ms": c.ms, "error": c.error,
             "unknown_metrics": [u.name for u in c.unknown]} for c in report.checks]
    output.emit(rows, ["name", "type", "state", "rows", "ms", "error"], fmt, empty="no rule files found")
    if not report.ran:
        click.echo(f"(no database at {report.database}: rules parsed but not run)", err=True)
    if report.errored:
        raise click.ClickException(f"{report.errored} rule(s) errored")


@rules.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@config_option
def test(file: str, config_path: str | None) -> None:
    """Run rule unit tests from a TOML FILE, or a promtool test FILE (.yml) for the parts that map."""
    from monitorkit.rules.loader import rules_config
    from monitorkit.rules.ruletests import run_rule_tests

    settings = settings_for(None, config_path)
    report = run_rule_tests(file, rule_dirs=list(rules_config(settings).dirs))
    for f in report.failures:
        click.echo(f"FAIL {f.test} at {f.at} [{f.rule}]: {f.message}")
    for part in report.skipped:
        click.echo(f"skipped (no monitorkit equivalent): {part}", err=True)
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
@output.format_options
def backtest_cmd(rule: str, start: str, end: str, step: str, db: str | None, config_path: str | None,
                 fmt: str | None) -> None:
    """Show when RULE (a loaded rule's name or a .sql file) would have fired over stored history."""
    from monitorkit.rules.backtest import backtest
    from monitorkit.samples import utcnow

    now = utcnow()
    con = open_db(db, config_path)
    try:
        result = backtest(con, rule, parse_when(start, now), parse_when(end, now), step)
    finally:
        con.close()
    rows = [{"labels": shown_labels(w.labels), "start": w.start, "end": w.end or "(still firing)",
             "duration": str(w.duration), "max_value": w.max_value} for w in result.windows]
    output.emit(rows, ["labels", "start", "end", "duration", "max_value"], fmt, empty="never fired")
    if fmt not in ("json", "csv"):
        click.echo(f"{result.rule}: {result.evaluations} evaluations every {result.step}, "
                   f"{len(result.windows)} firing windows, {len(result.errors)} errored evaluations")
        for at, error in result.errors[:5]:
            click.echo(f"  errored at {output.cell(at)}: {error}")
