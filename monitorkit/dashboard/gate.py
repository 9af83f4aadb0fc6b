"""Check login tokens off the IOLoop, at most a few failures per client a minute.

Every token a request presents (``?token=``, ``Authorization: Bearer``, the login form) goes
through ``LoginGate.check``: a token verified once is recognised by its SHA-256 without scrypt;
any other costs one scrypt on the gate's single worker thread, and a client with too many
recent failures is answered 429 with ``Retry-After`` before any hashing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlencode

from tornado.web import RequestHandler
from tornado.websocket import WebSocketHandler

from monitorkit.dashboard.auth import TokenAuth, safe_next
from monitorkit.dashboard.errors import DashboardError

MAX_FAILURES = 10  # failed token checks a client may make per window
WINDOW = 60.0  # seconds
MAX_CLIENTS = 10_000  # clients remembered at once (the oldest are forgotten first)


class Throttled(DashboardError):
    """A client failed to sign in too often; it may try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed sign-ins from this address; try again in {self.retry_after} s")


class FailedLogins:
    """Count each client's failed token checks in a sliding window: ``retry_after(client)`` is 0 while it may try."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW, *,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str, pending: int = 0) -> float:
        """Return how many seconds ``client`` must wait before its next try (0: it may try now).

        ``pending`` counts its tries still being checked: a burst cannot queue more hashes than
        the limit allows.
        """
        times = self._failures.get(client, deque())
        now = self.clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) + pending < self.max_failures:
            return 0.0
        return times[0] + self.window - now if len(times) >= self.max_failures else 1.0

    def failed(self, client: str) -> None:
        """Record one failure of ``client``."""
        times = self._failures.setdefault(client, deque())
        self._failures.move_to_end(client)
        times.append(self.clock())
        while len(times) > self.max_failures:
            times.popleft()
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget ``client``'s failures (it knows the token)."""
        self._failures.pop(client, None)


class LoginGate:
    """Verify presented tokens for requests: rate-limited per client, scrypt on one worker thread."""

    def __init__(self, auth: TokenAuth, failures: FailedLogins | None = None) -> None:
        self.auth = auth
        self.failures = failures or FailedLogins()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitorkit-login")
        self._pending: dict[str, int] = {}  # tries being hashed, per client (touched on the IOLoop only)

    async def check(self, handler: RequestHandler, token: str) -> bool:
        """Tell whether ``token`` is the login token; raise Throttled if the client failed too often."""
        if self.auth.is_known(token):
            return True
        client = str(handler.request.remote_ip)
        wait = self.failures.retry_after(client, self._pending.get(client, 0))
        if wait > 0:
            raise Throttled(wait)
        self._pending[client] = self._pending.get(client, 0) + 1
        try:
            ok = await asyncio.get_running_loop().run_in_executor(self._executor, self.auth.check_token, token)
        finally:
            self._pending[client] -= 1
            if not self._pending[client]:
                del self._pending[client]
        if ok:
            self.failures.succeeded(client)
        else:
            self.failures.failed(client)
        return ok

    async def admit(self, handler: RequestHandler) -> bool:
        """Verify the token a request presents; return False when the gate answered it (redirect or 429).

        A page asked with ``?token=`` is answered with the login cookie and a redirect to the same
        URL without the token (so it leaves the address bar, the history and the page itself).
        """
        header = handler.request.headers.get("Authorization", "")
        bearer = header[7:].strip() if header.startswith("Bearer ") else ""
        token = handler.get_query_argument("token", None)
        try:
            if bearer:
                await self.check(handler, bearer)
            valid = await self.check(handler, token) if token else False
        except Throttled as exc:
            handler.set_status(429)
            handler.set_header("Retry-After", str(exc.retry_after))
            handler.set_header("Content-Type", "text/plain; charset=utf-8")
            handler.finish(str(exc) + "\n")
            return False
        if token is None or isinstance(handler, WebSocketHandler) or handler.request.method not in ("GET", "HEAD"):
            return True
        clean = clean_url(handler)
        if valid:
            self.auth.sign_in(handler)
            handler.redirect(clean)
        else:
            handler.redirect(f"/login?next={quote(clean, safe='')}&error=invalid")
        return False

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def clean_url(handler: RequestHandler) -> str:
    """Return the request's path and query without ``token`` (a same-site path: "/" when it is not one)."""
    args = [(k, v.decode(errors="replace")) for k, vs in handler.request.query_arguments.items() if k != "token"
            for v in vs]
    query = urlencode(args)
    return safe_next(handler.request.path + (f"?{query}" if query else ""))
