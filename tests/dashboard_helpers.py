"""Shared pieces of the dashboard tests and benchmark: a `monitorkit serve` child, Chromium, headless sessions."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from shared_helpers import child_env, stop_process

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ALERT_RULE = """-- name: dashboard_seeded
-- kind: error
-- severity: critical
-- summary: a seeded alert the dashboard tests acknowledge
SELECT 'seeded' AS source, 1.0 AS value
"""
WS_UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # a websocket handshake, as a browser sends it
URL_RE = re.compile(r"^dashboard: (http://\S+?)/(?:\?token=(\S+))?(\s|$)")


class Served(NamedTuple):
    """A running `monitorkit serve` child: its process, base URL, login token, database and stderr lines so far."""

    proc: subprocess.Popen[str]
    url: str
    token: str
    db: Path
    stderr: list[str]

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` without following redirects; return (status, headers, body)."""
        return http_get(self.url + path, headers)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send one request without following redirects; return (status, headers, body)."""
        return http_request(self.url + path, method, body, headers)

    def cookie(self) -> str:
        """Sign in with the token and return the login cookie (``monitorkit_auth=...``)."""
        status, headers, _ = self.get("/login?token=" + self.token)
        assert status == 302 and "monitorkit_auth=" in headers.get("Set-Cookie", ""), (status, headers)
        return headers["Set-Cookie"].split(";")[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` without following redirects."""
    return http_request(url, "GET", None, headers)


def http_request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send one request without following redirects; return (status, headers, body)."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def handshake(url: str, origin: str, path: str = "/ws") -> int:
    """Open a websocket handshake to ``url + path`` from ``origin``; return the HTTP status (101: accepted)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    con = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:  # urllib would force "Connection: close", which is no handshake
        con.request("GET", path, headers={**WS_UPGRADE, "Origin": origin})
        return con.getresponse().status
    finally:
        con.close()


def write_config(folder: Path, *, interval: float = 1.0, session_lifetime: str = "1s", rules: bool = True) -> Path:
    """Write a monitorkit.toml for a test server (fast session cleanup, the seeded alert rule) and return it."""
    rules_dir = folder / "rules"
    rules_dir.mkdir(exist_ok=True)
    if rules:
        (rules_dir / "dashboard_seeded.sql").write_text(ALERT_RULE)
    config = folder / "monitorkit.toml"
    config.write_text(
        f'[collect]\ninterval = {interval}\n\n[serve]\nsession_lifetime = "{session_lifetime}"\n\n'
        f'[rules]\ndirs = ["{rules_dir}"]\ndefaults = false\n\n'
        '[collectors.processes]\ninterval = 5\n\n[collectors.connections]\ninterval = 10\n'
    )
    return config


@contextmanager
def served(folder: Path, *, interval: float = 1.0, session_lifetime: str = "1s", rules: bool = True,
           timeout: float = 90.0) -> Iterator[Served]:
    """Run `monitorkit serve --port 0` in a child on a fresh database in ``folder``; stop it with SIGTERM."""
    db = folder / "monitorkit.duckdb"
    config = write_config(folder, interval=interval, session_lifetime=session_lifetime, rules=rules)
    code = "import sys; from monitorkit.cli import main; main(sys.argv[1:], prog_name='monitorkit')"
    proc = subprocess.Popen(
        [PYTHON, "-c", code, "serve", "--db", str(db), "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, cwd=folder, env=child_env(),
    )
    found: list[tuple[str, str]] = []
    errors: list[str] = []
    done = threading.Event()

    def drain() -> None:  # a full stderr pipe would block the child's logging
        assert proc.stderr is not None
        errors.extend(proc.stderr)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = URL_RE.match(line.strip())
            if match and not found:
                found.append((match.group(1), match.group(2) or ""))
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    done.wait(timeout)
    try:
        if not found:
            proc.kill()
            drainer.join(10)
            stderr = "".join(errors)
            raise AssertionError(f"`monitorkit serve` printed no dashboard URL within {timeout:.0f} s:\n{stderr[-4000:]}")
        yield Served(proc, found[0][0], found[0][1], db, errors)
    finally:
        stop_process(proc, grace=30)
        drainer.join(10)  # every line the child wrote is in Served.stderr now


def metrics(server: Served) -> dict[str, float]:
    """Return the dashboard's own counters from /metrics (sessions, polls, ticks, store queries)."""
    status, _, body = server.get("/metrics")
    assert status == 200, body[:500]
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("monitorkit_dashboard_"):
            name, value = line.split(" ")[:2]
            out[name] = float(value)
    return out


def require_chromium() -> None:
    """Skip without Debian's chromium, except under CI (CI set) where its absence is a failure."""
    import pytest

    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


STATUS_RE = re.compile(r"data-seq='(-?\d+)' data-newest='(\d+)' data-polled='(\d+)' data-points='(\d+)'")


