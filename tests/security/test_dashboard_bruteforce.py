"""Finding 7: guessing the login token is rate-limited per client, and hashing never runs on the IOLoop.

Before: a flood of wrong tokens ran scrypt on the IOLoop at about 20 tries a second (one core),
``/healthz`` answered in 314 ms instead of 2, nothing ever refused the client, and a wrong
``?token=`` silently showed the login page again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from dashboard_helpers import dashboard_server, http_get, http_request, served

from monitorkit.dashboard.gate import MAX_FAILURES, FailedLogins

LIMIT = 3


def _post(url: str, token: str) -> tuple[int, dict[str, str], bytes]:
    return http_request(url + "/login", "POST", urlencode({"token": token, "next": "/"}).encode())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    with dashboard_server(tmp_path, failures=FailedLogins(max_failures=LIMIT, window=60), open_metrics=False) as s:
        yield s


def test_wrong_tokens_are_refused_then_the_client_waits(server: Any) -> None:
    for _ in range(LIMIT):
        status, _, page = _post(server.url, "guess")
        assert status == 401 and b"Invalid token." in page
    status, headers, page = _post(server.url, "guess")
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60 and b"try again in" in page
    assert _post(server.url, "tok")[0] == 429, "while it waits, no token is hashed for this client"
    assert http_get(server.url + "/?token=guess")[0] == 429
    assert http_get(server.url + "/metrics", {"Authorization": "Bearer guess"})[0] == 429


def test_a_signed_in_user_is_not_locked_out_by_a_flood(server: Any) -> None:
    cookie = _post(server.url, "tok")[1]["Set-Cookie"].split(";")[0]
    for _ in range(LIMIT + 2):
        _post(server.url, "guess")
    assert _post(server.url, "guess")[0] == 429
    assert http_get(server.url + "/healthz", {"Cookie": cookie})[0] == 200
    assert _post(server.url, "tok")[0] == 302, "a token verified before needs no hash: it still signs in"


def test_a_burst_hashes_no_more_than_the_limit(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real = server.auth.check_token

    def counted(token: str | None) -> bool:
        hashed.append(threading.current_thread().name)
        return bool(real(token))

    monkeypatch.setattr(server.auth, "check_token", counted)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: _post(server.url, f"guess-{i}")[0], range(24)))
    assert statuses.count(401) <= LIMIT and statuses.count(429) >= 24 - LIMIT and set(statuses) <= {401, 429}
    assert 1 <= len(hashed) <= LIMIT
    assert all(name.startswith("monitorkit-login") for name in hashed), f"scrypt ran on {set(hashed)}, not the gate"


def test_the_window_slides() -> None:
    now = [1000.0]
    failures = FailedLogins(max_failures=2, window=60, clock=lambda: now[0], max_clients=2)
    failures.failed("a")
    now[0] += 10
    failures.failed("a")
    assert failures.retry_after("a") == pytest.approx(50)
    assert failures.retry_after("a", pending=0) > 0 and failures.retry_after("b", pending=2) > 0
    now[0] += 51
    assert failures.retry_after("a") == 0
    failures.failed("b")
    failures.failed("c")
    assert "a" not in failures._failures, "only max_clients clients are remembered"
    failures.succeeded("b")
    assert failures.retry_after("b") == 0


def test_a_flood_against_a_served_dashboard_is_cut_off(tmp_path: Path) -> None:
    with served(tmp_path, rules=False) as s:
        statuses = [_post(s.url, f"guess-{i}")[0] for i in range(MAX_FAILURES + 5)]
        assert statuses[:MAX_FAILURES] == [401] * MAX_FAILURES and set(statuses[MAX_FAILURES:]) == {429}
        assert s.get("/healthz")[0] == 200
        status, headers, _ = s.get("/?token=guess")
        assert status == 429 and int(headers["Retry-After"]) > 0
