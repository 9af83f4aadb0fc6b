"""Read rule files: a header in SQL comments, then one SELECT; render summary templates.

```sql
-- name: cpu_saturation
-- kind: resource
-- severity: warning
-- for: 2m
-- summary: CPU on {{ host }} at {{ value }}%
SELECT host, avg AS value
FROM gauge_window('cpu_percent', eval_time() - INTERVAL 1 MINUTE, eval_time())
WHERE labels['cpu'] IS NULL AND avg > 90
```
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb

from monitorkit.config import Settings, parse_duration
from monitorkit.errors import ConfigError
from monitorkit.rules.errors import RuleFileError
from monitorkit.rules.templates import format_value, label_value, render

__all__ = ["Rule", "RuleSet", "format_value", "label_value", "load_file", "load_rules", "parse_rule", "render",
           "rules_config", "sql_at"]

RuleType = Literal["alert", "health"]
KINDS = ("performance", "resource", "error", "health")
SEVERITIES = ("critical", "warning", "info")
HEADER_KEYS = (
    "name", "type", "kind", "severity", "for", "keep_firing_for", "summary", "description", "labels", "timeout",
    "every",
)
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# health_<name> must not collide with the engine's own tables and views.
RESERVED = {"status", "history", "components", "overall", "active"}
HEALTH_COLUMNS = ("component", "status", "reason")
ANNOTATION_PREFIX = "annotations."  # `-- annotations.runbook_url: https://...` adds any annotation
_HEADER_RE = re.compile(r"^--\s*([a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*:\s?(.*)$")
_EVAL_TIME_RE = re.compile(r"\beval_time\s*\(\s*\)", re.IGNORECASE)
_NOW_RE = re.compile(r"\b(now\s*\(\s*\)|current_timestamp|get_current_timestamp\s*\(|transaction_timestamp\s*\()",
                     re.IGNORECASE)
MAX_SPAN = timedelta(days=366)  # for, keep_firing_for, every
MAX_TIMEOUT = timedelta(hours=1)  # a rule's time budget


@dataclass(frozen=True)
class Rule:
    """One parsed rule file; ``view`` is the name it is installed under (``alert_<name>``)."""

    name: str
    type: RuleType
    kind: str
    severity: str
    sql: str
    file: str = "<memory>"
    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    summary: str = ""
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    timeout: timedelta | None = None
    every: timedelta = timedelta(0)  # evaluate at most this often (0: after every commit)
    annotations: Mapping[str, str] = field(default_factory=dict)  # besides summary and description

    @property
    def annotation_templates(self) -> dict[str, str]:
        """Return every annotation template, summary and description first, empty ones left out."""
        first = {"summary": self.summary, "description": self.description}
        return {k: v for k, v in {**first, **self.annotations}.items() if v}

    @property
    def view(self) -> str:
        """Return the view name: ``alert_<name>`` or ``health_<name>``."""
        return f"{self.type}_{self.name}"


class RuleSet:
    """Rules read from folders, and the files that failed to parse (name -> error)."""

    def __init__(self, rules: dict[str, Rule], broken: dict[str, tuple[str, str]], mtimes: dict[str, float]) -> None:
        self.rules = rules
        self.broken = broken  # name -> (file, error)
        self.mtimes = mtimes


def parse_rule(text: str, *, file: str = "<memory>", default_name: str | None = None) -> Rule:
    """Parse a rule's text (header comments, then one SELECT) into a Rule, or raise RuleFileError."""
    header: dict[str, str] = {}
    last_key: str | None = None
    lines = text.splitlines()
    body_start = len(lines)
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            last_key = None
            continue
        if not line.startswith("--"):
            body_start = i
            break
        rest = line[2:]
        if last_key is not None and _is_annotation(last_key) and rest.startswith(("  ", "\t")):
            header[last_key] = f"{header[last_key]} {rest.strip()}".strip()  # an indented continuation line
            continue
        match = _HEADER_RE.match(line)
        if match is None:
            last_key = None  # an ordinary comment
            continue
        key = match.group(1)
        if key not in HEADER_KEYS and not key.startswith(ANNOTATION_PREFIX):
            raise RuleFileError(f"{file}: unknown header key {key!r}; use {', '.join(HEADER_KEYS)} "
                                f"or {ANNOTATION_PREFIX}<name> for another annotation")
        if key in header:
            raise RuleFileError(f"{file}: header key {key!r} is given twice")
        header[key] = match.group(2).strip()
        last_key = key
    sql = "\n".join(lines[body_start:]).strip()
    return _build(header, sql, file, default_name)


