"""Login: the token is stored as a salted scrypt hash; cookies, bearer and ?token= sign a request in."""

from __future__ import annotations

from typing import Any

import pytest

from monitorkit.dashboard import auth, login
from monitorkit.store import Store


def test_hash_is_salted_and_verified_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = auth.make_credential("tok-123"), auth.make_credential("tok-123")
    assert one.salt != two.salt and one.hash != two.hash
    assert auth.verify(one, "tok-123") and auth.verify(two, "tok-123")
    assert not auth.verify(one, "tok-124") and not auth.verify(one, "")
    compared: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", compare)
    auth.verify(one, "tok-123")
    assert compared == [(auth.hash_token("tok-123", one.salt), one.hash)]


def test_first_start_issues_a_token_and_keeps_only_its_hash(store: Store) -> None:
    credential, token = auth.ensure_token(store)
    assert token is not None and len(token) >= 24
    rows = store.query("SELECT algorithm, salt, hash FROM dashboard_credentials")
    assert len(rows) == 1 and rows[0][0] == auth.ALGORITHM
    assert token.encode() not in bytes(rows[0][1]) + bytes(rows[0][2])
    again, none = auth.ensure_token(store)
    assert none is None and again.hash == credential.hash
    assert auth.verify(again, token)
    rotated, new = auth.ensure_token(store, rotate=True)
    assert new is not None and new != token
    assert auth.verify(rotated, new) and not auth.verify(rotated, token)
    fixed, issued = auth.ensure_token(store, token="from-settings")
    assert issued == "from-settings" and auth.verify(fixed, "from-settings")
    assert auth.ensure_token(store, token="from-settings")[1] is None


class FakeRequest:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.protocol = "http"


class FakeHandler:
    """The parts of a tornado RequestHandler that TokenAuth uses."""

    def __init__(self, *, cookie: bytes | None = None, token: str | None = None, header: str = "") -> None:
        self.cookie = cookie
        self.token = token
        self.request = FakeRequest({"Authorization": header} if header else {})
        self.set: list[tuple[str, str, dict[str, Any]]] = []

    def get_secure_cookie(self, name: str, max_age_days: int = 31) -> bytes | None:
        return self.cookie

    def get_query_argument(self, name: str, default: str | None = None) -> str | None:
        return self.token if name == "token" and self.token is not None else default

    def set_secure_cookie(self, name: str, value: str, **kwargs: Any) -> None:
        self.set.append((name, value, kwargs))


def fake(**kwargs: Any) -> Any:
    """Return a FakeHandler typed as the RequestHandler TokenAuth takes."""
    return FakeHandler(**kwargs)


def test_requests_sign_in_by_cookie_bearer_or_token() -> None:
    credential = auth.make_credential("right")
    tokens = auth.TokenAuth(credential)
    assert tokens.user(fake()) is None
    assert tokens.user(fake(token="wrong")) is None
    assert tokens.user(fake(header="Bearer wrong")) is None
    assert tokens.user(fake(cookie=b"admin:0000000000000000")) is None, "a cookie of another credential"
    signed = fake(token="right")
    assert tokens.user(signed) == "admin"
    name, value, options = signed.set[0]
    assert name == auth.COOKIE and options["httponly"] is True and options["samesite"] == "Lax"
    assert tokens.user(fake(cookie=value.encode())) == "admin"
    assert tokens.user(fake(header="Bearer right")) == "admin"
    other = auth.TokenAuth(auth.make_credential("right"))
    assert other.user(fake(cookie=value.encode())) is None, "a new credential logs every cookie out"


def test_the_server_side_check_never_hashes_an_unknown_token(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = auth.TokenAuth(auth.make_credential("right"))
    hashed: list[str] = []

    def counted(token: str, salt: bytes) -> bytes:
        hashed.append(token)
        return b""

    monkeypatch.setattr(auth, "hash_token", counted)
    assert tokens.known_user(fake(token="right")) is None
    assert tokens.known_user(fake(header="Bearer wrong")) is None
    assert hashed == [], "known_user runs on the IOLoop: no scrypt there"
    monkeypatch.undo()
    assert tokens.check_token("right")
    assert tokens.known_user(fake(token="right")) == "admin"
    assert tokens.known_user(fake(header="Bearer right")) == "admin"


@pytest.mark.parametrize(("target", "expected"), [
    ("/", "/"), ("/?x=1", "/?x=1"), ("https://evil.example/", "/"), ("//evil.example", "/"), ("/\\evil", "/"), (None, "/"),
    ("/\t/evil.example", "/"), ("/\n/evil.example", "/"), ("/\r/evil.example", "/"), ("\t//evil.example", "/"),
    (" /evil", "/"), ("/ /evil.example", "/"), ("/\x00/evil.example", "/"), ("/\u3000/evil.example", "/"),
    ("javascript:alert(1)", "/"), ("/%2F%2Fevil.example", "/%2F%2Fevil.example"), ("/login?next=%2F", "/login?next=%2F"),
])
def test_login_redirects_only_to_local_paths(target: str | None, expected: str) -> None:
    assert auth.safe_next(target) == expected


def test_login_page_escapes_what_it_echoes() -> None:
    page = login.login_page('/"><script>x()</script>', error="<b>")
    assert "<script>x()" not in page and "&lt;b&gt;" in page
    assert auth.login_url("http://127.0.0.1:5006", "a b") == "http://127.0.0.1:5006/?token=a%20b"
    assert auth.login_url("http://127.0.0.1:5006", None) == "http://127.0.0.1:5006/"
