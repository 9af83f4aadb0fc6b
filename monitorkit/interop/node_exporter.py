"""node_exporter's series written again under monitorkit's names, so host panels, rules and views work on a scraped host.

``NodeTranslator().translate(samples)`` takes the stored samples of one scrape of a
prometheus-node-exporter and returns the equivalent monitorkit series (``cpu_percent``,
``memory_available_bytes``, ``disk_used_percent``, ``net_bytes_recv_total``, ``load1``, ...) with
the same host and target labels (``job``, ``instance``, ...), computed as monitorkit's collectors
compute them from psutil. The node_* series are stored too, unchanged. ``MAPPED`` lists which
monitorkit metric comes from which node_exporter metric; ``NOT_MAPPED`` the ones that have none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

from monitorkit.collectors.disk import DEFAULT_DISK_EXCLUDE, PSEUDO_FSTYPES
from monitorkit.collectors.kernel import STATS
from monitorkit.interop.scrape import TRANSLATE
from monitorkit.samples import HOST, Sample

PAGE_SIZE = 4096  # /proc/vmstat counts swap pages; psutil multiplies by 4 KiB too
IFF_UP = 1  # node_network_flags bit: psutil's isup is this flag, not operstate (loopback's is "unknown")
SOURCE_LABELS = frozenset({"cpu", "mode", "device", "mountpoint", "fstype", "state"})
BUSY_EXCLUDED = ("idle", "iowait")  # psutil: busy = total - idle - iowait
PROCESS_STATES = {"R": "running", "S": "sleeping", "D": "disk-sleep", "T": "stopped", "t": "tracing-stop",
                  "Z": "zombie", "X": "dead", "x": "dead", "K": "wake-kill", "W": "waking", "I": "idle",
                  "P": "parked"}  # psutil's names of /proc/<pid>/stat states

# Same value, new name (the labels listed are renamed: node_exporter's ``device`` is monitorkit's ``disk``).
RENAMED: dict[str, tuple[str, dict[str, str]]] = {
    "node_load1": ("load1", {}), "node_load5": ("load5", {}), "node_load15": ("load15", {}),
    "node_disk_read_bytes_total": ("disk_read_bytes_total", {"device": "disk"}),
    "node_disk_written_bytes_total": ("disk_written_bytes_total", {"device": "disk"}),
    "node_disk_reads_completed_total": ("disk_reads_total", {"device": "disk"}),
    "node_disk_writes_completed_total": ("disk_writes_total", {"device": "disk"}),
    "node_disk_read_time_seconds_total": ("disk_read_seconds_total", {"device": "disk"}),
    "node_disk_write_time_seconds_total": ("disk_write_seconds_total", {"device": "disk"}),
    "node_disk_io_time_seconds_total": ("disk_busy_seconds_total", {"device": "disk"}),
    "node_network_receive_bytes_total": ("net_bytes_recv_total", {"device": "nic"}),
    "node_network_transmit_bytes_total": ("net_bytes_sent_total", {"device": "nic"}),
    "node_network_receive_packets_total": ("net_packets_recv_total", {"device": "nic"}),
    "node_network_transmit_packets_total": ("net_packets_sent_total", {"device": "nic"}),
    "node_network_receive_errs_total": ("net_errors_in_total", {"device": "nic"}),
    "node_network_transmit_errs_total": ("net_errors_out_total", {"device": "nic"}),
    "node_network_receive_drop_total": ("net_drops_in_total", {"device": "nic"}),
    "node_network_transmit_drop_total": ("net_drops_out_total", {"device": "nic"}),
    # node_exporter's netstat collector names /proc/net/snmp and netstat fields as monitorkit's kernel collector reads them
    **{f"node_netstat_{s.section}_{s.field}": (s.info.name, {}) for s in STATS},
}
NIC_VALUES = {"node_network_flags": "flags", "node_network_up": "up", "node_network_speed_bytes": "speed"}
MEMORY = ("MemTotal", "MemFree", "MemAvailable", "SwapTotal", "SwapFree")
FILESYSTEM = ("node_filesystem_size_bytes", "node_filesystem_free_bytes", "node_filesystem_avail_bytes")
# The node_* metrics computed from (more than a rename), gathered per scrape.
GATHERED = frozenset({
    "node_cpu_seconds_total", "node_cpu_guest_seconds_total", "node_vmstat_pswpin", "node_vmstat_pswpout",
    "node_processes_state", *FILESYSTEM, *NIC_VALUES, *(f"node_memory_{m}_bytes" for m in MEMORY),
})
# Every metric written, with what it is computed from (docs/interop.md prints this table).
MAPPED: dict[str, str] = {
    **{new: old for old, (new, _) in RENAMED.items()},
    "cpu_percent": "node_cpu_seconds_total: 100 × (1 - Δ(idle + iowait) / Δ(all modes)) per cpu and for all",
    "cpu_seconds_total": "node_cpu_seconds_total summed over cpu, plus node_cpu_guest_seconds_total as guest, guest_nice",
    "cpu_count": "the cpu labels of node_cpu_seconds_total",
    "memory_total_bytes": "node_memory_MemTotal_bytes",
    "memory_free_bytes": "node_memory_MemFree_bytes",
    "memory_available_bytes": "node_memory_MemAvailable_bytes",
    "memory_used_bytes": "MemTotal - MemAvailable",
    "memory_percent": "(MemTotal - MemAvailable) / MemTotal × 100",
    "swap_total_bytes": "node_memory_SwapTotal_bytes",
    "swap_used_bytes": "SwapTotal - SwapFree",
    "swap_percent": "(SwapTotal - SwapFree) / SwapTotal × 100",
    "swap_in_bytes_total": "node_vmstat_pswpin × 4096",
    "swap_out_bytes_total": "node_vmstat_pswpout × 4096",
    "disk_total_bytes": "node_filesystem_size_bytes",
    "disk_free_bytes": "node_filesystem_avail_bytes",
    "disk_used_bytes": "node_filesystem_size_bytes - node_filesystem_free_bytes",
    "disk_used_percent": "used / (used + avail) × 100",
    "net_up": "node_network_flags & IFF_UP (else node_network_up)",
    "net_speed_mbps": "node_network_speed_bytes × 8 / 10⁶ (when positive)",
    "processes": "node_processes_state (the processes collector, off by default)",
    "processes_count": "node_processes_state summed",
}
NOT_MAPPED = ("net_connections", "net_listen", "net_listening_ports", "process_group_*")
# Mapped, but node_exporter 1.5 only writes their sources when started with this flag.
NETSTAT_FIELDS = ("--collector.netstat.fields='^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|"
                  "Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|"
                  "Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab|EstabResets|AttemptFails)|"
                  "Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$'")
NEEDS_FLAG = {
    "tcp_established_resets_total": NETSTAT_FIELDS, "tcp_attempt_fails_total": NETSTAT_FIELDS,
    "processes": "--collector.processes", "processes_count": "--collector.processes",
}

_DISK_EXCLUDE = re.compile(DEFAULT_DISK_EXCLUDE)
Group = tuple[str, tuple[tuple[str, str], ...]]  # host and the target labels (job, instance, ...)


class _Page(NamedTuple):
    """The node_* values of one scrape that need more than a rename, by group."""

    cpu: dict[Group, dict[tuple[str, str], float]]  # (cpu, mode) -> seconds
    guest: dict[Group, dict[str, float]]  # mode (user, nice) -> seconds summed over cpus
    memory: dict[Group, dict[str, float]]
    filesystems: dict[Group, dict[tuple[str, str, str], dict[str, float]]]  # (mount, device, fstype) -> size/free/avail
    nics: dict[Group, dict[str, dict[str, float]]]  # nic -> flags/up/speed
    states: dict[Group, dict[str, float]]
    times: dict[Group, datetime]


def _base(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Return the target labels of a node_* sample: all but node_exporter's own (cpu, mode, device, ...)."""
    return tuple(sorted((k, v) for k, v in labels.items() if k not in SOURCE_LABELS))


