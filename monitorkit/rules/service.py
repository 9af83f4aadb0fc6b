"""The rules service inside the owner: the engine's loop woken by every commit, and its routes on the owner API."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitorkit.owner.api import json_route
from monitorkit.rules.actions import ACTIONS, TIMEOUT, Action
from monitorkit.rules.engine import Engine
from monitorkit.rules.health import heartbeat_from_json, submit_heartbeat
from monitorkit.store.status import RANK, Part

if TYPE_CHECKING:
    from monitorkit.owner.api import OwnerApi
    from monitorkit.owner.context import OwnerContext
    from monitorkit.owner.scheduler import Scheduler
    from monitorkit.store.writer import CommitInfo

Route = Callable[[dict[str, Any]], Mapping[str, Any]]
FIRST_TICK_HOLD = 10.0  # seconds the engine waits for the owner's first tick to be committed, at most


def routes(engine: Engine) -> dict[str, Route]:
    """Return the routes the owner serves for rules: each action (ack through the engine), heartbeats, reloads."""
    store = engine.store

    def run(action: Action) -> Route:
        def handler(payload: dict[str, Any]) -> Mapping[str, Any]:
            return store.submit(lambda con: action(con, payload, engine.now())).result(TIMEOUT)
        return handler

    def ack(payload: dict[str, Any]) -> Mapping[str, Any]:
        return engine.ack(payload, TIMEOUT)

    def heartbeat(payload: dict[str, Any]) -> Mapping[str, Any]:
        submit_heartbeat(store, heartbeat_from_json(payload)).result(TIMEOUT)
        return {}

    def reload(payload: dict[str, Any]) -> Mapping[str, Any]:
        done = engine.reload_now()
        return {"reloaded": done, "errored": sorted(n for n, s in engine.status.items() if s.state != "ok")}

    out = {path: run(action) for path, action in ACTIONS.items() if path != "/ack"}
    out.update({"/ack": ack, "/heartbeat": heartbeat, "/reload": reload})
    return out


class RuleService:
    """The owner-side service: the engine's loop, woken by store commits, and the routes other processes write through."""

    name = "rules"

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._api: OwnerApi | None = None
        self._paths: list[str] = []
        self._running = False
        self._scheduler: Scheduler | None = None

    def start(self, ctx: OwnerContext) -> None:
        """Start the engine and its loop, wake it on every commit, register its routes on the owner API."""
        store = ctx.owner.store
        self.engine = Engine(store, ctx.settings)
        self.engine.start()
        self.engine.start_loop(hold=FIRST_TICK_HOLD)
        self._scheduler = ctx.scheduler
        ctx.scheduler.tick_hooks.append(self._first_tick)
        self._api = ctx.api
        for path, handler in routes(self.engine).items():
            ctx.api.add_route("POST", path, json_route(handler))
            self._paths.append(path)
        self._running = True
        store.add_hook(self._on_commit)

    def parts(self) -> list[Part]:
        """Return the engine's loop, the dispatcher and each receiver, from memory (the owner's health asks each tick)."""
        if self.engine is None:
            return []
        return [Part(r.component, r.status if r.status in RANK else "failing", r.reason)  # type: ignore[arg-type]
                for r in self.engine.health_rows()]

    def _first_tick(self, now: datetime) -> None:
        # Tick hooks run in service order after the tick's samples are queued; the health service
        # (started first) has queued its parts' heartbeats too. The no-op task commits all of it
        # first, then releases the engine's first pass.
        self._drop_first_tick()
        engine = self.engine
        if engine is None:
            return
        try:
            committed = engine.store.submit(lambda con: None)
        except Exception:  # the store is closing: nothing to evaluate against
            engine.release()
            return
        committed.add_done_callback(lambda f: engine.release())

    def _drop_first_tick(self) -> None:
        if self._scheduler is not None and self._first_tick in self._scheduler.tick_hooks:
            self._scheduler.tick_hooks.remove(self._first_tick)

    def _on_commit(self, info: CommitInfo) -> None:
        # In the writer thread: only a wake-up, the pass runs on the engine's thread.
        if self._running and self.engine is not None:
            self.engine.on_commit(info)

    def stop(self) -> None:
        """Stop evaluating, take the routes off the owner API, stop the dispatcher."""
        self._running = False
        self._drop_first_tick()
        if self._api is not None:
            for path in self._paths:
                self._api.remove_route("POST", path)
            self._paths.clear()
        if self.engine is not None:
            self.engine.close()
