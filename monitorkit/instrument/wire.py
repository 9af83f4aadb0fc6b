"""The ingest wire format: batches of samples or tool runs as JSON lines or an Arrow IPC stream.

JSON lines need only the standard library (applications stay small); Arrow is used when
pyarrow is already loaded in the application. The owner accepts both and validates every row.
Times travel as integer microseconds since the Unix epoch (JSON) or ``timestamp[us, UTC]`` (Arrow).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from monitorkit.errors import InvalidSampleError, InvalidValueError
from monitorkit.instrument.blocks import OUTCOMES
from monitorkit.instrument.executions import Execution
from monitorkit.instrument.tools import check_tool_name
from monitorkit.samples import Sample, make_sample, validate_labels, validate_time

JSON_TYPE = "application/x-ndjson"
ARROW_TYPE = "application/vnd.apache.arrow.stream"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
MAX_RUN_ID = 64
MAX_ERROR_TYPE = 200
MAX_ERROR_MESSAGE = 10_000
SAMPLE_COLUMNS = ("time", "name", "labels", "value", "host")
EXECUTION_COLUMNS = Execution._fields


def choose_format(fmt: str = "auto") -> str:
    """Return the content type for ``fmt``: arrow, json, or auto (Arrow if pyarrow is already imported)."""
    if fmt == "auto":
        return ARROW_TYPE if "pyarrow" in sys.modules else JSON_TYPE
    if fmt in ("arrow", ARROW_TYPE):
        return ARROW_TYPE
    if fmt in ("json", JSON_TYPE):
        return JSON_TYPE
    raise InvalidValueError(f"unknown wire format {fmt!r}; use 'auto', 'arrow' or 'json'")


def _micros(t: datetime, memo: dict[datetime, int]) -> int:
    us = memo.get(t)
    if us is None:
        us = memo[t] = (t - EPOCH) // ONE_US
    return us


def _from_micros(us: object, what: str) -> datetime:
    if isinstance(us, bool) or not isinstance(us, int):
        raise InvalidValueError(f"{what} must be integer microseconds since the epoch, got {us!r}")
    try:
        return EPOCH + timedelta(microseconds=us)
    except OverflowError:
        raise InvalidValueError(f"{what} = {us} microseconds is out of range; send microseconds since 1970") from None


def _merged(labels: Mapping[str, str], extra: Mapping[str, str]) -> Mapping[str, str]:
    return {**extra, **labels} if extra else labels


def encode_samples(samples: Sequence[Sample], content_type: str, extra: Mapping[str, str] = {}) -> bytes:
    """Return ``samples`` (labels merged over ``extra``) encoded as ``content_type``."""
    if content_type == ARROW_TYPE:
        import pyarrow as pa

        return _ipc(pa.table({
            "time": pa.array([s.time for s in samples], pa.timestamp("us", tz="UTC")),
            "name": pa.array([s.name for s in samples], pa.string()),
            "labels": pa.array([list(_merged(s.labels, extra).items()) for s in samples],
                               pa.map_(pa.string(), pa.string())),
            "value": pa.array([s.value for s in samples], pa.float64()),
            "host": pa.array([s.host for s in samples], pa.string()),
        }))
    memo: dict[datetime, int] = {}
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    return "\n".join(
        dumps({"time": _micros(s.time, memo), "name": s.name, "labels": _merged(s.labels, extra),
               "value": s.value, "host": s.host})
        for s in samples
    ).encode()


def encode_executions(rows: Sequence[Execution], content_type: str) -> bytes:
    """Return tool runs encoded as ``content_type``."""
    if content_type == ARROW_TYPE:
        return _ipc(executions_table(rows))
    memo: dict[datetime, int] = {}
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    return "\n".join(dumps({**r._asdict(), "started": _micros(r.started, memo)}) for r in rows).encode()


def executions_table(rows: Sequence[Execution]) -> Any:
    """Return tool runs as a pyarrow Table with the ``executions`` table's column types."""
    import pyarrow as pa

    return pa.table({
        "run_id": pa.array([r.run_id for r in rows], pa.string()),
        "tool": pa.array([r.tool for r in rows], pa.string()),
        "started": pa.array([r.started for r in rows], pa.timestamp("us", tz="UTC")),
        "duration_s": pa.array([r.duration_s for r in rows], pa.float64()),
        "outcome": pa.array([r.outcome for r in rows], pa.string()),
        "error_type": pa.array([r.error_type for r in rows], pa.string()),
        "error_message": pa.array([r.error_message for r in rows], pa.string()),
        "labels": pa.array([list(r.labels.items()) for r in rows], pa.map_(pa.string(), pa.string())),
        "host": pa.array([r.host for r in rows], pa.string()),
        "pid": pa.array([r.pid for r in rows], pa.int32()),
    })


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _rows(content_type: str, body: bytes, columns: Sequence[str], what: str) -> Iterator[dict[str, Any]]:
    """Yield one dict per row of a JSON-lines or Arrow body, refusing a malformed one."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == ARROW_TYPE:
        import pyarrow as pa

        try:
            table = pa.ipc.open_stream(body).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidSampleError(f"body is not an Arrow IPC stream: {exc}") from None
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise InvalidSampleError(f"Arrow batch of {what} lacks column(s) {', '.join(missing)}")
        data = {c: table.column(c).to_pylist() for c in columns}
        for i in range(table.num_rows):
            yield {c: data[c][i] for c in columns}
        return
    if kind != JSON_TYPE:
        raise InvalidSampleError(f"unsupported Content-Type {content_type!r}; send {JSON_TYPE} or {ARROW_TYPE}")
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:  # bad JSON, huge integers, nesting past the parser's depth
            raise InvalidSampleError(f"line {number} is not JSON a sample can be read from: {str(exc)[:200]}") from None
        if not isinstance(row, dict):
            raise InvalidSampleError(f"line {number} must be a JSON object with {', '.join(columns)}")
        yield row


def _labels(raw: object) -> object:
    # Arrow maps come back as lists of (key, value) pairs.
    return dict(raw) if isinstance(raw, list) else raw


def _time(raw: object, what: str) -> datetime:
    return raw if isinstance(raw, datetime) else _from_micros(raw, what)


def _str(raw: object, what: str, limit: int, *, optional: bool = False) -> str | None:
    if raw is None and optional:
        return None
    if not isinstance(raw, str) or not raw or len(raw) > limit:
        raise InvalidValueError(f"{what} must be a non-empty string of at most {limit} characters, got {raw!r}")
    return raw


def decode_samples(content_type: str, body: bytes) -> list[Sample]:
    """Return the validated samples of a batch; the first invalid one refuses the whole batch."""
    out: list[Sample] = []
    for i, row in enumerate(_rows(content_type, body, SAMPLE_COLUMNS, "samples")):
        try:
            host = _str(row.get("host"), "host", 255)
            assert host is not None
            out.append(make_sample(row.get("name"), row.get("value"), _labels(row.get("labels")),  # type: ignore[arg-type]
                                   validate_time(_time(row.get("time"), "time")), host))
        except InvalidSampleError as exc:
            raise type(exc)(f"sample {i + 1}: {exc}") from None
    return out


def decode_executions(content_type: str, body: bytes) -> list[Execution]:
    """Return the validated tool runs of a batch; the first invalid one refuses the whole batch."""
    out: list[Execution] = []
    for i, row in enumerate(_rows(content_type, body, EXECUTION_COLUMNS, "executions")):
        try:
            out.append(_execution(row))
        except InvalidSampleError as exc:
            raise type(exc)(f"execution {i + 1}: {exc}") from None
    return out


def _execution(row: Mapping[str, Any]) -> Execution:
    duration = row.get("duration_s")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 <= duration < math.inf:
        raise InvalidValueError(f"duration_s must be a finite number >= 0, got {duration!r}")
    outcome = row.get("outcome")
    if outcome not in OUTCOMES:
        raise InvalidValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    pid = row.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**31:
        raise InvalidValueError(f"pid must be a non-negative integer, got {pid!r}")
    return Execution(
        run_id=_str(row.get("run_id"), "run_id", MAX_RUN_ID),  # type: ignore[arg-type]
        tool=check_tool_name(row.get("tool")),
        started=validate_time(_time(row.get("started"), "started")),
        duration_s=float(duration),
        outcome=outcome,
        error_type=_str(row.get("error_type"), "error_type", MAX_ERROR_TYPE, optional=True),
        error_message=_str(row.get("error_message"), "error_message", MAX_ERROR_MESSAGE, optional=True),
        labels=validate_labels(_labels(row.get("labels")), metric="executions"),
        host=_str(row.get("host"), "host", 255),  # type: ignore[arg-type]
        pid=pid,
    )
