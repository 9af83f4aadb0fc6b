"""The schema sets an owner applies to its file, in order: the store first, then each domain's tables."""

from __future__ import annotations

from monitorkit.dashboard.schema import SCHEMA as DASHBOARD
from monitorkit.instrument.schema import SCHEMA as EXECUTIONS
from monitorkit.rules.schema import SCHEMA as RULES
from monitorkit.store.migrations import SchemaSet
from monitorkit.store.schema import SCHEMA as STORE

SCHEMA: tuple[SchemaSet, ...] = (STORE, EXECUTIONS, RULES, DASHBOARD)
