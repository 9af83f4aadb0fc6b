"""``[[scrape]]`` jobs in the shape of Prometheus's ``scrape_configs``, and the targets they name.

```toml
[[scrape]]
job = "node"
targets = ["127.0.0.1:9100"]
interval = "15s"            # timeout defaults to min(10s, interval)
labels = { env = "prod" }   # a `host` label sets the host column instead
target_files = ["targets/*.json"]   # like file_sd_configs: re-read when they change
translate = "auto"          # node_exporter's series also as monitorkit's (cpu_percent, ...); "node_exporter", "none"
```

A target file is JSON (or YAML) in Prometheus's file_sd shape:
``[{"targets": ["db1:9187"], "labels": {"env": "prod"}}]``.
"""

from __future__ import annotations

import glob
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from monitorkit.config import Settings, parse_duration
from monitorkit.errors import ConfigError
from monitorkit.samples import HOST, LABEL_NAME_RE

DEFAULT_INTERVAL = 15.0
DEFAULT_TIMEOUT = 10.0
JOB_KEYS = frozenset({
    "job", "targets", "interval", "timeout", "metrics_path", "scheme", "params", "labels", "honor_labels",
    "honor_timestamps", "sample_limit", "bearer_token", "bearer_token_file", "basic_auth", "target_files",
    "body_size_limit", "ca_file", "insecure_skip_verify", "translate",
})
# node_exporter's series also written under monitorkit's names (auto: for hosts other than this machine)
TRANSLATE = ("auto", "node_exporter", "none")
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "ip6-localhost"})
_ADDRESS_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$")


@dataclass(frozen=True)
class BasicAuth:
    """HTTP basic credentials; the password may come from a file (re-read on every scrape)."""

    username: str
    password: str = ""
    password_file: str = ""


@dataclass(frozen=True)
class ScrapeJob:
    """One ``[[scrape]]`` table: how to scrape its targets (times in seconds)."""

    job: str
    targets: tuple[str, ...] = ()
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    honor_labels: bool = False
    honor_timestamps: bool = True
    sample_limit: int = 0  # 0: no limit
    body_size_limit: int = 64 * 2**20
    bearer_token: str = ""
    bearer_token_file: str = ""
    basic_auth: BasicAuth | None = None
    target_files: tuple[str, ...] = ()
    ca_file: str = ""
    insecure_skip_verify: bool = False
    translate: str = "auto"


@dataclass(frozen=True)
class Target:
    """One address of one job, with its target labels (``job``, ``instance`` and the configured ones)."""

    job: ScrapeJob
    address: str
    labels: Mapping[str, str]
    host: str

    @property
    def url(self) -> str:
        """Return the URL scraped: scheme, address, metrics path and params."""
        query = urlencode([(k, v) for k, vs in sorted(self.job.params.items()) for v in vs])
        return f"{self.job.scheme}://{self.address}{self.job.metrics_path}" + (f"?{query}" if query else "")

    @property
    def key(self) -> tuple[str, str]:
        """Return (job, instance): what identifies a target, as in Prometheus's target list."""
        return self.job.job, self.labels.get("instance", self.address)


def host_of(instance: str) -> str:
    """Return the host column for an instance: its host part, this machine's name for loopback ones."""
    match = _ADDRESS_RE.match(instance)
    host = match.group(1) if match else instance.rsplit(":", 1)[0]
    return HOST if host in LOOPBACK or host.startswith("127.") else host.strip("[]")


