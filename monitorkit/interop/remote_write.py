"""Decode a Prometheus remote-write 1.0 request (snappy block + protobuf) into columns, in bulk.

The protobuf runtime splits the request into one bytes object per series (C speed); numpy then
walks every series' fields at once, one field position per pass (a series has a handful), and
decodes the samples' doubles and varint timestamps as arrays. A series is identified by its
label bytes as sent, so a series seen before costs a dict lookup. Anything off the common
layout (fields out of order, exemplars or histograms, unusual sample encodings) is decoded by
the protobuf classes instead, with the same result (tests/test_interop_remote_write.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import cramjam
import numpy as np

from monitorkit.errors import InvalidSampleError, MonitorkitError
from monitorkit.interop import prompb
from monitorkit.interop.bulk import AppendRefused, ColumnWriter, CommitFailed, Counts, SeriesSpec
from monitorkit.interop.metadata import Metadata
from monitorkit.interop.scrape import host_of
from monitorkit.owner.api import Request, Response
from monitorkit.samples import HOST, validate_labels, validate_name

MAX_DECODED_BYTES = 256 * 2**20
_LEN = 2  # protobuf wire type of length-delimited fields


class RemoteWriteError(MonitorkitError, ValueError):
    """A request body that is not snappy-compressed remote-write protobuf (answered 400)."""


class Decoded(NamedTuple):
    """A request as columns: label bytes per series, and per sample its series index, time (ms) and value."""

    keys: list[bytes]
    series: np.ndarray  # int64 index into keys, one per sample
    ts_ms: np.ndarray  # int64
    values: np.ndarray  # float64
    metadata: list[Metadata]


def uncompress(body: bytes, limit: int = MAX_DECODED_BYTES) -> bytes:
    """Return the snappy block's content, refusing one that announces more than ``limit`` bytes."""
    size, shift = 0, 0
    for i, byte in enumerate(body[:10]):
        size |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
        if i == 9:
            raise RemoteWriteError("body is not a snappy block: bad length header")
    if size > limit:
        raise RemoteWriteError(f"body uncompresses to {size} bytes, over the limit of {limit}; send smaller batches")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise RemoteWriteError(f"body is not snappy-compressed (Content-Encoding: snappy): {exc}") from None


