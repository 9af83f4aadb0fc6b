"""`monitorkit token` against a running `monitorkit serve`: a fresh login URL; the old token and cookies stop working."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_helpers import served
from store_helpers import monitorkit_cli


@pytest.mark.slow
def test_monitorkit_token_gives_a_fresh_login_url_for_the_running_server(tmp_path: Path) -> None:
    with served(tmp_path, rules=False) as server:
        old_cookie = server.cookie()
        assert server.get("/", {"Cookie": old_cookie})[0] == 200
        result = monitorkit_cli(["token", "--db", str(server.db)], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        url = result.stdout.strip().splitlines()[-1]
        assert url.startswith(server.url) and "?token=" in url
        fresh = url.split("?token=", 1)[1]
        assert fresh != server.token
        status, headers, _ = server.get("/login?token=" + fresh)
        assert status == 302 and "monitorkit_auth=" in headers.get("Set-Cookie", "")
        _, headers, _ = server.get("/login?token=" + server.token)  # the old token signs nobody in...
        assert "monitorkit_auth=" not in headers.get("Set-Cookie", "")
        status, headers, _ = server.get("/", {"Cookie": old_cookie})  # ...and so is its cookie
        assert status == 302 and "/login" in headers.get("Location", "")