class NodeTranslator:
    """Translate scrapes of one target; keeps the previous CPU counters to compute busy percents between scrapes."""

    def __init__(self, mode: str = "auto", local_host: str | None = None) -> None:
        if mode not in TRANSLATE:
            raise ValueError(f"translate must be one of {', '.join(TRANSLATE)}, not {mode!r}")
        self.mode = mode
        # auto skips this machine's own host: its collectors already write these names
        self.local_host = HOST if local_host is None else local_host
        self._cpu: dict[tuple[Group, str | None], tuple[float, float]] = {}  # -> (total, busy) seconds

    def wanted(self, host: str) -> bool:
        """Tell whether series of ``host`` are translated (never with ``none``; ``auto``: not this machine's)."""
        return self.mode == "node_exporter" or (self.mode == "auto" and host != self.local_host)

    def translate(self, samples: Iterable[Sample]) -> list[Sample]:
        """Return the monitorkit series equivalent to the node_* samples among ``samples``."""
        if self.mode == "none":
            return []
        out: list[Sample] = []
        page = _Page({}, {}, {}, {}, {}, {}, {})
        for sample in samples:
            if sample.name.startswith("node_") and self.wanted(sample.host):
                _gather(sample, page, out)
        for group, when in page.times.items():
            host, base = group
            emit = _Emitter(out, when, host, dict(base))
            self._cpu_samples(emit, group, page.cpu.get(group, {}), page.guest.get(group, {}))
            _memory(emit, page.memory.get(group, {}))
            _filesystems(emit, page.filesystems.get(group, {}))
            _nics(emit, page.nics.get(group, {}))
            by_state = page.states.get(group, {})
            for state, n in sorted(by_state.items()):
                emit("processes", n, status=state)
            if by_state:
                emit("processes_count", sum(by_state.values()))
        if len(self._cpu) > 100_000:  # series churn must not grow the state without bound
            self._cpu.clear()
        return out

    def _cpu_samples(self, emit: _Emitter, group: Group, cpu: dict[tuple[str, str], float],
                     guest: dict[str, float]) -> None:
        if not cpu:
            return
        per_cpu: dict[str, list[float]] = {}  # cpu -> [total, busy]
        modes: dict[str, float] = {}
        for (n, mode), seconds in cpu.items():
            sums = per_cpu.setdefault(n, [0.0, 0.0])
            sums[0] += seconds
            if mode not in BUSY_EXCLUDED:
                sums[1] += seconds
            modes[mode] = modes.get(mode, 0.0) + seconds
        total = [sum(v[0] for v in per_cpu.values()), sum(v[1] for v in per_cpu.values())]
        rows: list[tuple[str | None, list[float]]] = [(None, total), *sorted(per_cpu.items())]
        for cpu_name, sums in rows:
            percent = self._busy(group, cpu_name, sums[0], sums[1])
            if percent is not None:
                if cpu_name is None:
                    emit("cpu_percent", percent)  # the all-CPU series has no cpu label
                else:
                    emit("cpu_percent", percent, cpu=cpu_name)
        for mode, seconds in sorted({**modes, **guest}.items()):
            emit("cpu_seconds_total", seconds, mode=mode)
        emit("cpu_count", float(len(per_cpu)))

    def _busy(self, group: Group, cpu: str | None, total: float, busy: float) -> float | None:
        """Return the busy percent since the previous scrape (None on the first, or after a counter reset)."""
        previous = self._cpu.get((group, cpu))
        self._cpu[(group, cpu)] = (total, busy)
        if previous is None:
            return None
        d_total, d_busy = total - previous[0], busy - previous[1]
        if d_total < 0 or d_busy < 0:
            return None  # the host rebooted
        if d_total == 0:
            return 0.0  # as psutil: no time passed on this CPU
        return round(min(100.0, max(0.0, d_busy / d_total * 100.0)), 1)


