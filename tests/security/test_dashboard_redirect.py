"""Finding 5: after sign-in the browser only goes to a path of this server.

Before: ``/login?next=/%09/evil.example`` passed the "starts with one slash" check; Chromium drops
the tab and followed ``//evil.example`` to another site after signing in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, dashboard_server, http_get, http_request, require_chromium

EVIL = ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example", "/\\evil.example",
        "//evil.example", "///evil.example", "https://evil.example/", "http:/evil.example", "/ /evil.example",
        " //evil.example", "/\x00/evil.example", "/\u3000/evil.example", "javascript:alert(1)"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with dashboard_server(tmp_path_factory.mktemp("redirect")) as s:
        yield s


def _same_site(location: str) -> bool:
    parts = urlsplit(location)
    return not parts.scheme and not parts.netloc and location.startswith("/") and not location.startswith("//")


@pytest.mark.parametrize("target", EVIL)
def test_the_login_form_redirects_only_to_local_paths(server: Any, target: str) -> None:
    body = urlencode({"token": "tok", "next": target}).encode()
    status, headers, _ = http_request(server.url + "/login", "POST", body)
    assert status == 302 and headers["Location"] == "/", (target, headers.get("Location"))


@pytest.mark.parametrize("target", EVIL)
def test_the_login_link_redirects_only_to_local_paths(server: Any, target: str) -> None:
    status, headers, _ = http_get(f"{server.url}/login?token=tok&next={quote(target, safe='')}")
    assert status == 302 and headers["Location"] == "/", (target, headers.get("Location"))


def test_local_paths_are_kept(server: Any) -> None:
    body = urlencode({"token": "tok", "next": "/?theme=dark"}).encode()
    status, headers, _ = http_request(server.url + "/login", "POST", body)
    assert status == 302 and headers["Location"] == "/?theme=dark" and _same_site(headers["Location"])


@pytest.mark.browser
def test_chromium_stays_on_the_server_after_signing_in(server: Any, tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    visited: list[str] = []

    def route(r: Any) -> None:
        visited.append(r.request.url)
        if r.request.url.startswith(server.url):
            r.continue_()
        else:  # stands in for the phishing site, so the navigation completes and can be seen
            r.fulfill(status=200, content_type="text/html", body="<p>evil</p>")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.route("**/*", route)
        page.goto(server.url + "/login?next=/%09/evil.example")
        page.fill("#token", "tok")
        page.click("#login")
        page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)
        assert urlsplit(page.url).netloc == urlsplit(server.url).netloc, page.url
        browser.close()
    assert not [u for u in visited if "evil.example" in urlsplit(u).netloc], visited
