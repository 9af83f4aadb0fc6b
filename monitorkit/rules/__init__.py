"""Alerts and health as SQL views: rule files, the engine, silences, routing, notifications, backtests.

The names below load on first use: the owner's list of schema sets imports ``monitorkit.rules.schema``,
which must not load the engine (DuckDB, pyarrow, the dispatcher) with it.
``from monitorkit.rules import heartbeat``; backtests: ``from monitorkit.rules.backtest import backtest``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BacktestResult": "monitorkit.rules.backtest",
    "FiringWindow": "monitorkit.rules.backtest",
    "heartbeat": "monitorkit.rules.health",
    "Rule": "monitorkit.rules.loader",
    "parse_rule": "monitorkit.rules.loader",
    "load_rules": "monitorkit.rules.loader",
    "run_rule_tests": "monitorkit.rules.ruletests",
    "Engine": "monitorkit.rules.engine",
    "RuleService": "monitorkit.rules.service",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'monitorkit.rules' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