def document_ready() -> tuple[str, str, str]:
    """Return the PATCH-DOC frames (header, metadata, content) of BokehJS's ``document_ready`` event."""
    from bokeh.util.serialization import make_id

    event = {"type": "event", "name": "document_ready", "values": {"type": "map", "entries": []}}
    content = {"events": [{"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": event}]}
    return json.dumps({"msgid": make_id(), "msgtype": "PATCH-DOC"}), "{}", json.dumps(content)


class Watcher:
    """Headless sessions: raw Bokeh websocket clients on one IOLoop thread, recording each status update.

    Each connects like BokehJS does (session token, ACK, PULL-DOC-REQ), so the server builds and
    sends a full dashboard per session; the client only scans incoming frames for the status line
    instead of rebuilding the document in Python.
    """

    def __init__(self, url: str, token: str, count: int) -> None:
        self.url, self.token, self.count = url, token, count
        self.updates: list[list[tuple[float, int, float]]] = [[] for _ in range(count)]  # (received ms, seq, newest ms)
        self.bytes = [0] * count
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    async def _session(self, i: int, opened: list[int]) -> None:
        from bokeh.protocol import Protocol
        from bokeh.util.token import generate_jwt_token, generate_session_id
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        session_token = generate_jwt_token(generate_session_id())
        ws_url = self.url.replace("http", "ws", 1) + "/ws?token=" + self.token
        conn = await websocket_connect(HTTPRequest(ws_url, request_timeout=120), subprotocols=["bokeh", session_token],
                                       max_message_size=200 * 2**20)
        await conn.read_message()  # the ACK header
        await conn.read_message()
        await conn.read_message()
        pull = Protocol().create("PULL-DOC-REQ")
        for part in (pull.header_json, pull.metadata_json, pull.content_json):
            await conn.write_message(part)
        # BokehJS reports 'document_ready' once the page has rendered; Panel holds and merges a
        # session's updates into one message per tick only from then on (``state.loaded``).
        for part in document_ready():
            await conn.write_message(part)
        opened.append(i)
        try:
            while not self._stop.is_set():
                frame = await conn.read_message()
                if frame is None:
                    return
                text = frame if isinstance(frame, str) else frame.decode(errors="replace")
                self.bytes[i] += len(text)
                if "mk-status" in text:
                    match = STATUS_RE.search(html.unescape(text.replace("\\u0027", "'")))
                    if match:
                        self.updates[i].append((time.time() * 1000, int(match.group(1)), float(match.group(2))))
        finally:
            conn.close()

    def _run(self) -> None:
        import asyncio

        async def main() -> None:
            opened: list[int] = []
            tasks = []
            for i in range(self.count):
                tasks.append(asyncio.ensure_future(self._session(i, opened)))
                while len(opened) <= i and not tasks[-1].done():
                    await asyncio.sleep(0.01)
                if tasks[-1].done() and tasks[-1].exception():
                    raise tasks[-1].exception()  # type: ignore[misc]
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.sleep(0.5)  # let the close frames go out

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by start()
            self.error = exc
            self._ready.set()

    def start(self, timeout: float = 180.0) -> None:
        """Open every session (one after the other, like tabs opened in turn); return once all are open."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError(f"{self.count} sessions did not open within {timeout:.0f} s")
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Close every session."""
        self._stop.set()
        self._thread.join(60)


@contextmanager
def dashboard_server(folder: Path, *, token: str = "tok", api_key: str = "key-123", open_metrics: bool = True,
                     server_class: Any = None, **kwargs: Any) -> Iterator[Any]:
    """Run a DashboardServer in this process on port 0 over a fresh store in ``folder``; yield it (``.url``)."""
    from monitorkit.dashboard.app import AppContext, LayoutBackend
    from monitorkit.dashboard.auth import TokenAuth, make_credential
    from monitorkit.dashboard.feed import Feed
    from monitorkit.dashboard.reader import StoreReader
    from monitorkit.dashboard.server import DashboardServer
    from monitorkit.owner.schema import SCHEMA
    from monitorkit.samples import Sample, utcnow
    from monitorkit.store import Store

    with Store(folder / "m.duckdb", schema=SCHEMA) as store:
        store.write([Sample(utcnow(), "monitorkit_collector_up", {"collector": "cpu"}, 1.0)])
        store.flush()
        reader = StoreReader(store)
        feed = Feed(reader)
        feed.poll()
        app = AppContext(feed, reader, LayoutBackend(reader, lambda fn: store.submit(fn).result(10)))
        server = (server_class or DashboardServer)(app, TokenAuth(make_credential(token)), api_key=api_key, **kwargs)
        server.open_metrics = open_metrics
        server.start()
        try:
            yield server
        finally:
            server.stop()