def _gather(s: Sample, page: _Page, out: list[Sample]) -> None:
    """Append a renamed sample to ``out``, or keep the value of one that needs more than a rename in ``page``."""
    name, labels = s.name, s.labels
    renamed = RENAMED.get(name)
    if renamed is not None:
        new, moves = renamed
        if moves.get("device") == "disk" and _DISK_EXCLUDE.match(labels.get("device", "")):
            return  # RAM disks, loop devices and partitions, as monitorkit's disk collector skips them
        out.append(Sample(s.time, new, {moves.get(k, k): v for k, v in labels.items()}, s.value, s.host))
        return
    if name not in GATHERED:
        return  # one of node_exporter's many others: kept under its own name only
    group = (s.host, _base(labels))
    page.times.setdefault(group, s.time)
    if name == "node_cpu_seconds_total":
        page.cpu.setdefault(group, {})[(labels.get("cpu", ""), labels.get("mode", ""))] = s.value
    elif name == "node_cpu_guest_seconds_total":
        guest = page.guest.setdefault(group, {})
        mode = "guest" if labels.get("mode") == "user" else "guest_nice"
        guest[mode] = guest.get(mode, 0.0) + s.value
    elif name.startswith("node_memory_"):
        page.memory.setdefault(group, {})[name[12:-6]] = s.value
    elif name in ("node_vmstat_pswpin", "node_vmstat_pswpout"):
        page.memory.setdefault(group, {})[name[12:]] = s.value
    elif name in FILESYSTEM:
        key = (labels.get("mountpoint", ""), labels.get("device", ""), labels.get("fstype", ""))
        page.filesystems.setdefault(group, {}).setdefault(key, {})[name[16:-6]] = s.value
    elif name in NIC_VALUES:
        page.nics.setdefault(group, {}).setdefault(labels.get("device", ""), {})[NIC_VALUES[name]] = s.value
    else:  # node_processes_state
        state = PROCESS_STATES.get(labels.get("state", ""), "unknown")
        states = page.states.setdefault(group, {})
        states[state] = states.get(state, 0.0) + s.value


