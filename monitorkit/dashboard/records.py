"""The records the feed hands to every session: series, points, alerts, health and tool runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# Cumulative series (Prometheus counters and histogram parts) are shown as per-second rates.
CUMULATIVE_SUFFIXES = ("_total", "_bucket", "_count")


class SeriesInfo(NamedTuple):
    """One series: ``SeriesInfo(3, "web1", "cpu_percent", {"cpu": "0"})``."""

    series_id: int
    host: str
    name: str
    labels: Mapping[str, str]

    @property
    def cumulative(self) -> bool:
        """Tell whether the series only grows (a counter), so its rate is what to chart."""
        return self.name.endswith(CUMULATIVE_SUFFIXES)


class Points(NamedTuple):
    """Times (epoch milliseconds) and values of one series, oldest first.

    History read from a step coarser than the samples also carries each step's minimum and
    maximum (``lows``, ``highs``) and how many samples it averages (``counts``); empty otherwise.
    """

    times: tuple[float, ...]
    values: tuple[float, ...]
    lows: tuple[float, ...] = ()
    highs: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()


class AlertRow(NamedTuple):
    """One alert instance as the ``alerts`` table holds it (times in epoch ms)."""

    id: int
    rule: str
    labels: Mapping[str, str]
    severity: str
    state: str
    value: float | None
    summary: str
    since_ms: float | None
    resolved_ms: float | None
    updated_ms: float
    acked_by: str | None
    silenced_by: int | None


class HealthRow(NamedTuple):
    """The current status of one component (ok, degraded or failing)."""

    component: str
    check_name: str
    status: str
    reason: str
    since_ms: float | None
    updated_ms: float | None


class HealthEvent(NamedTuple):
    """A change of one component's status."""

    time_ms: float
    component: str
    status: str
    previous: str | None
    reason: str


class ExecutionRow(NamedTuple):
    """One recent tool run from the ``executions`` table."""

    run_id: str
    tool: str
    started_ms: float
    duration_s: float
    outcome: str
    error_type: str | None
    host: str


@dataclass(frozen=True)
class Delta:
    """What one poll found that the previous one had not: every session applies the same Delta."""

    seq: int
    polled_ms: float
    new_series: tuple[SeriesInfo, ...] = ()
    values: Mapping[int, Points] = field(default_factory=dict)
    rates: Mapping[int, Points] = field(default_factory=dict)
    alerts: tuple[AlertRow, ...] = ()
    health: tuple[HealthRow, ...] = ()
    health_events: tuple[HealthEvent, ...] = ()
    executions: tuple[ExecutionRow, ...] | None = None
    newest_ms: float | None = None
    ended: tuple[int, ...] = ()  # series a stale marker ended: gone from ``Feed.latest`` until a newer sample

    @property
    def points(self) -> int:
        """Return how many sample points (values and rates) this delta carries."""
        return sum(len(p.times) for p in self.values.values()) + sum(len(p.times) for p in self.rates.values())


def merge_deltas(deltas: list[Delta]) -> Delta:
    """Return one Delta equal to applying ``deltas`` in order (a session that fell behind catches up in one step)."""
    if len(deltas) == 1:
        return deltas[0]

    def join(field: str) -> dict[int, Points]:
        out: dict[int, tuple[list[float], list[float]]] = {}
        for d in deltas:
            for sid, pts in getattr(d, field).items():
                times, values = out.setdefault(sid, ([], []))
                times.extend(pts.times)
                values.extend(pts.values)
        return {sid: Points(tuple(t), tuple(v)) for sid, (t, v) in out.items()}

    runs = [d.executions for d in deltas if d.executions is not None]
    ended: dict[int, None] = {}  # ordered: a series that ended, then came back, is not ended
    for d in deltas:
        for sid in d.values:
            ended.pop(sid, None)
        ended.update(dict.fromkeys(d.ended))
    newest = [d.newest_ms for d in deltas if d.newest_ms is not None]
    last = deltas[-1]
    return Delta(
        last.seq, last.polled_ms, tuple(s for d in deltas for s in d.new_series), join("values"), join("rates"),
        tuple(a for d in deltas for a in d.alerts), tuple(h for d in deltas for h in d.health),
        tuple(e for d in deltas for e in d.health_events), runs[-1] if runs else None, max(newest) if newest else None,
        tuple(ended),
    )
