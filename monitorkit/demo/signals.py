"""The demo's synthetic signals: host metrics with daily cycles, protocol requests and tool runs.

Each host gets its own random stream (seeded by the demo seed and the host's index), so a host's
values do not change when hosts are added. ``monitorkit.demo`` writes what ``build_host`` returns.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

# The bucket layouts and 'le' spelling of monitorkit.instrument, so demo histograms look like real ones.
from monitorkit.instrument.metrics import DEFAULT_BUCKETS as LATENCY_BUCKETS
from monitorkit.instrument.metrics import format_le
from monitorkit.instrument.tools import TOOL_BUCKETS

if TYPE_CHECKING:
    from monitorkit.demo.config import DemoConfig, Incident

GIB = 1024**3

# One series: (host, name, labels, one value per step).
Series = tuple[str, str, dict[str, str], np.ndarray]


class Run(NamedTuple):
    """One tool run of the demo's worker hosts (a row of the ``executions`` table)."""

    started: datetime
    host: str
    tool: str
    duration_s: float
    outcome: str


class DemoData(NamedTuple):
    """Every series (host, name, labels, values per step) and every tool run of a config."""

    series: list[Series]
    runs: list[Run]


class _Host:
    """The series of one host as they are built."""

    def __init__(self, config: DemoConfig, index: int, name: str, incidents: list[Incident]) -> None:
        self.config = config
        self.name = name
        self.role = self.name.split("-")[0]
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, index]))
        self.t = np.arange(config.steps, dtype=np.int64) * config.step
        self.load = daily_load(config, self.t)
        self.windows: dict[str, np.ndarray] = {i.kind: self.mask(i.start, i.end) for i in incidents if i.host == self.name}
        self.series: list[Series] = []
        self.runs: list[Run] = []

    def mask(self, start: datetime, end: datetime) -> np.ndarray:
        t0, t1 = ((x - self.config.start).total_seconds() for x in (start, end))
        return (self.t >= t0) & (self.t < t1)

    def window(self, kind: str) -> np.ndarray:
        return self.windows.get(kind, np.zeros(len(self.t), dtype=bool))

    def add(self, name: str, values: np.ndarray, **labels: str) -> None:
        self.series.append((self.name, name, labels, np.asarray(values, dtype=np.float64)))

    def noise(self, sd: float, seconds: float = 300) -> np.ndarray:
        """Return smooth noise with standard deviation about ``sd`` (correlated over ``seconds``)."""
        width = max(1, int(seconds // self.config.step))
        raw = self.rng.normal(0.0, sd * math.sqrt(width), len(self.t) + width - 1)
        return np.convolve(raw, np.ones(width) / width, mode="valid")

    def counter(self, per_second: np.ndarray, start: float) -> np.ndarray:
        """Return a cumulative counter from a per-second rate, with Poisson noise on each step's increase."""
        return start + np.cumsum(self.rng.poisson(np.maximum(per_second, 0) * self.config.step))


def build_host(config: DemoConfig, index: int, name: str, incidents: list[Incident]) -> tuple[list[Series], list[Run]]:
    """Return the series and tool runs of host ``name`` (the ``index``-th) with its incidents injected."""
    host = _Host(config, index, name, incidents)
    _cpu(host)
    _memory_disk(host)
    _network(host)
    if host.role == "web":
        _protocol(host)
    if host.role == "worker":
        _tools(host)
    return host.series, host.runs


def _cpu(h: _Host) -> None:
    base, amp, ncpu = {"web": (12, 50, 4), "db": (20, 25, 8), "worker": (8, 30, 4)}[h.role]
    hot = h.window("cpu_saturation")
    cpu = np.clip(base + amp * h.load + h.noise(3), 1, 85)
    cpu = np.where(hot, np.clip(97 + h.rng.normal(0, 0.8, len(cpu)), 95.5, 99.9), cpu)
    h.add("cpu_percent", np.round(cpu, 1))
    for k in range(ncpu):
        core = np.where(hot, np.clip(cpu + h.rng.normal(0, 1, len(cpu)), 95.1, 100), np.clip(cpu + h.noise(4, 60), 0, 88))
        h.add("cpu_percent", np.round(core, 1), cpu=str(k))
    busy = cpu / 100 * ncpu
    for mode, share in (("user", 0.75), ("system", 0.2), ("iowait", 0.05)):
        h.add("cpu_seconds_total", np.round(86400.0 * ncpu * share + np.cumsum(busy * share * h.config.step), 2), mode=mode)
    h.add("cpu_seconds_total", np.round(86400.0 * ncpu + np.cumsum((ncpu - busy) * h.config.step), 2), mode="idle")
    load1 = np.clip(busy * 1.2 + h.noise(0.1, 60), 0, None)
    h.add("load1", np.round(load1, 2))
    for name, window in (("load5", 300), ("load15", 900)):
        h.add(name, np.round(_ema(load1, 1 - math.exp(-h.config.step / window)), 2))
    h.add("cpu_count", np.full(len(cpu), float(ncpu)))
    h.add("processes_count", np.round(140 + 40 * h.load + h.noise(4)))


def _ema(values: np.ndarray, alpha: float) -> np.ndarray:
    out = np.empty_like(values)
    acc = float(values[0])
    for i, v in enumerate(values.tolist()):
        acc += alpha * (v - acc)
        out[i] = acc
    return out


def _memory_disk(h: _Host) -> None:
    frac = h.t / (h.config.days * 86400)
    total = {"web": 16, "db": 64, "worker": 8}[h.role] * GIB
    if "memory_leak" in h.windows:  # 40 % at the start, 70 % at 60/72 of the range
        pct = 40 + 36 * frac + np.clip(h.noise(0.05), -0.1, 0.1)
    else:
        pct = {"web": 45, "db": 52, "worker": 35}[h.role] + 6 * h.load + h.noise(0.5)
    used = np.round(pct / 100 * total)
    h.add("memory_total_bytes", np.full(len(pct), float(total)))
    h.add("memory_used_bytes", used)
    h.add("memory_available_bytes", total - used)
    h.add("memory_free_bytes", np.round((total - used) * 0.25))
    h.add("memory_percent", np.round(pct, 1))
    for mount, device, fstype, size, start in (("/", "/dev/sda1", "ext4", 100, 35.0), ("/var", "/dev/sdb1", "xfs", 500, 50.0)):
        jitter = np.clip(h.noise(0.01), -0.02, 0.02)
        pct = start + 0.02 * h.t / 3600 + jitter
        if mount == "/var" and "disk_fill" in h.windows:  # 72 % flat, then up to 90 % at 64/72 of the range
            pct = 72 + np.clip(frac - 1 / 3, 0, None) * 18 / (64 / 72 - 1 / 3) + jitter
        total_b = size * GIB
        used_b = np.round(pct / 100 * total_b / 4096) * 4096
        labels = {"mount": mount, "device": device, "fstype": fstype}
        h.add("disk_total_bytes", np.full(len(pct), float(total_b)), **labels)
        h.add("disk_used_bytes", used_b, **labels)
        h.add("disk_free_bytes", total_b - used_b, **labels)
        h.add("disk_used_percent", np.round(used_b / total_b * 100, 1), **labels)
    io = {"web": (1e6, 2e6), "db": (8e6, 12e6), "worker": (3e6, 4e6)}[h.role]
    for disk in ("sda", "sdb"):
        scale = 1.0 if disk == "sda" else 2.5
        read = io[0] * scale * (0.2 + h.load) * np.exp(h.noise(0.2))
        written = io[1] * scale * (0.2 + h.load) * np.exp(h.noise(0.2))
        if disk == "sdb" and "disk_fill" in h.windows:  # the bytes that fill /var, from a third of the range on
            fill_rate = 0.18 * 500 * GIB / ((64 / 72 - 1 / 3) * h.config.days * 86400)
            written = written + np.where(frac > 1 / 3, fill_rate, 0.0)
        h.add("disk_read_bytes_total", np.round(np.cumsum(read * h.config.step)), disk=disk)
        h.add("disk_written_bytes_total", np.round(np.cumsum(written * h.config.step)), disk=disk)
        busy = np.clip(0.02 + (read + written) / 200e6, 0, 1)
        h.add("disk_busy_seconds_total", np.round(np.cumsum(busy * h.config.step), 3), disk=disk)


def _network(h: _Host) -> None:
    flap = h.window("nic_flapping")
    if flap.any():
        since = h.t - h.t[flap][0]
        down = flap & (since % 300 < 120)
    else:
        down = flap
    up = np.where(down, 0.0, 1.0)
    recv_rate, sent_rate = {"web": (5e6, 12e6), "db": (3e6, 2e6), "worker": (1e6, 0.5e6)}[h.role]
    shape = (0.1 + h.load) * np.exp(h.noise(0.15)) * up
    h.add("net_bytes_recv_total", np.round(np.cumsum(recv_rate * shape * h.config.step)), nic="eth0")
    h.add("net_bytes_sent_total", np.round(np.cumsum(sent_rate * shape * h.config.step)), nic="eth0")
    h.add("net_errors_in_total", h.counter(np.where(flap, 2.0, 1e-4), 0), nic="eth0")
    h.add("net_errors_out_total", h.counter(np.where(flap, 0.5, 5e-5), 0), nic="eth0")
    h.add("net_up", up, nic="eth0")
    conns = {"web": 300, "db": 80, "worker": 20}[h.role] * (0.2 + h.load) + h.noise(3)
    h.add("tcp_current_established", np.round(np.clip(np.where(down, conns * 0.1, conns), 0, None)))
    h.add("tcp_retransmitted_segments_total", h.counter(np.where(flap, 40.0, 0.3), 1000))


def _phi(x: np.ndarray) -> np.ndarray:
    """Return the standard normal CDF (Abramowitz-Stegun 7.1.26, error < 1.5e-7)."""
    z = np.abs(x) / math.sqrt(2)
    k = 1 / (1 + 0.3275911 * z)
    poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))))
    erf = 1 - poly * np.exp(-z * z)
    return 0.5 * (1 + np.sign(x) * erf)