def _labels(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: labels must be a table of strings, e.g. labels = {{ env = \"prod\" }}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not LABEL_NAME_RE.match(k) or k.startswith("__"):
            raise ConfigError(f"{where}: invalid label name {k!r}: letters, digits and '_', not starting with '__'")
        out[k] = str(v)
    return out


def _seconds(value: object, where: str) -> float:
    seconds = parse_duration(value).total_seconds()
    if seconds <= 0:
        raise ConfigError(f"{where} must be a positive duration, not {value!r}")
    return seconds


def parse_job(table: Mapping[str, Any], index: int = 0) -> ScrapeJob:
    """Check one ``[[scrape]]`` table and return its job."""
    where = f"[[scrape]] #{index + 1}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - JOB_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(JOB_KEYS))}")
    job = table.get("job")
    if not isinstance(job, str) or not job:
        raise ConfigError(f"{where} needs job = \"<name>\" (it becomes the job label)")
    where = f"[[scrape]] job {job!r}"
    targets = table.get("targets", [])
    if isinstance(targets, str):
        targets = [targets]
    files = table.get("target_files", [])
    if isinstance(files, str):
        files = [files]
    if not targets and not files:
        raise ConfigError(f"{where} needs targets = [\"host:port\", ...] or target_files = [\"targets/*.json\"]")
    for address in targets:
        check_address(address, where)
    interval = _seconds(table.get("interval", DEFAULT_INTERVAL), f"{where}: interval")
    timeout = _seconds(table.get("timeout", min(DEFAULT_TIMEOUT, interval)), f"{where}: timeout")
    if timeout > interval:
        raise ConfigError(f"{where}: timeout {timeout:g}s is longer than interval {interval:g}s (Prometheus refuses it too)")
    scheme = table.get("scheme", "http")
    if scheme not in ("http", "https"):
        raise ConfigError(f"{where}: scheme must be http or https, not {scheme!r}")
    path = table.get("metrics_path", "/metrics")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"{where}: metrics_path must start with '/', not {path!r}")
    params_raw = table.get("params", {})
    if not isinstance(params_raw, Mapping):
        raise ConfigError(f"{where}: params must be a table, e.g. params = {{ collect = [\"cpu\"] }}")
    params = {str(k): tuple(map(str, v)) if isinstance(v, list) else (str(v),) for k, v in params_raw.items()}
    limit = table.get("sample_limit", 0)
    body_limit = table.get("body_size_limit", 64 * 2**20)
    for name, number in (("sample_limit", limit), ("body_size_limit", body_limit)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ConfigError(f"{where}: {name} must be a whole number >= 0 (0: no limit), not {number!r}")
    auth = table.get("basic_auth")
    basic = None
    if auth is not None:
        if not isinstance(auth, Mapping) or not isinstance(auth.get("username"), str):
            raise ConfigError(f"{where}: basic_auth must be a table with username (and password or password_file)")
        basic = BasicAuth(auth["username"], str(auth.get("password", "")), str(auth.get("password_file", "")))
    if (table.get("bearer_token") or table.get("bearer_token_file")) and basic is not None:
        raise ConfigError(f"{where}: set bearer_token(_file) or basic_auth, not both")
    translate = table.get("translate", "auto")
    if translate not in TRANSLATE:
        raise ConfigError(f"{where}: translate must be one of {', '.join(map(repr, TRANSLATE))}, not {translate!r} "
                          "(\"node_exporter\": also write node_exporter's series under monitorkit's names)")
    return ScrapeJob(
        job=job, targets=tuple(targets), interval=interval, timeout=timeout, metrics_path=path, scheme=scheme,
        params=params, labels=_labels(table.get("labels", {}), where), honor_labels=bool(table.get("honor_labels", False)),
        honor_timestamps=bool(table.get("honor_timestamps", True)), sample_limit=limit, body_size_limit=body_limit,
        bearer_token=str(table.get("bearer_token", "")), bearer_token_file=str(table.get("bearer_token_file", "")),
        basic_auth=basic, target_files=tuple(files), ca_file=str(table.get("ca_file", "")),
        insecure_skip_verify=bool(table.get("insecure_skip_verify", False)), translate=translate,
    )


def check_address(address: object, where: str) -> str:
    """Return ``host:port`` if it is one, else raise ConfigError."""
    if not isinstance(address, str) or not _ADDRESS_RE.match(address):
        raise ConfigError(f"{where}: target {address!r} is not host:port (e.g. \"127.0.0.1:9100\"); "
                          "the scheme and path are set with scheme and metrics_path")
    return address


def jobs_from_settings(settings: Settings) -> list[ScrapeJob]:
    """Return the ``[[scrape]]`` jobs of the settings (none configured: an empty list)."""
    try:
        section = settings["scrape"]
    except KeyError:
        return []
    tables = section.get("jobs", []) if isinstance(section, Mapping) else section
    if not isinstance(tables, list):
        raise ConfigError("scrape jobs must be [[scrape]] tables")
    jobs = [parse_job(t, i) for i, t in enumerate(tables)]
    names = [j.job for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"[[scrape]]: job name(s) {', '.join(dup)} used twice; each job needs its own name")
    return jobs


def target(job: ScrapeJob, address: str, extra: Mapping[str, str] | None = None) -> Target:
    """Return the target of ``address`` with its labels: job, instance, the job's and the file's labels."""
    labels = {"job": job.job, "instance": address, **job.labels, **(extra or {})}
    host = labels.pop("host", None) or host_of(labels["instance"])
    return Target(job, address, labels, host)


def read_target_file(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Return (address, labels) of a file_sd-style JSON or YAML file; raise ConfigError naming what is wrong."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read target file {path}: {exc.strerror}") from None
    if path.suffix in (".yml", ".yaml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"target file {path} is not valid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"target file {path} is not valid JSON: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(f"target file {path} must hold a list of {{targets: [...], labels: {{...}}}} groups")
    out: list[tuple[str, dict[str, str]]] = []
    for i, group in enumerate(data):
        where = f"target file {path}, group {i + 1}"
        if not isinstance(group, Mapping) or not isinstance(group.get("targets", []), list):
            raise ConfigError(f'{where} must be {{"targets": ["host:port", ...], "labels": {{...}}}}')
        labels = _labels(group.get("labels") or {}, where)
        out.extend((check_address(a, where), labels) for a in group.get("targets", []))
    return out


def target_files(job: ScrapeJob, base: Path | None = None) -> list[Path]:
    """Return the files matching the job's ``target_files`` patterns (relative to ``base``)."""
    out: list[Path] = []
    for pattern in job.target_files:
        full = pattern if Path(pattern).is_absolute() or base is None else str(base / pattern)
        out.extend(Path(p) for p in sorted(glob.glob(full)))
    return out


class TargetFiles:
    """Target files read again only when their modification time changes; a broken file keeps its last good list."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = base
        self.errors: dict[str, str] = {}
        self._read: dict[str, tuple[float, list[tuple[str, dict[str, str]]]]] = {}

    def groups(self, job: ScrapeJob) -> list[tuple[str, dict[str, str]]]:
        """Return (address, labels) of every file of ``job``, re-reading the changed ones."""
        out: list[tuple[str, dict[str, str]]] = []
        for path in target_files(job, self.base):
            key = str(path)
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue  # removed between glob and stat: gone next time
            known = self._read.get(key)
            if known is None or known[0] != mtime:
                try:
                    self._read[key] = (mtime, read_target_file(path))
                    self.errors.pop(key, None)
                except ConfigError as exc:
                    self.errors[key] = str(exc)
                    self._read[key] = (mtime, known[1] if known else [])
            out.extend(self._read[key][1])
        return out


def resolve_targets(jobs: Iterable[ScrapeJob], files: TargetFiles | None = None) -> list[Target]:
    """Return every target of ``jobs``, static ones first, then those of their target files (duplicates once)."""
    files = files or TargetFiles()
    targets: list[Target] = []
    for job in jobs:
        seen: set[str] = set()
        for address, labels in [(a, {}) for a in job.targets] + files.groups(job):
            if address not in seen:
                seen.add(address)
                targets.append(target(job, address, labels))
    return targets
