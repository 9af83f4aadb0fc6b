"""Login for the served dashboard: a generated token stored as a salted scrypt hash, and a signed cookie.

The token is printed once, like Jupyter's (``http://127.0.0.1:5006/?token=...``); the database
keeps only ``scrypt(token, salt)``. A browser proves it knows the token once (``?token=`` or the
login form) and then carries a signed, HttpOnly cookie; tokens are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from tornado.web import RequestHandler

from monitorkit.dashboard.schema import SCHEMA as DASHBOARD_SCHEMA
from monitorkit.samples import utcnow
from monitorkit.store import Store
from monitorkit.store.literals import bind

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
    con.execute(bind(  # inlined: a bound value would load pandas into the server for good (store/literals.py)
        "INSERT INTO dashboard_credentials (id, algorithm, salt, hash, created_at) VALUES (1, ?, ?, ?, ?)",
        [credential.algorithm, credential.salt, credential.hash, credential.created_at or utcnow()],
    ))


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

    def is_known(self, token: str | None) -> bool:
        """Tell whether ``token`` was verified before (no scrypt: safe to call on the IOLoop)."""
        if not token or self._known is None:
            return False
        return hmac.compare_digest(hashlib.sha256(str(token).encode()).digest(), self._known)

    def rotate(self, credential: Credential) -> None:
        """Use ``credential`` from now on: the old token and every cookie made with it stop working."""
        self.credential = credential
        self._known = None

    def check_token(self, token: str | None) -> bool:
        """Tell whether ``token`` is the login token (one scrypt unless it was verified before)."""
        if not token:
            return False
        if self.is_known(token):
            return True
        if verify(self.credential, str(token)):
            self._known = hashlib.sha256(str(token).encode()).digest()
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

    def known_user(self, handler: RequestHandler) -> str | None:
        """Return the user of a request by its cookie or an already verified token, never running scrypt.

        What the server asks on the IOLoop: ``gate.LoginGate`` verified any presented token before.
        """
        raw = handler.get_secure_cookie(COOKIE, max_age_days=COOKIE_DAYS)
        if raw is not None and hmac.compare_digest(raw, self.cookie_value().encode()):
            return USER
        header = handler.request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.is_known(header[7:].strip()):
            return USER
        return USER if self.is_known(handler.get_query_argument("token", None)) else None

    def sign_in(self, handler: RequestHandler) -> None:
        """Set the signed login cookie on ``handler``'s response."""
        handler.set_secure_cookie(
            COOKIE, self.cookie_value(), expires_days=COOKIE_DAYS, httponly=True, samesite="Lax",
            secure=handler.request.protocol == "https",
        )


def safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else "/" (no open redirect after sign-in)."""
    # Browsers drop tabs and newlines anywhere in a URL and read "\" as "/", so "/\t/evil.example"
    # would become "//evil.example": only printable ASCII without backslash, one leading slash.
    if not target or any(not 0x21 <= ord(ch) <= 0x7E or ch == "\\" for ch in target):
        return "/"
    if not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def login_url(base: str, token: str | None) -> str:
    """Return the URL to print: with ``?token=`` when the token is known."""
    return f"{base}/?token={quote(token)}" if token else f"{base}/"
