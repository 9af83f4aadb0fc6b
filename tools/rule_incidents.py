#!/usr/bin/env python3
"""Backtest the shipped alert rules on a demo database; print each rule's precision and recall against INCIDENTS.

``python tools/rule_incidents.py /tmp/d.duckdb [rule ...]`` after ``monitorkit demo --db /tmp/d.duckdb``.
A firing window is *inside* when it overlaps an incident the rule is meant to find, on its host,
from ``LEAD`` before the incident (predictions fire early) to ``TAIL`` after it (windows and
``keep_firing_for`` outlast it); precision is the share of windows inside, recall the share of
those incidents found. Every window is listed, so the figures can be checked by eye.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta

import duckdb

from monitorkit.demo import INCIDENTS, DemoConfig
from monitorkit.rules.backtest import backtest
from monitorkit.rules.loader import default_rules_dir, load_rules

LEAD = timedelta(hours=3)
TAIL = timedelta(minutes=20)
# The incidents each rule is meant to find (docs/notebooks.md: the demo's incidents).
MEANT = {
    "cpu_saturation": {"cpu_saturation"}, "protocol_latency": {"cpu_saturation"}, "nic_errors": {"nic_flapping"},
    "tool_error_rate": {"slow_tool"}, "protocol_error_rate": {"protocol_errors"}, "memory_growth": {"memory_leak"},
    "disk_filling": {"disk_fill"}, "disk_full_predicted": {"disk_fill"},
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("rules", nargs="*", help="rule names (default: every shipped alert rule)")
    parser.add_argument("--step", default="1m")
    args = parser.parse_args(argv)
    rules = {n: r for n, r in load_rules([default_rules_dir()]).rules.items() if r.type == "alert"}
    config = DemoConfig()
    con = duckdb.connect(args.db, read_only=True)
    print(f"{'rule':<22} {'windows':>7} {'inside':>6} {'precision':>9} {'found':>7} {'recall':>6} {'seconds':>7}")
    for name in args.rules or sorted(rules):
        started = time.perf_counter()
        result = backtest(con, rules[name], config.start, config.end, args.step)
        meant = [i for i in INCIDENTS if i.kind in MEANT.get(name, set())]
        inside, found = 0, set[str]()
        lines = []
        for w in result.windows:
            end = w.end or config.end
            hits = [i for i in meant if i.host == w.labels.get("host")
                    and w.start <= i.end + TAIL and end >= i.start - LEAD]
            inside += bool(hits)
            found.update(i.kind for i in hits)
            labels = {k: v for k, v in w.labels.items() if k not in ("alertname", "severity")}
            lines.append(f"    {'inside ' if hits else 'OUTSIDE'} {w.start:%m-%d %H:%M} - "
                         f"{f'{w.end:%m-%d %H:%M}' if w.end else '(still firing)'} {labels}")
        windows = len(result.windows)
        precision = f"{inside / windows:.0%}" if windows else "-"
        recall = f"{len(found) / len(meant):.0%}" if meant else "-"
        print(f"{name:<22} {windows:>7} {inside:>6} {precision:>9} {len(found):>3}/{len(meant):<3} {recall:>6} "
              f"{time.perf_counter() - started:>7.0f}")
        for line in lines:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