class _Emitter:
    """Append samples of one group: ``emit("load1", 0.5, cpu="0")``."""

    def __init__(self, out: list[Sample], when: datetime, host: str, base: dict[str, str]) -> None:
        self.out, self.when, self.host, self.base = out, when, host, base

    def __call__(self, name: str, value: float, **labels: str) -> None:
        self.out.append(Sample(self.when, name, {**self.base, **labels}, float(value), self.host))


def _percent(part: float, whole: float) -> float:
    return round(part / whole * 100.0, 1) if whole > 0 else 0.0  # psutil's usage_percent


def _memory(emit: _Emitter, mem: dict[str, float]) -> None:
    if "MemTotal" in mem and "MemAvailable" in mem:
        total, available = mem["MemTotal"], min(mem["MemAvailable"], mem["MemTotal"])
        emit("memory_total_bytes", total)
        emit("memory_available_bytes", available)
        emit("memory_used_bytes", total - available)
        emit("memory_percent", _percent(total - available, total))
        if "MemFree" in mem:
            emit("memory_free_bytes", mem["MemFree"])
    if "SwapTotal" in mem and "SwapFree" in mem:
        used = mem["SwapTotal"] - mem["SwapFree"]
        emit("swap_total_bytes", mem["SwapTotal"])
        emit("swap_used_bytes", used)
        emit("swap_percent", _percent(used, mem["SwapTotal"]))
    if "pswpin" in mem and "pswpout" in mem:
        emit("swap_in_bytes_total", mem["pswpin"] * PAGE_SIZE)
        emit("swap_out_bytes_total", mem["pswpout"] * PAGE_SIZE)


def _filesystems(emit: _Emitter, filesystems: dict[tuple[str, str, str], dict[str, float]]) -> None:
    seen: set[str] = set()
    # shortest mount first, as monitorkit's disk collector: a device mounted twice counts at its main mount
    for (mount, device, fstype), fs in sorted(filesystems.items(), key=lambda i: (len(i[0][0]), i[0][0])):
        if fstype in PSEUDO_FSTYPES or device in seen or not {"size", "free", "avail"} <= fs.keys():
            continue
        seen.add(device)
        used = fs["size"] - fs["free"]
        labels = {"mount": mount, "device": device, "fstype": fstype}
        emit("disk_total_bytes", fs["size"], **labels)
        emit("disk_used_bytes", used, **labels)
        emit("disk_free_bytes", fs["avail"], **labels)
        emit("disk_used_percent", _percent(used, used + fs["avail"]), **labels)


def _nics(emit: _Emitter, nics: dict[str, dict[str, float]]) -> None:
    for nic, values in sorted(nics.items()):
        if "flags" in values:
            emit("net_up", 1.0 if int(values["flags"]) & IFF_UP else 0.0, nic=nic)
        elif "up" in values:
            emit("net_up", values["up"], nic=nic)
        if values.get("speed", 0.0) > 0:  # node_exporter reports -1 (× 125000) when the speed is unknown
            emit("net_speed_mbps", values["speed"] * 8 / 1e6, nic=nic)