def _histogram(h: _Host, name: str, counts: np.ndarray, median: np.ndarray, sigma: float,
               buckets: tuple[float, ...], **labels: str) -> None:
    """Add a Prometheus histogram (``_bucket`` per ``le``, ``_sum``, ``_count``) of lognormal durations."""
    edges = np.log(np.array(buckets))[None, :]
    cdf = _phi((edges - np.log(median)[:, None]) / sigma)
    probs = np.diff(np.concatenate([np.zeros((len(counts), 1)), cdf, np.ones((len(counts), 1))], axis=1), axis=1)
    per_bucket = h.rng.multinomial(counts, np.clip(probs, 0, None) / np.clip(probs, 0, None).sum(axis=1, keepdims=True))
    cumulative = np.cumsum(np.cumsum(per_bucket, axis=1), axis=0)
    for i, le in enumerate((*buckets, math.inf)):
        h.add(f"{name}_bucket", cumulative[:, i], **labels, le=format_le(le))
    mean = median * math.exp(sigma * sigma / 2)
    h.add(f"{name}_sum", np.round(np.cumsum(counts * mean * np.exp(h.rng.normal(0, 0.05, len(counts)))), 3), **labels)
    h.add(f"{name}_count", cumulative[:, -1], **labels)


def _protocol(h: _Host) -> None:
    bad = h.window("protocol_errors")
    cpu = h.series[0][3]  # cpu_percent total, added first
    slow = 1 + 5 * np.clip(cpu - 75, 0, None) / 25  # latency grows once CPU passes 75 %
    for method, rate, median, p404, p500 in (("GET", (5, 40), 0.04, 0.02, 0.10), ("POST", (1, 8), 0.12, 0.0, 0.30)):
        lam = (rate[0] + rate[1] * h.load) * h.config.step
        n = h.rng.poisson(lam)
        fail = np.where(bad, p500, 0.001)
        per_status = h.rng.multinomial(n, np.stack([1 - p404 - fail, np.full(len(n), p404), fail], axis=1))
        statuses = ("200", "404", "500") if p404 else ("200", "500")
        columns = (0, 1, 2) if p404 else (0, 2)
        for status, col in zip(statuses, columns, strict=True):
            h.add("protocol_requests_total", np.cumsum(per_status[:, col]), protocol="http", method=method, status=status)
        h.add("protocol_errors_total", np.cumsum(per_status[:, 2]), protocol="http", method=method, error_type="ServerError")
        _histogram(h, "protocol_request_duration_seconds", n, median * slow, 0.6, LATENCY_BUCKETS,
                   protocol="http", method=method)


