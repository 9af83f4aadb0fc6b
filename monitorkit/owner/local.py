"""Is the owner of a database running in this very process? One lookup for every service that asks.

Free of DuckDB: an instrumented application asks here before it opens a socket, and a
heartbeat asks before it goes through the owner API. ``run_owner`` registers its context.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitorkit.owner.context import OwnerContext

_OWNERS: dict[str, OwnerContext] = {}
_LOCK = threading.Lock()


def _key(db: str | Path) -> str:
    return str(Path(db).resolve())


def register(db: str | Path, ctx: OwnerContext) -> None:
    """Record that this process owns ``db`` with the services of ``ctx``."""
    with _LOCK:
        _OWNERS[_key(db)] = ctx


def unregister(db: str | Path, ctx: OwnerContext) -> None:
    """Forget ``ctx`` as the owner of ``db`` (only if it is the one registered)."""
    with _LOCK:
        if _OWNERS.get(_key(db)) is ctx:
            del _OWNERS[_key(db)]


def lookup(db: str | Path | None = None) -> OwnerContext | None:
    """Return the context of the owner of ``db`` running in this process; ``None`` for ``db``: the only one."""
    with _LOCK:
        if db is None:
            return next(iter(_OWNERS.values())) if len(_OWNERS) == 1 else None
        return _OWNERS.get(_key(db))
