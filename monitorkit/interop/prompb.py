"""Prometheus remote-write 1.0 protobuf messages (``prompb``), built at import from their field numbers.

No generated ``_pb2`` file to keep in step with the protobuf runtime: the few messages of
``prometheus/prompb/{remote,types}.proto`` are declared here. ``RawWriteRequest`` reads the same
bytes with each series and label left as bytes, so the decoder can walk them in bulk.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "monitorkit.prompb"
# (message, [(field, number, type, repeated, message type)]) as in prompb/types.proto and remote.proto.
_MESSAGES: list[tuple[str, list[tuple[str, int, int, bool, str]]]] = [
    ("Label", [("name", 1, _F.TYPE_STRING, False, ""), ("value", 2, _F.TYPE_STRING, False, "")]),
    ("Sample", [("value", 1, _F.TYPE_DOUBLE, False, ""), ("timestamp", 2, _F.TYPE_INT64, False, "")]),
    ("Exemplar", [("labels", 1, _F.TYPE_MESSAGE, True, "Label"), ("value", 2, _F.TYPE_DOUBLE, False, ""),
                  ("timestamp", 3, _F.TYPE_INT64, False, "")]),
    ("TimeSeries", [("labels", 1, _F.TYPE_MESSAGE, True, "Label"), ("samples", 2, _F.TYPE_MESSAGE, True, "Sample"),
                    ("exemplars", 3, _F.TYPE_MESSAGE, True, "Exemplar")]),
    # type: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram, 5 summary, 6 info, 7 stateset.
    ("MetricMetadata", [("type", 1, _F.TYPE_INT32, False, ""), ("metric_family_name", 2, _F.TYPE_STRING, False, ""),
                        ("help", 4, _F.TYPE_STRING, False, ""), ("unit", 5, _F.TYPE_STRING, False, "")]),
    ("WriteRequest", [("timeseries", 1, _F.TYPE_MESSAGE, True, "TimeSeries"),
                      ("metadata", 3, _F.TYPE_MESSAGE, True, "MetricMetadata")]),
    ("RawWriteRequest", [("timeseries", 1, _F.TYPE_BYTES, True, ""),
                         ("metadata", 3, _F.TYPE_MESSAGE, True, "MetricMetadata")]),
]
METADATA_TYPES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset")


def _build() -> dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto(name="monitorkit/prompb.proto", package=_PACKAGE, syntax="proto3")
    for name, fields in _MESSAGES:
        message = proto.message_type.add(name=name)
        for field, number, kind, repeated, type_name in fields:
            spec = message.field.add(name=field, number=number, type=kind,
                                     label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                spec.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name, _ in _MESSAGES}


_CLASSES = _build()
Label: Any = _CLASSES["Label"]
Sample: Any = _CLASSES["Sample"]
TimeSeries: Any = _CLASSES["TimeSeries"]
MetricMetadata: Any = _CLASSES["MetricMetadata"]
WriteRequest: Any = _CLASSES["WriteRequest"]
RawWriteRequest: Any = _CLASSES["RawWriteRequest"]
