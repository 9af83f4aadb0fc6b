"""Acknowledge, silence and unsilence from any process: through the owner if one runs, else on the file.

Each action is one function of ``(write_connection, payload, now)`` in ``ACTIONS``: the
owner runs it in its writer thread behind a route of the owner API (``rules/service.py``),
and without an owner it runs on a Store opened here. These are the only code paths that
write an ack or a silence. ``ack_alert("data/monitorkit.duckdb", 3, by="ana", comment="on it")``
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from monitorkit.config import Settings, parse_duration
from monitorkit.owner.schema import SCHEMA
from monitorkit.owner.sidecar import read_owner
from monitorkit.rules import alerts as alertdb
from monitorkit.rules import inputs
from monitorkit.rules import silences as sil
from monitorkit.rules.errors import InvalidRequestError
from monitorkit.samples import utcnow
from monitorkit.store import Store

Action = Callable[[duckdb.DuckDBPyConnection, Mapping[str, Any], datetime], dict[str, Any]]
TIMEOUT = 30.0


def _ack(con: duckdb.DuckDBPyConnection, p: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    inst = alertdb.ack(con, inputs.whole(p.get("id"), "alert id", 1, inputs.MAX_ID),
                       by=inputs.text(p.get("by"), "--by", 200), comment=inputs.text(p.get("comment"), "comment", 2000),
                       now=now)
    return {"id": inst.id, "rule": inst.rule, "state": inst.state, "acked_by": inst.acked_by}


def _silence(con: duckdb.DuckDBPyConnection, p: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    texts = p.get("matchers", [])
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise InvalidRequestError("matchers must be a list of strings such as [\"host=web1\"]")
    starts = inputs.instant(p["starts_at"], "starts_at", now, inputs.MAX_SILENCE) if p.get("starts_at") else now
    silence = sil.create_silence(
        con, sil.parse_matchers(texts), starts_at=starts,
        duration=timedelta(seconds=inputs.seconds(p.get("seconds", 0), "a silence", inputs.MAX_SILENCE)),
        created_by=inputs.text(p.get("by"), "--by", 200), comment=inputs.text(p.get("comment"), "comment", 2000),
        now=now,
    )
    return {"id": silence.id, "matchers": [str(m) for m in silence.matchers], "ends_at": silence.ends_at.isoformat()}


def _unsilence(con: duckdb.DuckDBPyConnection, p: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    silence = sil.expire_silence(con, inputs.whole(p.get("id"), "silence id", 1, inputs.MAX_ID), now)
    return {"id": silence.id, "ends_at": silence.ends_at.isoformat()}


ACTIONS: dict[str, Action] = {"/ack": _ack, "/silence": _silence, "/unsilence": _unsilence}


def _perform(db: str | Path, path: str, payload: dict[str, Any], settings: Settings | None) -> dict[str, Any]:
    from monitorkit.owner.client import call

    owner = read_owner(Path(db))
    if owner is not None:
        return {k: v for k, v in call(owner, path, payload).items() if k != "ok"}
    with Store(db, settings=settings, schema=SCHEMA) as store:
        return store.submit(lambda con: ACTIONS[path](con, payload, utcnow())).result(TIMEOUT)


def ack_alert(db: str | Path, alert_id: int, *, by: str, comment: str = "",
              settings: Settings | None = None) -> dict[str, Any]:
    """Acknowledge alert ``alert_id`` (through the owner if one runs)."""
    return _perform(db, "/ack", {"id": alert_id, "by": by, "comment": comment}, settings)


def add_silence(db: str | Path, matchers: Sequence[str], *, duration: str | timedelta, by: str, comment: str,
                starts_at: datetime | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Silence alerts matching every matcher (``host=web1``, ``alertname=~cpu.*``) for ``duration``."""
    sil.parse_matchers(matchers)  # refuse bad matchers before reaching the owner
    seconds = inputs.seconds(parse_duration(duration).total_seconds(), "a silence", inputs.MAX_SILENCE,
                             hint=", e.g. --for 2h")
    payload = {"matchers": list(matchers), "seconds": seconds, "by": by, "comment": comment,
               "starts_at": starts_at.isoformat() if starts_at else None}
    return _perform(db, "/silence", payload, settings)


def remove_silence(db: str | Path, silence_id: int, *, settings: Settings | None = None) -> dict[str, Any]:
    """Expire silence ``silence_id`` now (it stays listed as expired)."""
    return _perform(db, "/unsilence", {"id": silence_id}, settings)
