"""Finding 1: no anonymous route reaches code; no handler can stop the dashboard's IOLoop.

Before: ``GET /components/unittest.__main__/a/b/c`` (no login) made Panel's
ComponentResourceHandler import ``unittest.__main__``, whose SystemExit stopped the IOLoop:
``/``, ``/healthz`` and ``/metrics`` never answered again while the owner process lived on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from dashboard_helpers import Served, dashboard_server, http_get, served
from tornado.web import RequestHandler

from monitorkit.dashboard.guard import OWN_KEY, PUBLIC, SELF_GUARDED, guard_routes, qualified, rules
from monitorkit.dashboard.server import DashboardServer

ATTACK = "/components/unittest.__main__/a/b/c"
BEARER = {"Authorization": "Bearer tok"}
REFUSED = (302, 401, 403, 405)  # 302 only to the login page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("routes")) as s:
        yield s


def test_the_component_import_attack_is_refused_and_the_server_lives(server: Served) -> None:
    status, _, _ = server.get(ATTACK)
    assert status == 401, "anonymous: refused before Panel's handler runs"
    cookie = server.cookie()
    status, _, _ = server.get(ATTACK, {"Cookie": cookie})
    assert status == 404, "signed in: the module named in the URL is not imported"
    assert server.get("/healthz")[0] == 200
    assert server.get("/", {"Cookie": cookie})[0] == 200
    assert server.get("/metrics")[0] == 200
    assert server.proc.poll() is None


def test_component_resources_of_loaded_panel_modules_still_serve(server: Served) -> None:
    cookie = server.cookie()
    status, _, _ = server.get("/components/panel.nonexistent_module/X/__css__/x.css", {"Cookie": cookie})
    assert status == 404
    status, _, _ = server.get("/components/panel.layout.base/Column/nothing/x.css", {"Cookie": cookie})
    assert status == 403, "Panel's own checks still apply to modules it has loaded"


class Reviewed(DashboardServer):
    """The server with two routes only a test adds: one nobody reviewed, one that raises SystemExit."""

    def _patterns(self) -> list[tuple[str, type[RequestHandler]]]:
        class Unreviewed(RequestHandler):
            def get(self) -> None:
                self.write("secret")

        class Exits(RequestHandler):
            def get(self) -> None:
                raise SystemExit(3)

        return [*super()._patterns(), ("/unreviewed", Unreviewed), ("/exits", Exits)]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with dashboard_server(tmp_path_factory.mktemp("local"), server_class=Reviewed, open_metrics=False) as s:
        yield s


def sample_path(pattern: str) -> str:
    """Return a path the route ``pattern`` matches (its groups filled with a file name)."""
    path = re.sub(r"\(\?![^)]*\)", "", pattern.rstrip("$"))
    path = re.sub(r"\([^)]*\)", "js/bokeh.min.js" if path.startswith("/static/(") else "a/b/c/d", path)
    path = path.replace("/?", "/") or "/"
    assert re.fullmatch(pattern, path), f"no sample path for route {pattern!r}: teach sample_path about it"
    return path


def test_every_route_of_the_running_app_needs_the_login_or_was_reviewed(local: Any) -> None:
    listed = list(rules(local._server._tornado.default_router))
    assert len(listed) >= 14, "the app's routes are all found (Bokeh's, Panel's and ours)"
    seen = set()
    for rule in listed:
        target = rule.target
        pattern = cast(Any, rule.matcher).regex.pattern
        assert hasattr(target, "door_policy"), f"{pattern} -> {qualified(target)} is not behind the door"
        name = qualified(target)
        seen.add(name)
        path = sample_path(pattern)
        status, headers, body = http_get(local.url + path)
        if target.door_policy == "public":
            assert PUBLIC.get(name), name
            continue
        assert status in REFUSED, f"anonymous GET {path} ({name}) answered {status}: {body[:200]!r}"
        if status == 302:
            assert headers["Location"].lstrip(".").startswith("/login"), (path, headers["Location"])
        if target.door_policy == "login":
            assert status == 401, (path, status)
    assert {"panel.io.server.DocHandler", "panel.io.server.WSHandler", "monitorkit.dashboard.guard.SafeComponentHandler",
            "bokeh.server.views.static_handler.StaticHandler"} <= seen
    assert set(PUBLIC) | set(SELF_GUARDED) | set(OWN_KEY) >= {n for n in seen if n.startswith("monitorkit.dashboard.login")}


def test_a_route_nobody_reviewed_needs_the_login(local: Any) -> None:
    assert http_get(local.url + "/unreviewed")[0] == 401
    status, _, body = http_get(local.url + "/unreviewed", BEARER)
    assert (status, body) == (200, b"secret")


def test_systemexit_in_a_handler_answers_500_and_the_loop_serves_on(local: Any) -> None:
    assert http_get(local.url + "/exits", BEARER)[0] == 500
    assert http_get(local.url + "/healthz", BEARER)[0] == 200


def test_systemexit_in_a_loop_callback_does_not_stop_serving(local: Any) -> None:
    def exits() -> None:
        raise SystemExit(4)

    before = local.loop_restarts
    local._loop.add_callback(exits)
    assert http_get(local.url + "/healthz", BEARER)[0] == 200
    assert local.loop_restarts == before + 1


def test_guarding_twice_changes_nothing(local: Any) -> None:
    app = local._server._tornado
    before = [rule.target for rule in rules(app.default_router)]
    guard_routes(app, local.gate)
    assert [rule.target for rule in rules(app.default_router)] == before


def test_component_handler_needs_login_even_for_panel_modules(tmp_path: Path) -> None:
    with dashboard_server(tmp_path) as s:
        assert http_get(s.url + "/components/panel.layout.base/Column/__css__/x.css")[0] == 401
