"""How a part of the owner is doing right now: the record every part reports, kept in memory.

Health written to the database cannot be trusted to be there when it matters most (a full
disk refuses it), so parts report this record and the owner serves the latest from memory.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Status = Literal["ok", "degraded", "failing"]
RANK: dict[str, int] = {"ok": 0, "degraded": 1, "failing": 2}


class Part(NamedTuple):
    """One part's health: ``Part("writer", "failing", "disk full: ...")``."""

    component: str
    status: Status
    reason: str


def worst(parts: list[Part]) -> Status:
    """Return the worst status of ``parts`` (ok when there are none)."""
    return max((p.status for p in parts), key=RANK.__getitem__, default="ok")
