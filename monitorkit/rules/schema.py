"""Migrations of monitorkit.rules (numbers in the range migrations.py gives it)."""

from __future__ import annotations

from monitorkit.migrations import migration  # noqa: F401
