"""Finding 6: the login token stays out of logs, the address bar and the page.

Before: every 4xx was logged with its full URL, ``?token=`` included, and ``/?token=`` was
answered 200 with the token left in the address bar (and in the browser's history).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import Served, dashboard_server, handshake, http_get, served
from tornado.web import RequestHandler

from monitorkit.dashboard.server import DashboardServer


def test_requests_with_the_token_leave_no_token_in_the_log(tmp_path: Path) -> None:
    with served(tmp_path, rules=False) as server:
        token = server.token
        attempts = [  # 4xx answers (logged as warnings) to requests carrying the valid token
            ("GET", f"/nope?token={token}", 404),
            ("POST", f"/?token={token}", 405),
            ("GET", f"/api/layouts?token={token}", 405),
            ("GET", f"/nope?access_token={token}&api_key={token}", 404),
        ]
        for method, path, expected in attempts:
            assert server.request(method, path, b"" if method == "POST" else None)[0] == expected, path
        assert handshake(server.url, "http://evil.example", f"/ws?token={token}") == 403  # a forged Origin
    log = "".join(server.stderr)
    assert "404 GET /nope?token=[redacted]" in log, log[-2000:]
    assert "403 GET /ws?token=[redacted]" in log and "405 POST /?token=[redacted]" in log
    assert "/nope?access_token=[redacted]&api_key=[redacted]" in log
    assert token not in log


def test_a_link_with_the_token_is_traded_for_the_cookie_and_a_clean_url(sign_in: Served) -> None:
    server = sign_in
    status, headers, _ = server.get(f"/?token={server.token}&theme=dark")
    assert status == 302 and headers["Location"] == "/?theme=dark"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("monitorkit_auth=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    status, _, page = server.get("/?theme=dark", {"Cookie": cookie.split(";")[0]})
    assert status == 200 and server.token.encode() not in page
    status, headers, _ = server.get(f"/metadata?token={server.token}")
    assert status == 302 and headers["Location"] == "/metadata"


def test_a_link_with_a_wrong_token_says_so_on_the_login_page(sign_in: Served) -> None:
    status, headers, _ = sign_in.get("/?token=not-the-token")
    assert status == 302 and headers["Location"] == "/login?next=%2F&error=invalid"
    status, _, page = sign_in.get(headers["Location"])
    assert status == 401 and b"Invalid token." in page and b"not-the-token" not in page


@pytest.fixture(scope="module")
def sign_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("exchange"), rules=False) as s:
        yield s


class Failing(DashboardServer):
    """The server with a route whose handler fails, as a bug would."""

    def _patterns(self) -> list[tuple[str, type[RequestHandler]]]:
        class Fails(RequestHandler):
            def get(self) -> None:
                raise ValueError("a bug")

        return [*super()._patterns(), ("/fails", Fails)]


def test_an_uncaught_error_is_logged_without_the_request_headers(tmp_path: Path, caplog: Any) -> None:
    with dashboard_server(tmp_path, server_class=Failing) as server, caplog.at_level(logging.INFO):
        status, _, _ = http_get(server.url + "/fails?api_key=tok", {"Authorization": "Bearer tok",
                                                                     "Cookie": "monitorkit_auth=secret-cookie"})
        assert status == 500
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Uncaught exception GET /fails?api_key=[redacted]" in text, text
    assert "=tok" not in text and "secret-cookie" not in text and "Bearer" not in text
