"""Shared pieces of the interop tests: canned exporters on port 0, the real Debian peers, an owner in a thread."""

from __future__ import annotations

import os
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from shared_helpers import stop_process, wait_for

from monitorkit.config import Settings
from monitorkit.owner.sidecar import free_port

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"

# (status, headers, body) or a callable that writes the answer itself (trickles, hangs).
Answer = tuple[int, dict[str, str], bytes]
Responder = Callable[[BaseHTTPRequestHandler], "Answer | None"]


def need(binary: str) -> str:
    """Return ``binary`` if installed; skip with the package to install, but fail under CI (.ci/run installs it)."""
    if Path(binary).exists():
        return binary
    package = {NODE_EXPORTER: "prometheus-node-exporter", PROMETHEUS: "prometheus", PROMTOOL: "prometheus"}[binary]
    message = f"{binary} is missing: apt-get install {package}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
    return binary


@contextmanager
def exporter(respond: Responder) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Serve ``respond(handler)`` on 127.0.0.1:<free port>; yield the address and the request headers seen."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append({"path": self.path, **dict(self.headers.items())})
            answer = respond(self)
            if answer is None:
                return  # the responder wrote (or withheld) the answer itself
            status, headers, body = answer
            self.send_response(status)
            for key, value in {"Content-Type": "text/plain; version=0.0.4", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def answering(url: str) -> bool:
    """Tell whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def node_exporter() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run the real Debian prometheus-node-exporter on a free loopback port; yield its address and process."""
    binary = need(NODE_EXPORTER)
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen([binary, f"--web.listen-address={address}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: answering(f"http://{address}/metrics") or proc.poll() is not None, 15, "node_exporter answering")
        assert proc.poll() is None, f"node_exporter exited with {proc.returncode}"
        yield address, proc
    finally:
        stop_process(proc)


@contextmanager
def owner_thread(settings: Settings, services: tuple[str, ...], *, lifetime: float = 240.0) -> Iterator[Any]:
    """Run an owner (no collectors) with ``services`` in a thread; yield its OwnerContext; stop it after."""
    from monitorkit.owner.runtime import run_owner

    stop, ready = threading.Event(), threading.Event()
    box: list[Any] = []

    def on_ready(ctx: Any) -> None:
        box.append(ctx)
        ready.set()

    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_owner(settings, stop, collectors=[], services=services, on_ready=on_ready)
        except BaseException as exc:  # handed to the test below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    timer = threading.Timer(lifetime, stop.set)  # never outlives a stuck test
    timer.daemon = True
    timer.start()
    assert ready.wait(60), "the owner did not start"
    if errors:
        raise errors[0]
    try:
        yield box[0]
    finally:
        stop.set()
        timer.cancel()
        thread.join(60)


def copy_rule(name: str, folder: Path, **header: str) -> Path:
    """Copy the shipped rule ``name`` into ``folder`` with some header fields replaced (``for_`` is ``for``)."""
    from monitorkit.rules.loader import default_rules_dir

    folder.mkdir(parents=True, exist_ok=True)
    lines = (default_rules_dir() / f"{name}.sql").read_text().splitlines()
    fields = {("for" if k == "for_" else k): v for k, v in header.items()}
    out = []
    for line in lines:
        key = line[3:].split(":", 1)[0].strip() if line.startswith("-- ") else ""
        out.append(f"-- {key}: {fields[key]}" if key in fields else line)
    path = folder / f"{name}.sql"
    path.write_text("\n".join(out) + "\n")
    return path
