"""Login for the served dashboard: a generated token stored as a salted scrypt hash, and a signed cookie.

The token is printed once, like Jupyter's (``http://127.0.0.1:5006/?token=...``); the database
keeps only ``scrypt(token, salt)``. A browser proves it knows the token once (``?token=`` or the
login form) and then carries a signed, HttpOnly cookie; tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler

from monitorkit.dashboard.schema import SCHEMA as DASHBOARD_SCHEMA
from monitorkit.samples import utcnow
from monitorkit.store import Store

ALGORITHM = "scrypt-n16384-r8-p1"
COOKIE = "monitorkit_auth"
COOKIE_DAYS = 7
USER = "admin"


class Credential(NamedTuple):
    """The stored form of the login token: algorithm, salt and hash, never the token."""

    algorithm: str
    salt: bytes
    hash: bytes
    created_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        """Return a short id of this credential; cookies carry it so a new token logs everyone out."""
        return hashlib.sha256(self.salt + self.hash).hexdigest()[:16]


def hash_token(token: str, salt: bytes) -> bytes:
    """Return ``scrypt(token, salt)`` (32 bytes)."""
    return hashlib.scrypt(token.encode(), salt=salt, n=16384, r=8, p=1, maxmem=64 * 1024 * 1024, dklen=32)


def make_credential(token: str) -> Credential:
    """Return a new Credential for ``token`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    return Credential(ALGORITHM, salt, hash_token(token, salt), utcnow())


def verify(credential: Credential, token: str) -> bool:
    """Tell whether ``token`` matches ``credential`` (constant-time comparison)."""
    if credential.algorithm != ALGORITHM or not token:
        return False
    return hmac.compare_digest(hash_token(token, credential.salt), credential.hash)


def load_credential(con: Any) -> Credential | None:
    """Return the stored credential, or None when no token was issued yet."""
    rows = con.execute("SELECT algorithm, salt, hash, created_at FROM dashboard_credentials WHERE id = 1").fetchall()
    if not rows:
        return None
    algorithm, salt, digest, created = rows[0]
    return Credential(str(algorithm), bytes(salt), bytes(digest), created)


def store_credential(con: Any, credential: Credential) -> None:
    """Replace the stored credential (write connection)."""
    con.execute("DELETE FROM dashboard_credentials")
    con.execute(
        "INSERT INTO dashboard_credentials (id, algorithm, salt, hash, created_at) VALUES (1, ?, ?, ?, ?)",
        [credential.algorithm, credential.salt, credential.hash, credential.created_at or utcnow()],
    )


def ensure_token(store: Store, *, token: str | None = None, rotate: bool = False) -> tuple[Credential, str | None]:
    """Return the credential and the token when one was issued now (first start, ``rotate`` or a set ``token``).

    ``token`` (the ``serve.token`` setting) replaces the stored one if it differs.
    """
    store.apply_schema(DASHBOARD_SCHEMA)
    cur = store.cursor()
    try:
        current = load_credential(cur)
    finally:
        cur.close()
    if token is not None:
        if current is not None and verify(current, token):
            return current, None
        issued = token
    elif current is None or rotate:
        issued = secrets.token_urlsafe(24)
    else:
        return current, None
    credential = make_credential(issued)
    store.submit(lambda con: store_credential(con, credential)).result()
    return credential, issued


class TokenAuth:
    """Check tokens and cookies against one credential; build the Bokeh auth provider from it."""

    def __init__(self, credential: Credential) -> None:
        self.credential = credential
        self._known: bytes | None = None  # sha256 of the token once verified, to skip scrypt next time

    def check_token(self, token: str | None) -> bool:
        """Tell whether ``token`` is the login token."""
        if not token:
            return False
        digest = hashlib.sha256(str(token).encode()).digest()
        if self._known is not None and hmac.compare_digest(digest, self._known):
            return True
        if verify(self.credential, str(token)):
            self._known = digest
            return True
        return False

    def cookie_value(self) -> str:
        """Return what the signed cookie holds: the user and the credential's fingerprint."""
        return f"{USER}:{self.credential.fingerprint}"

    def user(self, handler: RequestHandler) -> str | None:
        """Return the user a request is signed in as (cookie, ``?token=`` or ``Authorization: Bearer``), else None."""
        raw = handler.get_secure_cookie(COOKIE, max_age_days=COOKIE_DAYS)
        if raw is not None and hmac.compare_digest(raw, self.cookie_value().encode()):
            return USER
        header = handler.request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.check_token(header[7:].strip()):
            return USER
        token = handler.get_query_argument("token", None)
        if token is not None and self.check_token(token):
            self.sign_in(handler)
            return USER
        return None

    def sign_in(self, handler: RequestHandler) -> None:
        """Set the signed login cookie on ``handler``'s response."""
        handler.set_secure_cookie(
            COOKIE, self.cookie_value(), expires_days=COOKIE_DAYS, httponly=True, samesite="Lax",
            secure=handler.request.protocol == "https",
        )

    def provider(self) -> AuthProvider:
        """Return the Bokeh AuthProvider that guards every app, websocket and metadata route."""
        return _Provider(self)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never an absolute URL (open redirect) or a scheme-relative one.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


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
    """GET shows the form (or signs in with ``?token=``); POST checks the token."""

    auth: TokenAuth

    def get(self) -> None:
        target = _safe_next(self.get_query_argument("next", "/"))
        token = self.get_query_argument("token", None)
        if token is not None and self.auth.check_token(token):
            self.auth.sign_in(self)
            self.redirect(target)
            return
        self.set_header("Cache-Control", "no-store")
        self.write(login_page(target))

    def post(self) -> None:
        target = _safe_next(self.get_body_argument("next", "/"))
        if self.auth.check_token(self.get_body_argument("token", "")):
            self.auth.sign_in(self)
            self.redirect(target)
            return
        self.set_status(401)
        self.set_header("Cache-Control", "no-store")
        self.write(login_page(target, "Wrong token."))


class LogoutHandler(RequestHandler):
    """Clear the login cookie and go back to the login page."""

    def get(self) -> None:
        self.clear_cookie(COOKIE)
        self.redirect("/login")


class _Provider(AuthProvider):
    def __init__(self, auth: TokenAuth) -> None:
        self._auth = auth
        self._login = type("MonitorkitLogin", (LoginHandler,), {"auth": auth})
        super().__init__()

    @property
    def get_user(self) -> Callable[[Any], str | None]:  # type: ignore[override]  # Bokeh passes the handler
        return self._auth.user

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


def login_url(base: str, token: str | None) -> str:
    """Return the URL to print: with ``?token=`` when the token is known."""
    return f"{base}/?token={quote(token)}" if token else f"{base}/"
