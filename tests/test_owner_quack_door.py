"""The Quack door when the endpoint cannot open: a 503 that says why, health failing, no cursor left open, a later try works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from store_helpers import isolated_settings

from monitorkit.owner.api import Request
from monitorkit.owner.quack import QuackDoor
from monitorkit.owner.readers import ReaderPolicy
from monitorkit.store import Store


class Refusing:
    """A cursor whose create_function fails as DuckDB's does when numpy cannot be imported."""

    def __init__(self, real: duckdb.DuckDBPyConnection) -> None:
        self.real = real
        self.closed = False

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        raise duckdb.InvalidInputException("Could not import numpy")

    def close(self) -> None:
        self.closed = True
        self.real.close()


def test_an_allowlist_that_cannot_register_answers_503_with_the_reason(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "m.duckdb", settings=isolated_settings())
    try:
        opened: list[int] = []
        door = QuackDoor(store, ReaderPolicy(lambda: (set(), set(), set())), "token-of-the-test", opened.append)
        real_cursor = store.cursor
        handed: list[Refusing] = []

        def refusing_cursor() -> Any:
            handed.append(Refusing(real_cursor()))
            return handed[-1]

        monkeypatch.setattr(store, "cursor", refusing_cursor)
        answer = door.handle(Request("POST", "/v1/quack", "application/json", b"", {}))
        assert answer.status == 503
        error = json.loads(answer.body)["error"]
        assert "allowlist" in error and "numpy" in error
        assert handed and handed[0].closed, "the cursor of the failed attempt was left open"
        assert door.port == 0 and opened == []
        part = door.part()
        assert part.status == "failing" and "numpy" in part.reason  # a reader asked and could not attach

        monkeypatch.setattr(store, "cursor", real_cursor)
        answer = door.handle(Request("POST", "/v1/quack", "application/json", b"", {}))
        assert answer.status == 200, answer.body
        port = json.loads(answer.body)["port"]
        assert port == door.port > 0 and opened == [port]
        assert door.part().status == "ok"
        door.close()
    finally:
        store.close()