def _tools(h: _Host) -> None:
    slow = h.window("slow_tool")
    step = h.config.step
    on_the_hour = (h.t % 3600) < step
    plans = (
        ("reindex", h.rng.poisson(np.full(len(h.t), step / 60)), 2.0, 0.3),
        ("summarize", h.rng.poisson((0.02 + 0.15 * h.load) * step), 0.8, 0.5),
        ("backup", on_the_hour.astype(np.int64), 120.0, 0.1),
    )
    for tool, counts, median, sigma in plans:
        index = np.repeat(np.arange(len(counts)), counts)
        is_slow = slow[index] if tool == "reindex" else np.zeros(len(index), dtype=bool)
        duration = np.exp(np.log(np.where(is_slow, 40.0, median)) + h.rng.normal(0, np.where(is_slow, 0.25, sigma)))
        draw = h.rng.random(len(index))
        failed = np.where(draw > np.where(is_slow, 0.9, 0.98), "error", "ok")
        outcome = np.where(draw < np.where(is_slow, 0.3, 0.0), "timeout", failed)
        for name in ("ok", "error", "timeout") if tool == "reindex" else ("ok", "error"):
            per_step = np.bincount(index[outcome == name], minlength=len(counts))
            h.add("tool_runs_total", np.cumsum(per_step), tool=tool, outcome=name)
        slots = np.searchsorted(np.array(TOOL_BUCKETS), duration, side="left")
        per_bucket = np.zeros((len(counts), len(TOOL_BUCKETS) + 1), dtype=np.int64)
        np.add.at(per_bucket, (index, slots), 1)
        cumulative = np.cumsum(np.cumsum(per_bucket, axis=1), axis=0)
        for i, le in enumerate((*TOOL_BUCKETS, math.inf)):
            h.add("tool_run_duration_seconds_bucket", cumulative[:, i], tool=tool, le=format_le(le))
        h.add("tool_run_duration_seconds_sum", np.round(np.cumsum(np.bincount(index, duration, len(counts))), 3), tool=tool)
        h.add("tool_run_duration_seconds_count", cumulative[:, -1], tool=tool)
        if tool != "summarize":  # the executions table keeps the rarer tools' runs
            offsets = h.rng.random(len(index)) * step
            for i, off, dur, out in zip(index.tolist(), offsets.tolist(), duration.tolist(), outcome.tolist(), strict=True):
                when = h.config.start + timedelta(seconds=int(h.t[i]) + round(off, 3))
                h.runs.append(Run(when, h.name, tool, round(dur, 3), out))


def daily_load(config: DemoConfig, seconds: np.ndarray) -> np.ndarray:
    """Return the business-day load shape in [0, 1]: low at 04:00 UTC, peak at 16:00, weekends halved."""
    since_midnight = seconds + config.start.hour * 3600 + config.start.minute * 60
    hour = (since_midnight / 3600.0) % 24
    shape = 0.5 - 0.5 * np.cos(2 * math.pi * (hour - 4) / 24)
    weekday = (config.start.weekday() + since_midnight // 86400) % 7
    return np.where(weekday >= 5, 0.5 * shape, shape)


