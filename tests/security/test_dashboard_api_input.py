"""Finding 9: ``POST /api/layouts`` answers malformed bodies with 400 and a message, never 500.

Before: ``[1]`` (a list, not an object) and deeply nested JSON raised inside the handler and
were answered 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from dashboard_helpers import Served, served

from monitorkit.dashboard.layouts import MAX_DEPTH
from monitorkit.owner.sidecar import read_owner

GOOD = {"name": "ok", "version": 1, "panels": [{"kind": "cpu"}]}
DEEP = json.loads("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2))
BODIES = {
    "a list": b"[1]",
    "a string": b'"layout"',
    "null": b"null",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "deep options": json.dumps({"layout": {**GOOD, "panels": [{"kind": "cpu", "options": {"q": DEEP}}]}}).encode(),
    "a huge integer": b'{"layout": {"name": "x", "panels": [{"kind": "cpu", "width": ' + b"9" * 5000 + b"}]}}",
    "NaN": b'{"layout": {"name": "x", "panels": [{"kind": "cpu", "options": {"v": NaN}}]}}',
    "not UTF-8": b'{"layout": "\xff\xfe"}',
    "not JSON": b"{layout:",
    "layout a list": b'{"layout": [1]}',
    "name a number": json.dumps({"layout": GOOD, "name": 5}).encode(),
    "default a string": json.dumps({"layout": GOOD, "default": "yes"}).encode(),
    "width a bool": json.dumps({"layout": {**GOOD, "panels": [{"kind": "cpu", "width": True}]}}).encode(),
    "too large": json.dumps({"layout": {**GOOD, "panels": [{"kind": "cpu", "options": {"q": "x" * (2 << 20)}}]}}).encode(),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    with served(tmp_path_factory.mktemp("api"), rules=False) as s:
        owner = read_owner(s.db)
        assert owner is not None
        yield s, str(owner.extra["dashboard_api_key"])


@pytest.mark.parametrize("what", list(BODIES))
def test_malformed_layout_bodies_get_400_with_a_message(server: tuple[Served, str], what: str) -> None:
    s, key = server
    status, _, body = s.request("POST", "/api/layouts", BODIES[what], {"Authorization": f"Bearer {key}"})
    assert status == 400, (what, status, body[:300])
    assert json.loads(body)["error"], what
    assert s.get("/healthz")[0] == 200


def test_a_good_body_still_saves(server: tuple[Served, str]) -> None:
    s, key = server
    status, _, body = s.request("POST", "/api/layouts", json.dumps({"layout": GOOD, "default": False}).encode(),
                                {"Authorization": f"Bearer {key}"})
    assert (status, json.loads(body)) == (200, {"saved": "ok", "panels": 1})
