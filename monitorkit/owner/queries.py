"""Readers' queries run on the owner under limits: ``POST /v1/query`` on the owner API.

``monitorkit.connect()`` and ``monitorkit sql`` send each statement here rather than through
Quack, because DuckDB 1.5.5's Quack server cannot cancel a query whose client went away
(measured: an interrupted client left its query running on the owner at a full core). Here
each statement is checked by the readers' allowlist, runs on its own cursor, is interrupted
after ``readers.timeout`` or as soon as its client disconnects (Ctrl-C), and its result is
streamed into Arrow batches and refused past ``readers.max_result_mb``.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import TYPE_CHECKING

import duckdb

from monitorkit.config import parse_duration
from monitorkit.errors import QueryError
from monitorkit.owner import client
from monitorkit.owner.api import Request, Response, parse_json_object
from monitorkit.owner.client import RawAnswer
from monitorkit.owner.readers import QueryRefused, ReaderPolicy

if TYPE_CHECKING:
    from monitorkit.config import Settings
    from monitorkit.owner.api import OwnerApi
    from monitorkit.store import Store

log = logging.getLogger(__name__)
QUERY_PATH = "/v1/query"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
BATCH_ROWS = 65_536
WATCH_EVERY = 0.2  # seconds between checks that the client is still connected


def send_query(port: int, token: str, sql: str, timeout: float) -> RawAnswer:
    """POST one statement (a trailing ';' dropped) to the owner's query route; OSError as the client raises it.

    The two callers (``monitorkit.connect()`` and the dashboard console) each map failures to their own
    errors; the request and the shape of a failed answer (``failure``) are the same for both.
    """
    body = json.dumps({"sql": sql.strip().rstrip(";")}).encode()
    return client.request_bytes(port, "POST", QUERY_PATH, token, "application/json", body, timeout)


def failure(answer: RawAnswer) -> tuple[str, str]:
    """Return (kind, message) of an answer other than 200: kind is refused, timeout or error."""
    try:
        error = json.loads(answer.body)
    except ValueError:
        error = {"error": answer.body.decode("utf-8", "replace"), "kind": "error"}
    return str(error.get("kind", "error")), str(error.get("error", f"HTTP {answer.status}"))


class QueryService:
    """Answer readers' statements with an Arrow IPC stream, or a JSON error with its kind."""

    def __init__(self, store: Store, readers: ReaderPolicy, settings: Settings) -> None:
        self.store = store
        self.readers = readers
        self.timeout = parse_duration(settings.get("readers.timeout", "60s")).total_seconds()
        self.max_bytes = int(float(settings.get("readers.max_result_mb", 256)) * 2**20)
        self.running = 0
        self.cancelled = 0
        self._lock = threading.Lock()

    def register(self, api: OwnerApi) -> None:
        """Answer ``POST /v1/query`` on ``api``."""
        api.add_route("POST", QUERY_PATH, self.handle)

    def handle(self, request: Request) -> Response:
        """Run the statement of ``{"sql": ...}`` and return its result."""
        payload = parse_json_object(request.body)
        sql = payload.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            return _error(400, "bad_request", 'send {"sql": "<one SELECT statement>"}')
        try:
            self.readers.check(sql)
        except QueryRefused as exc:
            return _error(403, "refused", str(exc))
        except QueryError as exc:
            try:  # parse only (nothing runs when parsing fails): DuckDB's own message, with the position
                duckdb.connect().extract_statements(sql)
            except duckdb.Error as parsed:
                return _error(400, "syntax", str(parsed))
            return _error(400, "syntax", str(exc))
        cur = self.store.cursor()
        done = threading.Event()
        why: list[str] = []

        def watch() -> None:
            waited = 0.0
            while not done.wait(WATCH_EVERY):
                waited += WATCH_EVERY
                if not request.client_alive():
                    why.append("gone")
                elif waited >= self.timeout:
                    why.append("timeout")
                else:
                    continue
                cur.interrupt()
                return

        watcher = threading.Thread(target=watch, name="monitorkit-query-watch", daemon=True)
        with self._lock:
            self.running += 1
        watcher.start()
        try:
            return self._run(cur, sql, why)
        finally:
            done.set()
            watcher.join()
            cur.close()
            with self._lock:
                self.running -= 1
                self.cancelled += bool(why)

    def _run(self, cur: duckdb.DuckDBPyConnection, sql: str, why: list[str]) -> Response:
        import pyarrow as pa  # on the first reader query, not at owner start (~30 MB)

        try:
            reader = cur.execute(sql).to_arrow_reader(BATCH_ROWS)
            sink = io.BytesIO()
            size = 0
            with pa.ipc.new_stream(sink, reader.schema) as out:
                for batch in reader:
                    size += batch.nbytes
                    if size > self.max_bytes:
                        cur.interrupt()
                        return _error(413, "too_large", (
                            f"the result is over readers.max_result_mb ({self.max_bytes // 2**20} MiB); "
                            "add a LIMIT, aggregate, or select fewer columns"))
                    out.write_batch(batch)
        except duckdb.InterruptException:
            if why and why[0] == "timeout":
                return _error(408, "timeout", f"the query ran past readers.timeout ({self.timeout:g} s) and was stopped")
            return _error(499, "cancelled", "the client went away; the query was stopped")
        except duckdb.Error as exc:
            return _error(400, "error", str(exc))
        return Response(200, sink.getvalue(), ARROW_STREAM)


def _error(status: int, kind: str, message: str) -> Response:
    return Response.json(status, {"error": message, "kind": kind})
