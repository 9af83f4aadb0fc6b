"""The login page and the Bokeh auth provider: every app, websocket and metadata route asks it who is signed in."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler

from monitorkit.dashboard.auth import COOKIE, TokenAuth, safe_next
from monitorkit.dashboard.gate import LoginGate, Throttled

INVALID = "Invalid token."

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>monitorkit · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f6f8; display: flex; min-height: 100vh;
        align-items: center; justify-content: center; margin: 0; }}
form {{ background: #fff; padding: 2rem 2.5rem; border-radius: 8px; box-shadow: 0 2px 12px rgba(0,0,0,.12); width: 22rem; }}
h1 {{ font-size: 1.3rem; margin: 0 0 1rem; }} p {{ color: #555; font-size: .9rem; }}
input {{ width: 100%; padding: .55rem; font-size: 1rem; box-sizing: border-box; margin: .4rem 0 1rem; }}
button {{ background: #1f6feb; color: #fff; border: 0; padding: .6rem 1.2rem; font-size: 1rem;
          border-radius: 4px; cursor: pointer; }}
.error {{ color: #b42318; font-weight: 600; }}
</style></head>
<body><form method="post" action="{action}">
<h1>monitorkit dashboard</h1>
{message}
<label for="token">Login token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<input type="hidden" name="next" value="{next}">
<button type="submit" id="login">Sign in</button>
<p>The token was printed when <code>monitorkit serve</code> first started.
<code>monitorkit serve --new-token</code> issues a new one.</p>
</form></body></html>
"""


def login_page(next_url: str, error: str = "", action: str = "/login") -> str:
    """Return the login page HTML."""
    message = f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else ""
    return LOGIN_PAGE.format(action=html.escape(action), next=html.escape(next_url), message=message)


class LoginHandler(RequestHandler):
    """GET shows the form (or signs in with ``?token=``); POST checks the token; both through the gate."""

    auth: TokenAuth
    gate: LoginGate

    async def get(self) -> None:
        target = safe_next(self.get_query_argument("next", "/"))
        token = self.get_query_argument("token", None)
        error = INVALID if self.get_query_argument("error", "") == "invalid" else ""
        if token is not None:
            await self._sign_in(token, target)
            return
        self._page(target, error, 401 if error else 200)

    async def post(self) -> None:
        await self._sign_in(self.get_body_argument("token", ""), safe_next(self.get_body_argument("next", "/")))

    async def _sign_in(self, token: str, target: str) -> None:
        try:
            ok = await self.gate.check(self, token)
        except Throttled as exc:
            self.set_header("Retry-After", str(exc.retry_after))
            self._page(target, str(exc).capitalize() + ".", 429)
            return
        if ok:
            self.auth.sign_in(self)
            self.redirect(target)
        else:
            self._page(target, INVALID, 401)

    def _page(self, target: str, error: str, status: int) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(login_page(target, error))


class LogoutHandler(RequestHandler):
    """Clear the login cookie and go back to the login page."""

    def get(self) -> None:
        self.clear_cookie(COOKIE)
        self.redirect("/login")


class TokenProvider(AuthProvider):
    """The Bokeh AuthProvider of one TokenAuth: who is signed in, and the login and logout routes."""

    def __init__(self, auth: TokenAuth, gate: LoginGate) -> None:
        self._auth = auth
        self._login = type("LoginHandler", (LoginHandler,), {"auth": auth, "gate": gate})
        super().__init__()

    @property
    def get_user(self) -> Callable[[Any], str | None]:  # type: ignore[override]  # Bokeh passes the handler
        return self._auth.known_user

    @property
    def login_url(self) -> str:
        return "/login"

    @property
    def login_handler(self) -> type[RequestHandler]:
        return self._login

    @property
    def logout_url(self) -> str:
        return "/logout"

    @property
    def logout_handler(self) -> type[RequestHandler]:
        return LogoutHandler
