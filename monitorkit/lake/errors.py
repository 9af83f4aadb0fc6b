"""Typed errors of the fleet lake; the CLI turns them into messages and exit codes."""

from __future__ import annotations

from monitorkit.errors import StoreError


class LakeError(StoreError):
    """The lake (its PostgreSQL catalog or its data path) cannot be used as asked."""


class LakeUnreachableError(LakeError):
    """The lake's catalog did not answer; the host keeps its samples locally and ships them later."""


class LakeConflictError(LakeError):
    """Another writer committed first (DuckLake serializes commits); the same work can simply run again."""


class ShipperClashError(LakeError):
    """The lake's watermark for this host moved under the shipper: another owner ships under the same name."""
