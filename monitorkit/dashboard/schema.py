"""Migrations of monitorkit.dashboard (numbers in the range migrations.py gives it)."""

from __future__ import annotations

from monitorkit.migrations import migration  # noqa: F401
