"""What held in the review and must keep holding: websocket Origin, static traversal, metrics off loopback, cookie flags."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from dashboard_helpers import Served, dashboard_server, handshake, http_get, served

TRAVERSALS = [
    "/static/../../../../etc/passwd", "/static/js/..%2f..%2f..%2f..%2fetc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/extensions/panel/../../../../../../etc/passwd", "/static/extensions/panel/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/components/panel/..%2f..%2f..%2fetc/passwd/a/b", "/static/extensions/..%2f..%2f..%2f..%2fetc/passwd",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("held"), rules=False) as s:
        yield s


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1.evil.example", "null", "http://localhost:1"])
def test_a_forged_websocket_origin_is_refused(server: Served, origin: str) -> None:
    assert handshake(server.url, origin, f"/ws?token={server.token}") == 403
    assert handshake(server.url, server.url, f"/ws?token={server.token}") == 101, "the server's own origin opens"


def test_a_websocket_without_login_is_refused(server: Served) -> None:
    assert handshake(server.url, server.url, "/ws") == 403


@pytest.mark.parametrize("path", TRAVERSALS)
def test_static_path_traversal_is_refused(server: Served, path: str) -> None:
    cookie = server.cookie()
    status, _, body = server.get(path, {"Cookie": cookie})
    assert status in (400, 403, 404) and b"root:" not in body, (path, status)
    assert server.get("/static/js/bokeh.min.js", {"Cookie": cookie})[0] == 200, "static files serve when signed in"


def test_the_login_cookie_is_httponly_and_samesite_lax(server: Served) -> None:
    status, headers, _ = server.request("POST", "/login", urlencode({"token": server.token, "next": "/"}).encode())
    assert status == 302
    flags = {part.strip().split("=")[0].lower() for part in headers["Set-Cookie"].split(";")}
    assert {"httponly", "samesite", "path"} <= flags and "secure" not in flags, headers["Set-Cookie"]
    assert "SameSite=Lax" in headers["Set-Cookie"]


def test_metrics_and_health_need_a_bearer_off_loopback(tmp_path: Path) -> None:
    with dashboard_server(tmp_path, open_metrics=False) as s:  # as when serving on 0.0.0.0 without public_metrics
        for path in ("/metrics", "/healthz"):
            assert http_get(s.url + path)[0] == 401
            assert http_get(s.url + path, {"Authorization": "Bearer wrong"})[0] == 401
            assert http_get(s.url + path, {"Authorization": "Bearer tok"})[0] == 200
