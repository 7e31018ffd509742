"""Decoding OTLP protobuf values into plain Python values (no I/O)."""
from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .errors import DecodeError

__all__ = [
    "ExportTraceServiceRequest",
    "ExportTraceServiceResponse",
    "any_value",
    "attributes",
    "decode_request",
    "SPAN_KINDS",
    "STATUS_CODES",
]

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")


def decode_request(data: bytes) -> ExportTraceServiceRequest:
    """Parse a serialized ExportTraceServiceRequest; raise DecodeError when it is not one."""
    req = ExportTraceServiceRequest()
    try:
        req.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError subclasses of varying origin
        raise DecodeError(f"request body is not a valid ExportTraceServiceRequest: {exc}") from None
    return req


def any_value(v) -> Any:
    """Convert an OTLP AnyValue into str/bool/int/float/bytes-as-hex/list/dict/None."""
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return None


def attributes(kvs) -> dict[str, Any]:
    """Convert a repeated KeyValue into a dict; a later duplicate key wins, as in the SDKs."""
    return {kv.key: any_value(kv.value) for kv in kvs}
