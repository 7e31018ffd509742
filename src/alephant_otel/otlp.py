"""Decoding OTLP protobuf values into plain Python values (no I/O)."""
from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from . import wire
from .errors import DecodeError

__all__ = [
    "ExportTraceServiceRequest",
    "ExportTraceServiceResponse",
    "any_value",
    "attributes",
    "decode_request",
    "decode_json",
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


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


_NOT_AN_ID = base64.b64encode(b"\0").decode()  # one byte: no valid id has that length


def _hex_ids_to_base64(obj: dict) -> None:
    """OTLP/JSON writes ids as hex; the protobuf JSON mapping expects base64. An id that is not
    hex becomes one of an impossible length, so that its span is rejected alone (partial
    success), not the request, and a bad parent id does not turn the span into a root."""
    for key in _ID_KEYS:
        v = obj.get(key)
        if isinstance(v, str) and v:
            try:
                obj[key] = base64.b64encode(bytes.fromhex(v)).decode()
            except ValueError:
                obj[key] = _NOT_AN_ID


def decode_json(data: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON ExportTraceServiceRequest: lowerCamelCase keys, hex ids, integer
    enums, 64-bit integers as strings or numbers; unknown fields are ignored."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError("request body must be a JSON object (an ExportTraceServiceRequest)")
    try:
        for rs in doc.get("resourceSpans") or doc.get("resource_spans") or ():
            for ss in rs.get("scopeSpans") or rs.get("scope_spans") or ():
                for span in ss.get("spans") or ():
                    _hex_ids_to_base64(span)
                    for link in span.get("links") or ():
                        _hex_ids_to_base64(link)
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise DecodeError(f"request body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None


MAX_DEPTH = 64  # nested arrays/kvlists deeper than this are kept as a marker string


def any_value(v, depth: int = 0) -> Any:
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
    if which in ("array_value", "kvlist_value") and depth >= MAX_DEPTH:
        return f"<nested deeper than {MAX_DEPTH} levels: not kept>"
    if which == "array_value":
        return [any_value(x, depth + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return None


def attributes(kvs) -> dict[str, Any]:
    """Convert a repeated KeyValue (or a wire.py attribute map) into a dict; a later duplicate
    key wins, as in the SDKs. (The common scalar cases are inlined: this runs for every
    attribute of every span.)"""
    if hasattr(kvs, "items"):
        return wire.attributes(kvs)
    out = {}
    for kv in kvs:
        v = kv.value
        which = v.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = v.string_value
        elif which == "int_value":
            out[kv.key] = v.int_value
        elif which == "double_value":
            out[kv.key] = v.double_value
        else:
            out[kv.key] = any_value(v)
    return out
