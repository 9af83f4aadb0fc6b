"""A deterministic demo database: several hosts over several days with documented incidents.

``generate("data/demo.duckdb", DemoConfig(seed=42, days=3, hosts=3))`` writes host metrics (the
names of monitorkit's collectors) and application metrics (protocol requests, tool runs) through
``monitorkit.Store``, then rolls them up. ``plan_incidents(config)`` (``INCIDENTS`` for the
defaults) says where each injected incident is, so notebooks and tests can check they are found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from monitorkit.demo.config import (
    CHUNK_ROWS,
    DEFAULT_DAYS,
    DEFAULT_HOSTS,
    DEFAULT_SEED,
    DEFAULT_START,
    DEFAULT_STEP,
    ERROR_TYPES,
    HISTOGRAMS,
    MAX_ROWS,
    ROLES,
    DemoArgumentError,
    DemoConfig,
    Direction,
    Incident,
    IncidentKind,
)
from monitorkit.demo.signals import DemoData, Run, build_host
from monitorkit.samples import Sample


class DemoReport(NamedTuple):
    """What ``generate`` wrote."""

    path: Path
    config: DemoConfig
    samples: int
    series: int
    executions: int
    incidents: list[Incident]


def check_config(config: DemoConfig) -> DemoConfig:
    """Return ``config`` if every field is in range, else raise DemoArgumentError saying what to pass."""
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise DemoArgumentError(f"seed must be a whole number >= 0, got {config.seed!r}")
    if isinstance(config.days, bool) or not isinstance(config.days, int) or not 1 <= config.days <= 366:
        raise DemoArgumentError(f"days must be a whole number from 1 to 366, got {config.days!r}")
    if isinstance(config.hosts, bool) or not isinstance(config.hosts, int) or not 1 <= config.hosts <= 12:
        raise DemoArgumentError(f"hosts must be a whole number from 1 to 12, got {config.hosts!r}")
    if not isinstance(config.step, int) or not 1 <= config.step <= 3600 or 86400 % config.step:
        raise DemoArgumentError(
            f"step must be a number of seconds from 1 to 3600 that divides a day (10, 30, 60, ...), got {config.step!r}"
        )
    if not isinstance(config.start, datetime) or config.start.tzinfo is None:
        raise DemoArgumentError("start must be an aware datetime, e.g. 2026-01-05T00:00:00+00:00")
    rows = estimate_rows(config)
    if rows > MAX_ROWS:
        wider = next((s for s in (30, 60, 300, 900) if estimate_rows(config._replace(step=s)) <= MAX_ROWS), 3600)
        raise DemoArgumentError(
            f"{config.days} days x {config.hosts} hosts at a {config.step} s step is about {rows:,} samples "
            f"(the limit is {MAX_ROWS:,}); pass a larger step such as --step {wider}, or fewer days or hosts"
        )
    return config


@cache
def _series_per_role() -> dict[str, int]:
    tiny = build(DemoConfig(days=1, hosts=len(ROLES), step=3600))
    return {role: sum(1 for s in tiny.series if s[0].startswith(role + "-")) for role in ROLES}


def estimate_rows(config: DemoConfig) -> int:
    """Return how many raw samples ``config`` writes."""
    per_role = _series_per_role()
    return config.steps * sum(per_role[host.split("-")[0]] for host in config.host_names)


def plan_incidents(config: DemoConfig) -> list[Incident]:
    """Return the incidents ``generate(config)`` injects, on the hosts it has."""
    web, db, worker = (f"{role}-1" for role in ROLES)
    at, end = config.at, config.end
    planned = [
        Incident("nic_flapping", db, at(20), at(20) + timedelta(minutes=30), "net_up",
                 "eth0 goes down 2 min out of every 5 for 30 min; receive errors and TCP retransmits jump",
                 {"nic": "eth0"}, 1.0, "below"),
        Incident("cpu_saturation", web, at(38), at(38) + timedelta(minutes=45), "cpu_percent",
                 "a runaway job pins every core above 95 %; load and request latency rise with it",
                 {}, 90.0, "above"),
        Incident("slow_tool", worker, at(44), at(44) + timedelta(hours=3), "tool_run_duration_seconds",
                 "the reindex tool takes about 40 s per run instead of 2 s and 30 % of runs time out",
                 {"tool": "reindex"}, 10.0, "above"),
        Incident("protocol_errors", web, at(57), at(57) + timedelta(minutes=40), "protocol_errors_total",
                 "a bad deploy makes 30 % of POST and 10 % of GET requests fail with status 500",
                 {"protocol": "http"}, 0.5, "above"),
        Incident("memory_leak", worker, at(60), end, "memory_percent",
                 "memory grows steadily from 40 % at the start and passes 70 % here (76 % at the end)",
                 {}, 70.0, "above"),
        Incident("disk_fill", db, at(64), end, "disk_used_percent",
                 "/var fills from 72 % at a third of the range and passes 90 % here (93.6 % at the end)",
                 {"mount": "/var"}, 90.0, "above"),
    ]
    hosts = set(config.host_names)
    return [i for i in planned if i.host in hosts]


INCIDENTS: list[Incident] = plan_incidents(DemoConfig())


def build(config: DemoConfig) -> DemoData:
    """Return every series and tool run of ``config`` (deterministic for a seed)."""
    incidents = plan_incidents(config)
    data = DemoData([], [])
    for index, host in enumerate(config.host_names):
        series, runs = build_host(config, index, host, incidents)
        data.series.extend(series)
        data.runs.extend(runs)
    return data


def _arrow_chunks(config: DemoConfig, data: DemoData, ids: list[int]) -> Iterator[tuple[int, Any]]:
    """Yield (steps done, Arrow table of raw rows) in time order, every series at each step."""
    import pyarrow as pa

    per_chunk = max(1, CHUNK_ROWS // max(1, len(data.series)))
    matrix = np.stack([values for _, _, _, values in data.series])  # series x steps
    sids = np.asarray(ids, dtype=np.int32)
    start = np.datetime64(config.start.replace(tzinfo=None), "us")
    for first in range(1, config.steps, per_chunk):  # step 0 went through Store.write
        last = min(config.steps, first + per_chunk)
        steps = np.arange(first, last, dtype=np.int64)
        times = start + (steps * config.step * 1_000_000).astype("timedelta64[us]")
        yield last, pa.table({
            "time": pa.array(np.repeat(times, len(sids)), pa.timestamp("us", tz="UTC")),
            "series_id": pa.array(np.tile(sids, len(steps))),
            "value": pa.array(matrix[:, first:last].T.ravel()),
        })


def _insert_raw(con: Any, *, table: Any) -> int:
    con.register("_demo_raw", table)
    try:
        con.execute("INSERT INTO samples_raw SELECT time, series_id, value FROM _demo_raw")
    finally:
        con.unregister("_demo_raw")
    return int(table.num_rows)


def generate(
    path: str | Path,
    config: DemoConfig | None = None,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Write the demo database at ``path`` (refusing an existing file unless ``force``); return what was written.

    The first time step goes through ``Store.write`` (which validates it and registers every
    series); the rest is inserted as Arrow tables in the store's writer thread, in time order,
    then rolled up. ``progress(done, total)`` is called as time steps are written.
    """
    from monitorkit.owner.schema import SCHEMA
    from monitorkit.store import Store

    config = check_config(config or DemoConfig())
    path = Path(path)
    _prepare_path(path, force)
    data = build(config)
    total = config.steps + 1
    with Store(path, schema=SCHEMA) as store:
        first = [Sample(config.start, name, labels, float(values[0]), host) for host, name, labels, values in data.series]
        written = store.write(first)  # validated, and the writer assigns the series ids
        store.flush()
        known = {(h, n, tuple(sorted(lab.items()))): sid
                 for sid, h, n, lab in store.query("SELECT series_id, host, name, labels FROM series")}
        ids = [known[(h, n, tuple(sorted(lab.items())))] for h, n, lab, _ in data.series]
        pending = None
        for done, table in _arrow_chunks(config, data, ids):
            future = store.submit(partial(_insert_raw, table=table))
            if pending is not None:  # one batch in flight while the next is built
                written += int(pending.result())
            pending = future
            if progress:
                progress(done, total)
        if pending is not None:
            written += int(pending.result())
        store.rollup(config.end + timedelta(minutes=1))
        executions = int(store.submit(lambda con: _insert_runs(con, config, data.runs)).result())
        if progress:
            progress(total, total)
    return DemoReport(path, config, written, len(data.series), executions, plan_incidents(config))