def _varints(buf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode a varint at each position of ``buf``: return the values (uint64) and the positions after them."""
    value = np.zeros(len(pos), np.uint64)
    at = pos.copy()
    going = np.ones(len(pos), bool)
    for i in range(10):
        byte = buf[at]
        value |= np.where(going, (byte & 0x7F).astype(np.uint64) << np.uint64(7 * i), np.uint64(0))
        more = going & (byte >= 0x80)
        at = np.where(going, at + 1, at)
        going = more
        if not going.any():
            return value, at
    raise RemoteWriteError("malformed protobuf: a varint longer than 10 bytes")


class _Fields(NamedTuple):
    owner: np.ndarray  # index of the series each field belongs to
    number: np.ndarray  # field number
    start: np.ndarray  # payload start in the joined buffer
    length: np.ndarray  # payload length


def _walk(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[_Fields, np.ndarray]:
    """Split every series into its fields, one position per pass; return the fields and a 'needs the slow path' mask."""
    slow = np.zeros(len(starts), bool)
    pos = starts.copy()
    live = np.flatnonzero(pos < ends)
    owners, numbers, begins, lengths = [], [], [], []
    while len(live):
        p = pos[live]
        tag = buf[p]
        odd = (tag & 7 != _LEN) | (tag >= 0x80)
        if odd.any():
            slow[live[odd]] = True
            live, p, tag = live[~odd], p[~odd], tag[~odd]
        size, body = _varints(buf, p + 1)
        after = body + size.astype(np.int64)
        over = after > ends[live]
        if over.any():
            raise RemoteWriteError("malformed protobuf: a field runs past the end of its series")
        owners.append(live)
        numbers.append(tag >> 3)
        begins.append(body)
        lengths.append(size.astype(np.int64))
        pos[live] = after
        live = live[after < ends[live]]
    if not owners:
        empty = np.zeros(0, np.int64)
        return _Fields(empty, empty.astype(np.uint8), empty, empty), slow
    return _Fields(np.concatenate(owners), np.concatenate(numbers), np.concatenate(begins),
                   np.concatenate(lengths)), slow


def _samples(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode Sample messages (value = field 1 double, timestamp = field 2 varint); return values, ms, ok mask."""
    n = len(start)
    values = np.zeros(n, np.float64)
    ts = np.zeros(n, np.int64)
    ok = length == 0  # value 0 at time 0: proto3 writes nothing for defaults
    first = buf[start]
    has_value = (first == 0x09) & (length >= 9)
    if has_value.any():
        at = start[has_value][:, None] + np.arange(1, 9)
        values[has_value] = np.ascontiguousarray(buf[at]).view("<f8").ravel()
    ts_at = np.where(has_value, start + 9, start)
    rest = start + length - ts_at
    only_value = has_value & (rest == 0)
    ok |= only_value
    with_ts = (rest > 0) & (buf[np.minimum(ts_at, len(buf) - 1)] == 0x10) & ((first == 0x09) | (first == 0x10))
    if with_ts.any():
        raw, after = _varints(buf, ts_at[with_ts] + 1)
        ts[with_ts] = raw.view(np.int64)  # int64 varints are two's complement
        ok[with_ts] = after == (start + length)[with_ts]
    return values, ts, ok


def decode(data: bytes) -> Decoded:
    """Decode an uncompressed WriteRequest; RemoteWriteError if it is not one."""
    try:
        request = prompb.RawWriteRequest.FromString(data)
    except Exception as exc:  # protobuf's DecodeError has no stable import path across runtimes
        raise RemoteWriteError(f"body is not a remote-write WriteRequest: {exc}") from None
    metadata = [Metadata(m.metric_family_name, prompb.METADATA_TYPES[m.type] if 0 <= m.type < 8 else "unknown",
                         m.help, m.unit) for m in request.metadata]
    raw: list[bytes] = list(request.timeseries)
    if not raw:
        return Decoded([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), metadata)
    sizes = np.fromiter(map(len, raw), np.int64, len(raw))
    ends = np.cumsum(sizes)
    starts = ends - sizes
    buf = np.frombuffer(b"".join(raw) + bytes(11), np.uint8)  # padding: varint reads never index past the end
    fields, slow = _walk(buf, starts, ends)
    is_label = fields.number == 1
    is_sample = fields.number == 2
    # Labels must come first in a series (Prometheus writes them so): the key is the bytes before the samples.
    label_end = np.zeros(len(raw), np.int64)
    np.maximum.at(label_end, fields.owner[is_label], (fields.start + fields.length)[is_label])
    other_start = np.full(len(raw), np.iinfo(np.int64).max)
    np.minimum.at(other_start, fields.owner[~is_label], fields.start[~is_label])
    slow |= (label_end > other_start) | (label_end == 0)
    slow[fields.owner[~(is_label | is_sample)]] = True  # exemplars, histograms: the protobuf classes read them
    values, ts, ok = _samples(buf, fields.start[is_sample], fields.length[is_sample])
    owner = fields.owner[is_sample]
    slow[owner[~ok]] = True
    keep = ~slow[owner]
    key_len = (label_end - starts).tolist()
    keys = [r[:k] for r, k in zip(raw, key_len, strict=True)]
    series, ts_ms, vals = [owner[keep]], [ts[keep]], [values[keep]]
    for i in np.flatnonzero(slow).tolist():
        keys[i], s_ts, s_vals = _slow_series(raw[i])
        series.append(np.full(len(s_ts), i, np.int64))
        ts_ms.append(np.asarray(s_ts, np.int64))
        vals.append(np.asarray(s_vals, np.float64))
    return Decoded(keys, np.concatenate(series), np.concatenate(ts_ms), np.concatenate(vals), metadata)


def _slow_series(raw: bytes) -> tuple[bytes, list[int], list[float]]:
    """Decode one series with the protobuf classes: its label bytes (canonical), times and values."""
    try:
        series = prompb.TimeSeries.FromString(raw)
    except Exception as exc:  # protobuf's DecodeError, as above
        raise RemoteWriteError(f"malformed series in WriteRequest: {exc}") from None
    key = prompb.TimeSeries(labels=series.labels).SerializeToString()
    return key, [s.timestamp for s in series.samples], [s.value for s in series.samples]


def labels_of(key: bytes) -> dict[str, str]:
    """Return the labels a series key (its label bytes) holds, ``__name__`` included."""
    return {label.name: label.value for label in prompb.TimeSeries.FromString(key).labels}


def decode_body(body: bytes, limit: int = MAX_DECODED_BYTES) -> Decoded:
    """Uncompress and decode a remote-write request body."""
    return decode(uncompress(body, limit))


MAX_CACHED_SERIES = 1_000_000


def spec_of(name: str | None, labels: dict[str, str]) -> SeriesSpec | None:
    """Return the series of a remote label set, or None if the store would refuse it.

    The host column: a ``host`` label, else the host of ``instance`` (loopback ones: this machine), else this machine.
    """
    try:
        checked = validate_labels(labels, metric=name or "")
        validate_name(name)
    except InvalidSampleError:
        return None
    instance = checked.get("instance")
    host = checked.get("host") or (host_of(instance) if instance else HOST)
    return SeriesSpec(host, name or "", checked)


class RemoteWrite:
    """Answer ``POST /api/v1/write``: decode, append through the ColumnWriter; series remembered by their label bytes."""

    def __init__(self, writer: ColumnWriter, on_metadata: Callable[[list[Metadata], str], None] | None = None) -> None:
        self.writer = writer
        self.on_metadata = on_metadata
        self.counts = Counts()
        self._ids: dict[bytes, int] = {}  # label bytes -> series id (0: refused)

    def handle(self, request: Request) -> Response:
        """Answer one request: 204 once committed, 400 undecodable or refused, 503 not committed."""
        try:
            decoded = decode_body(request.body)
        except RemoteWriteError as exc:
            self.counts.add(bad_requests=1)
            return Response.text(400, str(exc))
        if decoded.metadata and self.on_metadata is not None:
            self.on_metadata(decoded.metadata, "remote_write")
        cache = self._ids
        ids = np.array([cache.get(key, -1) for key in decoded.keys], np.int64)
        specs: dict[int, SeriesSpec | None] = {}
        for i in np.flatnonzero(ids == -1).tolist():
            labels = labels_of(decoded.keys[i])
            specs[i] = spec_of(labels.pop("__name__", None), labels)
        try:
            result = self.writer.write(ids, specs, decoded.series, decoded.ts_ms, decoded.values)
        except AppendRefused as exc:
            self.counts.add(refused_requests=1)
            return Response.text(400, str(exc))
        except CommitFailed as exc:
            self.counts.add(failed_requests=1)
            return Response.text(503, str(exc))
        if len(cache) > MAX_CACHED_SERIES:
            cache.clear()
        for i in specs:
            cache[decoded.keys[i]] = int(result.ids[i])
        self.counts.add(requests=1, samples=result.written, duplicates=result.duplicates,
                        out_of_order=result.out_of_order, refused=result.refused, nonfinite=result.nonfinite)
        return Response(204, b"")