def _is_annotation(key: str) -> bool:
    return key in ("summary", "description") or key.startswith(ANNOTATION_PREFIX)


def _build(header: dict[str, str], sql: str, file: str, default_name: str | None) -> Rule:
    name = header.get("name") or default_name or ""
    if not NAME_RE.match(name):
        raise RuleFileError(f"{file}: rule name {name!r} must be lower case letters, digits and '_' (e.g. cpu_saturation)")
    rtype = header.get("type", "alert")
    if rtype not in ("alert", "health"):
        raise RuleFileError(f"{file}: type must be 'alert' or 'health', got {rtype!r}")
    if rtype == "health" and name in RESERVED:
        raise RuleFileError(f"{file}: health check name {name!r} is reserved; pick another")
    kind = header.get("kind", "health" if rtype == "health" else "")
    if kind not in KINDS:
        raise RuleFileError(f"{file}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    severity = header.get("severity", "warning")
    if severity not in SEVERITIES:
        raise RuleFileError(f"{file}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    try:
        for_ = _span(header, "for", MAX_SPAN)
        keep = _span(header, "keep_firing_for", MAX_SPAN)
        every = _span(header, "every", MAX_SPAN)
        timeout = _span(header, "timeout", MAX_TIMEOUT) if "timeout" in header else None
    except ConfigError as exc:
        raise RuleFileError(f"{file}: {exc}") from None
    if timeout is not None and timeout <= timedelta(0):
        raise RuleFileError(f"{file}: timeout must be longer than 0 s, e.g. '10s'")
    sql = _check_sql(sql, file)
    annotations = {k[len(ANNOTATION_PREFIX):]: v for k, v in header.items() if k.startswith(ANNOTATION_PREFIX)}
    for key in ("summary", "description"):
        if key in annotations:
            raise RuleFileError(f"{file}: write '-- {key}:' instead of '-- {ANNOTATION_PREFIX}{key}:'")
    return Rule(
        name=name, type=rtype, kind=kind, severity=severity, sql=sql, file=file, for_=for_,  # type: ignore[arg-type]
        keep_firing_for=keep, summary=header.get("summary", ""), description=header.get("description", ""),
        labels=_parse_labels(header.get("labels", ""), file), timeout=timeout, every=every, annotations=annotations,
    )


def _span(header: Mapping[str, str], key: str, limit: timedelta) -> timedelta:
    """Return the duration of header ``key`` (0 when absent); a ConfigError past ``limit``."""
    most = f"{limit.days} days" if limit.days else f"{limit.total_seconds():.0f} s"
    try:
        value = parse_duration(header.get(key, "0s"))
    except OverflowError:
        value = timedelta.max
    if value > limit:
        raise ConfigError(f"{key} is at most {most}, got {header[key]!r}")
    return value


def _check_sql(sql: str, file: str) -> str:
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        raise RuleFileError(f"{file}: no SQL after the header; write one SELECT")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise RuleFileError(f"{file}: SQL does not parse: {exc}") from None
    if len(statements) != 1:
        raise RuleFileError(f"{file}: write exactly one SELECT statement, found {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise RuleFileError(f"{file}: a rule must be a SELECT, not {statements[0].type.name}")
    if _NOW_RE.search(_strip_comments_and_strings(sql)):
        raise RuleFileError(f"{file}: use eval_time() instead of now()/current_timestamp so the rule can be backtested")
    return sql


def _strip_comments_and_strings(sql: str) -> str:
    sql = re.sub(r"'(?:[^']|'')*'", "''", sql)
    return re.sub(r"--[^\n]*", "", sql)


def _parse_labels(text: str, file: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key.strip()):
            raise RuleFileError(f"{file}: labels must read 'team=infra, page=yes', got {part!r}")
        out[key.strip()] = value.strip()
    return out


def load_file(path: Path) -> Rule:
    """Parse one ``.sql`` rule file; the name defaults to the file name without ``.sql``."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RuleFileError(f"cannot read rule file {path}: {exc.strerror}") from None
    return parse_rule(text, file=str(path), default_name=path.stem)


def default_rules_dir() -> Path:
    """Return the folder of the rules shipped with monitorkit."""
    return Path(__file__).with_name("default")  # package data beside this module


def rule_files(dirs: Iterable[Path]) -> list[Path]:
    """Return every ``*.sql`` file of ``dirs`` (files are accepted too), in load order."""
    out: list[Path] = []
    for d in dirs:
        if d.is_file():
            out.append(d)
        elif d.is_dir():
            out.extend(sorted(Path(entry.path) for entry in _sql_entries(str(d))))
    return out


def _sql_entries(folder: str) -> Iterator[os.DirEntry[str]]:
    """Yield the ``*.sql`` files of ``folder`` (not recursive) as scandir entries."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".sql") and entry.is_file():
                yield entry


def load_rules(dirs: Iterable[Path], disabled: Iterable[str] = ()) -> RuleSet:
    """Load every rule of ``dirs``; a later folder's rule replaces an earlier one of the same name."""
    skip = set(disabled)
    rules: dict[str, Rule] = {}
    broken: dict[str, tuple[str, str]] = {}
    mtimes: dict[str, float] = {}
    for path in rule_files(dirs):
        try:
            mtimes[str(path)] = path.stat().st_mtime
        except OSError:
            continue
        if path.stem in skip:
            continue
        try:
            rule = load_file(path)
        except RuleFileError as exc:
            broken[path.stem] = (str(path), str(exc))
            rules.pop(path.stem, None)
            continue
        if rule.name in skip:
            continue
        broken.pop(rule.name, None)
        rules[rule.name] = rule
    return RuleSet(rules, broken, mtimes)


def snapshot(dirs: Iterable[Path]) -> dict[str, float]:
    """Return ``{file: mtime}`` of every rule file, to notice changes by polling.

    The engine polls once a second, so this is one ``scandir`` and a ``stat`` per file (pathlib's
    glob and ``is_file`` cost ~0.5 ms a poll for the shipped rules, a third of the idle loop).
    """
    out: dict[str, float] = {}
    for d in map(str, dirs):
        try:
            st = os.stat(d)
        except OSError:
            continue
        out[d] = st.st_mtime  # a folder's mtime changes when files are added or removed
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            for entry in _sql_entries(d):
                out[entry.path] = entry.stat().st_mtime  # d + "/" + name, as str(Path(d) / name)
        except OSError:
            continue
    return out


def sql_at(rule: Rule | str, at: datetime | None) -> str:
    """Return the rule's SQL with ``eval_time()`` fixed to ``at`` (None keeps it live)."""
    sql = rule.sql if isinstance(rule, Rule) else rule
    if at is None:
        return sql
    if at.tzinfo is None:
        raise ValueError("evaluation times must be timezone-aware datetimes")
    literal = f"(TIMESTAMPTZ '{at.astimezone(UTC).isoformat()}')"
    return _EVAL_TIME_RE.sub(literal, sql)


@dataclass(frozen=True)
class RulesConfig:
    """The ``[rules]`` settings: folders, per-rule time budget, polling and throttling."""

    dirs: tuple[Path, ...]
    budget: timedelta = timedelta(seconds=2)
    min_interval: timedelta = timedelta(0)
    poll: timedelta = timedelta(seconds=1)
    disabled: tuple[str, ...] = ()
    # Prometheus's --rules.alert.for-outage-tolerance and --rules.alert.for-grace-period: how a
    # pending alert's `for` clock is restored after a restart (instances.py).
    for_outage_tolerance: timedelta = timedelta(hours=1)
    for_grace_period: timedelta = timedelta(minutes=10)


def rules_config(settings: Settings) -> RulesConfig:
    """Parse ``[rules]``: ``dirs`` (relative to monitorkit.toml), ``defaults``, ``budget``, ``disabled``..."""
    try:
        section: Mapping[str, Any] = settings["rules"]
    except KeyError:
        section = {}
    dirs_value = section.get("dirs", ["rules"])
    if isinstance(dirs_value, str):
        dirs_value = [dirs_value]
    source = settings.source("rules.dirs")
    base = Path(source).parent if source.endswith(".toml") else Path.cwd()
    dirs = [Path(d) if Path(d).is_absolute() else base / d for d in dirs_value]
    if section.get("defaults", True):
        dirs.insert(0, default_rules_dir())
    try:
        return RulesConfig(
            tuple(dirs), parse_duration(section.get("budget", "2s")), parse_duration(section.get("min_interval", 0)),
            parse_duration(section.get("poll", "1s")), tuple(section.get("disabled", ())),
            parse_duration(section.get("for_outage_tolerance", "1h")),
            parse_duration(section.get("for_grace_period", "10m")),
        )
    except ConfigError as exc:
        raise ConfigError(f"[rules]: {exc}") from None