def _insert_runs(con: Any, config: DemoConfig, runs: list[Run]) -> int:
    """Insert the tool runs into ``executions`` when that table exists; return how many."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'executions'").fetchone()
    if not runs or not exists or not exists[0]:
        return 0
    import pyarrow as pa

    table = pa.table({
        "run_id": [f"demo-{config.seed}-{i:07d}" for i in range(len(runs))],
        "tool": [r.tool for r in runs],
        "started": pa.array([r.started for r in runs], pa.timestamp("us", tz="UTC")),
        "duration_s": [r.duration_s for r in runs],
        "outcome": [r.outcome for r in runs],
        "error_type": [ERROR_TYPES.get(r.outcome) for r in runs],
        "host": [r.host for r in runs],
    })
    con.register("_demo_runs", table)
    try:
        con.execute(
            """INSERT INTO executions (run_id, tool, started, duration_s, outcome, error_type, error_message,
                                       labels, host, pid)
               SELECT run_id, tool, started, duration_s, outcome, error_type,
                      CASE WHEN error_type IS NULL THEN NULL ELSE tool || ' failed: ' || outcome END,
                      MAP {'source': 'demo'}, host, 4242
               FROM _demo_runs"""
        )
    finally:
        con.unregister("_demo_runs")
    return len(runs)


def _prepare_path(path: Path, force: bool) -> None:
    from monitorkit.owner.sidecar import read_owner

    owner = read_owner(path)
    if owner is not None:
        raise DemoArgumentError(f"{path} is owned by running process {owner.pid}; stop it or choose another --db")
    if path.is_dir():
        raise DemoArgumentError(f"{path} is a folder; --db must name a database file")
    if path.exists() or Path(f"{path}.wal").exists():
        if not force:
            raise DemoArgumentError(f"{path} already exists; pass --force to replace it, or choose another --db")
        path.unlink(missing_ok=True)
        Path(f"{path}.wal").unlink(missing_ok=True)


def fingerprint(con: Any) -> tuple[int, int, str]:
    """Return (series, samples, digest) of a database's raw samples: equal content gives equal results."""
    row = con.execute(
        """SELECT (SELECT count(*) FROM series), sum(n), md5(string_agg(series_key || ':' || h::VARCHAR, ',' ORDER BY series_key))
           FROM (SELECT s.series_key, count(*) AS n, sum(hash(r.time, r.value))::HUGEINT AS h
                 FROM samples_raw r JOIN series s USING (series_id) GROUP BY s.series_key)"""
    ).fetchone()
    return int(row[0]), int(row[1] or 0), str(row[2])


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def incident_sql(incident: Incident, bucket: int = 300) -> str:
    """Return SQL giving (time, value) of what ``incident.threshold`` applies to, on its host and labels.

    A gauge gives its samples (the max, or the min for ``below``, over matching series); a counter
    its per-second increase per ``bucket`` seconds; a histogram its mean (``_sum`` / ``_count`` increase).
    """
    where = f"host = {_quote(incident.host)}" + "".join(
        f" AND labels[{_quote(k)}] = {_quote(v)}" for k, v in sorted(incident.labels.items())
    )
    if incident.metric.endswith("_total"):
        names, value = [incident.metric], f"sum(inc) / {bucket}"
    elif incident.metric in HISTOGRAMS:
        names = [incident.metric + "_sum", incident.metric + "_count"]
        value = f"sum(inc) FILTER (name = {_quote(names[0])}) / nullif(sum(inc) FILTER (name = {_quote(names[1])}), 0)"
    else:
        agg = "min" if incident.direction == "below" else "max"
        return (f"SELECT time, {agg}(value) AS value FROM samples WHERE name = {_quote(incident.metric)} AND {where} "
                "GROUP BY time ORDER BY time")
    in_names = ", ".join(_quote(n) for n in names)
    return f"""
        WITH last AS (
            SELECT time_bucket(to_seconds({bucket}), time) AS time, name, series_id, arg_max(value, time) AS v
            FROM samples WHERE name IN ({in_names}) AND {where} GROUP BY ALL
        ), inc AS (
            SELECT time, name, v - lag(v) OVER (PARTITION BY series_id ORDER BY time) AS inc FROM last
        )
        SELECT time, {value} AS value FROM inc WHERE inc IS NOT NULL GROUP BY time HAVING value IS NOT NULL ORDER BY time"""


def observed(con: Any, incident: Incident, bucket: int = 300) -> tuple[datetime, datetime] | None:
    """Return the first and last time the incident's value is past its threshold, or None if never."""
    op = "<" if incident.direction == "below" else ">"
    row = con.execute(
        f"SELECT min(time), max(time) FROM ({incident_sql(incident, bucket)}) WHERE value {op} {incident.threshold!r}"
    ).fetchone()
    return None if row is None or row[0] is None else (row[0], row[1])


__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_HOSTS",
    "DEFAULT_SEED",
    "DEFAULT_START",
    "DEFAULT_STEP",
    "DemoArgumentError",
    "DemoConfig",
    "DemoReport",
    "Direction",
    "Incident",
    "IncidentKind",
    "build",
    "check_config",
    "estimate_rows",
    "fingerprint",
    "generate",
    "incident_sql",
    "observed",
    "plan_incidents",
]
