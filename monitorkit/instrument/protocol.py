"""Protocol metrics: requests, durations, bytes and errors of any request/response exchange.

``with track(protocol="http", method="GET") as ex: ex.status = 200; ex.response_bytes = len(body)``,
``async with track(...)``, or ``@track(protocol="grpc", method="Search")`` on a def or async def.
"""

from __future__ import annotations

from typing import NamedTuple

from monitorkit.errors import InvalidValueError
from monitorkit.instrument.blocks import TimedBlock, outcome_of
from monitorkit.instrument.catalog import (
    PROTOCOL_DURATION,
    PROTOCOL_ERRORS,
    PROTOCOL_REQUEST_BYTES,
    PROTOCOL_REQUESTS,
    PROTOCOL_RESPONSE_BYTES,
    spec,
)
from monitorkit.instrument.metrics import Counter, Histogram, counter, histogram
from monitorkit.instrument.registry import REGISTRY, Registry
from monitorkit.samples import validate_labels

INF = float("inf")


class ProtocolMetrics(NamedTuple):
    """The protocol metrics of one registry."""

    requests: Counter
    duration: Histogram
    request_bytes: Counter
    response_bytes: Counter
    errors: Counter


def protocol_metrics(registry: Registry) -> ProtocolMetrics:
    """Return (creating once) the protocol metrics of ``registry``."""

    def make(reg: Registry) -> ProtocolMetrics:
        return ProtocolMetrics(
            counter(*spec(PROTOCOL_REQUESTS), registry=reg),
            histogram(*spec(PROTOCOL_DURATION), registry=reg),
            counter(*spec(PROTOCOL_REQUEST_BYTES), registry=reg),
            counter(*spec(PROTOCOL_RESPONSE_BYTES), registry=reg),
            counter(*spec(PROTOCOL_ERRORS), registry=reg),
        )

    return registry.bundle("protocol", make)


def _byte_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < INF:
        raise InvalidValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return int(value)


class Exchange(TimedBlock):
    """One timed request/response; set ``status``, ``request_bytes``, ``response_bytes`` inside the block.

    Without an exception the status is what was set (default ``ok``). An exception records
    ``protocol_errors_total{error_type=<exception class>}`` and, unless a status was set,
    the status ``error``, ``timeout`` or ``cancelled``; ``fail("http_5xx")`` records an
    error without raising.
    """

    def __init__(self, protocol: str, method: str, *, registry: Registry | None = None) -> None:
        validate_labels({"protocol": protocol, "method": method}, metric="protocol_requests_total")
        self.protocol = protocol
        self.method = method
        self.registry = registry if registry is not None else REGISTRY
        self.status: str | int | None = None
        self.error_type: str | None = None
        self._request_bytes = 0
        self._response_bytes = 0

    def _fresh(self) -> Exchange:
        return Exchange(self.protocol, self.method, registry=self.registry)

    @property
    def request_bytes(self) -> int:
        """Return the bytes of the request (counted when the block ends)."""
        return self._request_bytes

    @request_bytes.setter
    def request_bytes(self, value: int) -> None:
        self._request_bytes = _byte_count(value, "request_bytes")

    @property
    def response_bytes(self) -> int:
        """Return the bytes of the response (counted when the block ends)."""
        return self._response_bytes

    @response_bytes.setter
    def response_bytes(self, value: int) -> None:
        self._response_bytes = _byte_count(value, "response_bytes")

    def fail(self, error_type: str) -> None:
        """Count this exchange as an error of ``error_type`` without raising."""
        self.error_type = str(error_type)

    def _finish(self, exc: BaseException | None, seconds: float) -> None:
        m = protocol_metrics(self.registry)
        pm = (self.protocol, self.method)
        outcome = outcome_of(exc)
        if exc is not None:
            self.error_type = type(exc).__name__
        if self.status is not None:
            status = str(self.status)
        else:
            status = "error" if outcome == "ok" and self.error_type else outcome
        m.requests.labels(*pm, status).inc()
        m.duration.labels(*pm).observe(seconds)
        if self._request_bytes:
            m.request_bytes.labels(*pm).inc(self._request_bytes)
        if self._response_bytes:
            m.response_bytes.labels(*pm).inc(self._response_bytes)
        if self.error_type is not None:
            m.errors.labels(*pm, self.error_type).inc()


def track(protocol: str, method: str, *, registry: Registry | None = None) -> Exchange:
    """Return a block that records one exchange: ``with track(protocol="http", method="GET") as ex: ...``."""
    return Exchange(protocol, method, registry=registry)


__all__ = ["Exchange", "ProtocolMetrics", "protocol_metrics", "track"]
