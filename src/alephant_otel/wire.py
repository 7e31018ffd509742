"""OTLP trace messages shaped for the mapper: the official wire format, cheaper to read.

`parse(data)` reads an ExportTraceServiceRequest into messages built from the official
descriptors with one change: every `repeated KeyValue attributes` field is declared as
`map<string, bytes>`. A KeyValue and a map entry are the same bytes on the wire (field 1 the
key, field 2 the value), so upb parses attributes in C into key -> serialized AnyValue, and no
Python object is made per KeyValue. `value(raw)` turns one serialized AnyValue into a plain
Python value; values repeat (models, providers, header values), so decoded ones are cached.

`decode_native(data)` reads the common request (spans with scalar attributes, no links) in C,
straight into the mapper's raw rows and attribute dicts; other spans are left to `parse_span`,
other resources and scopes to `parse`.

`count_spans(data)` counts a request's spans by reading spans as opaque bytes: the receiver
admits a request by its size without decoding it (a worker process decodes it).

Like a KeyValue list read by the SDKs, a map keeps the last value of a repeated key. Iteration
order is the map's, not the sender's; nothing in the mapping depends on attribute order. What
the official parse refuses (a string that is not UTF-8, a malformed value) raises DecodeError
when the value is read, so `map_request` refuses the whole request just the same.
"""
from __future__ import annotations

import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .errors import DecodeError

try:
    from . import _wirec  # the common request read in C (_wirec.c)
except ImportError:  # installed without a C compiler: every request is read by parse()
    _wirec = None

_OFFICIAL = ".opentelemetry.proto."
_OURS = ".alephant.wire."
_KEY_VALUE = ".opentelemetry.proto.common.v1.KeyValue"


def _files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The official trace_service.proto and its dependencies, dependencies first."""
    out, seen = [], set()

    def visit(fd):
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            visit(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        out.append(proto)

    visit(trace_service_pb2.DESCRIPTOR)
    return out


def _rename(name: str) -> str:
    return name.replace("opentelemetry/proto/", "alephant/wire/")


def _rewrite_message(msg: descriptor_pb2.DescriptorProto, scope: str) -> None:
    """Point type names at our package and declare KeyValue attributes as map entries;
    `scope` is the message's full name (".alephant.wire.trace.v1.Span")."""
    for nested in msg.nested_type:
        _rewrite_message(nested, f"{scope}.{nested.name}")
    for field in msg.field:
        if field.type_name == _KEY_VALUE and field.label == FieldDescriptorProto.LABEL_REPEATED:
            entry = msg.nested_type.add(name="".join(p.capitalize() for p in field.name.split("_")) + "Entry")
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=FieldDescriptorProto.TYPE_STRING,
                            label=FieldDescriptorProto.LABEL_OPTIONAL)
            entry.field.add(name="value", number=2, type=FieldDescriptorProto.TYPE_BYTES,
                            label=FieldDescriptorProto.LABEL_OPTIONAL)
            field.type_name = f"{scope}.{entry.name}"
        elif field.type_name.startswith(_OFFICIAL):
            field.type_name = _OURS + field.type_name[len(_OFFICIAL):]


def _build_pool():
    pool = descriptor_pool.DescriptorPool()
    for proto in _files():
        proto.name = _rename(proto.name)
        proto.dependency[:] = [_rename(d) for d in proto.dependency]
        proto.package = proto.package.replace("opentelemetry.proto.", "alephant.wire.")
        proto.ClearField("service")
        proto.ClearField("options")
        for msg in proto.message_type:
            _rewrite_message(msg, f".{proto.package}.{msg.name}")
        pool.Add(proto)
    return pool


def _count_pool():
    """ExportTraceServiceRequest with spans as bytes: enough to count them."""
    F = FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="alephant/wire/count.proto", package="alephant.wire.count",
                                               syntax="proto3")
    for message, field, number, type_name in (("ScopeSpans", "spans", 2, None),
                                              ("ResourceSpans", "scope_spans", 2, ".alephant.wire.count.ScopeSpans"),
                                              ("Request", "resource_spans", 1, ".alephant.wire.count.ResourceSpans")):
        f = proto.message_type.add(name=message).field.add(
            name=field, number=number, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE if type_name else F.TYPE_BYTES)
        if type_name:
            f.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool


_POOL = _build_pool()
Request = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("alephant.wire.collector.trace.v1.ExportTraceServiceRequest"))
_Span = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("alephant.wire.trace.v1.Span"))
_OFFICIAL_CLASSES = {"Resource": Resource, "InstrumentationScope": InstrumentationScope}
_CountRequest = message_factory.GetMessageClass(_count_pool().FindMessageTypeByName("alephant.wire.count.Request"))


def _read(message, data: bytes):
    """`message` parsed from `data`; DecodeError, naming the official messages, if it fails."""
    try:
        message.ParseFromString(data)
    except Exception as exc:
        raise DecodeError(f"request body is not a valid ExportTraceServiceRequest: {_official_names(exc)}") from None
    return message


def parse(data: bytes):
    """Parse a serialized ExportTraceServiceRequest for mapping; raise DecodeError when it is
    not one. Fields are those of the official messages; attributes are maps (see above)."""
    return _read(Request(), data)


def decode_native(data: bytes):
    """The request read in C without messages, as [(resource attributes, [(scope name, scope
    version, [(raw row, attributes, kind, events, offset, length)])])], events as
    mapping.span.read_events gives them and the span's bytes being data[offset:offset +
    length]. A span the C reader leaves to `parse_span` (links, unknown fields, bad ids, nested
    or bytes values, malformed bytes) has row, attributes and events None. None when a
    resource or scope holds such a thing, or the reader is not built: then `parse` reads the
    request. mapping.map_protobuf maps either way to the same steps."""
    return _wirec.decode(data) if _wirec is not None else None


def parse_span(data: bytes):
    """One serialized Span, read as `parse` reads the spans of a request; DecodeError if it
    is not one."""
    return _read(_Span(), data)


def is_wire(message) -> bool:
    """Whether `message` comes from `parse` (rather than the official classes)."""
    return message.DESCRIPTOR.file.pool is _POOL


def official(message):
    """`message` (a Resource or InstrumentationScope from `parse`) as it is, or as the official
    message when it holds unknown fields. upb keeps a map entry with unknown fields (a KeyValue
    from a newer OTLP) aside as unknown, so its attribute would be missed; the official message
    reads it."""
    if len(UnknownFieldSet(message)):
        return _OFFICIAL_CLASSES[message.DESCRIPTOR.name].FromString(message.SerializeToString())
    return message


def official_span(span):
    """`official` for a Span, its events and its links (~0.2 us per span)."""
    if (len(UnknownFieldSet(span)) or (span.events and any(len(UnknownFieldSet(e)) for e in span.events))
            or (span.links and any(len(UnknownFieldSet(link)) for link in span.links))):
        return Span.FromString(span.SerializeToString())
    return span


def _official_names(exc: Exception) -> str:
    """A parse error as the client knows the messages (not our pool's package names)."""
    return str(exc).replace("alephant.wire.count.Request", "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"
                            ).replace("alephant.wire.", "opentelemetry.proto.")


def count_spans(data: bytes) -> int:
    """The number of spans in a serialized ExportTraceServiceRequest; DecodeError if it is
    not one (the spans themselves are not decoded)."""
    req = _read(_CountRequest(), data)
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


# -- AnyValue bytes -> Python value -----------------------------------------------------------
# Decoded scalars (and flat lists of them, kept as tuples) by their serialized AnyValue.
_CACHE: dict[bytes, Any] = {}
_CACHE_MAX = 50_000  # entries; cleared when full (a worker's values repeat within seconds)
_CACHE_VALUE_BYTES = 256  # longer values (message content) are not cached
_SCALARS = (str, int, float, bool)
_MISSING = object()
_DOUBLE = struct.Struct("<d")


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = raw[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _utf8(raw: bytes, pos: int) -> str:
    try:
        return raw[pos:].decode()
    except UnicodeDecodeError:  # proto3 strings are UTF-8: the request is refused
        raise DecodeError("request body is not a valid ExportTraceServiceRequest:"
                          " an attribute's string value is not UTF-8") from None


def _decode(raw: bytes) -> Any:
    """One serialized AnyValue as otlp.any_value reads it; DecodeError where the official
    parse would refuse the request."""
    if raw:
        tag = raw[0]
        if tag == 0x0A:  # string_value
            n, pos = _varint(raw, 1) if raw[1] & 0x80 else (raw[1], 2)
            if pos + n == len(raw):
                return _utf8(raw, pos)
        elif tag == 0x18:  # int_value
            n, pos = _varint(raw, 1)
            if pos == len(raw):
                return n - (1 << 64) if n >= 1 << 63 else n
        elif tag == 0x21 and len(raw) == 9:  # double_value
            return _DOUBLE.unpack_from(raw, 1)[0]
        elif tag == 0x10 and len(raw) == 2:  # bool_value
            return raw[1] != 0
        elif tag == 0x2A:  # array_value (captured headers are arrays of strings)
            items = _array(raw)
            if items is not None:
                return items
    from .otlp import any_value  # (the rare kinds only; otlp imports this module)

    try:
        return any_value(AnyValue.FromString(raw))
    except Exception as exc:  # what the official parse would have refused, refused the same way
        raise DecodeError(f"request body is not a valid ExportTraceServiceRequest: an attribute value: {exc}") from None


def _array(raw: bytes) -> list | None:
    """An array_value of scalars read by hand; None for anything else (nested arrays or kvlists,
    unknown fields): the official parser reads those."""
    n, pos = _varint(raw, 1)
    if pos + n != len(raw):
        return None
    out = []
    while pos < len(raw):
        if raw[pos] != 0x0A:  # ArrayValue.values
            return None
        n, pos = _varint(raw, pos + 1)
        item = raw[pos:pos + n]
        pos += n
        if not item or item[0] not in (0x0A, 0x18, 0x21, 0x10):
            return None
        out.append(_decode(item))
    return out if pos == len(raw) else None


def _miss(raw: bytes) -> Any:
    n = len(raw)
    # the two shapes most values not seen before have, read inline: a short string (an id), and
    # an array of one short string (a captured header); lengths are one-byte varints
    if n >= 2 and raw[0] == 0x0A and raw[1] == n - 2 and n < 0x82:
        v = _utf8(raw, 2)
    elif n >= 6 and raw[0] == 0x2A and raw[1] == n - 2 and raw[2] == 0x0A and raw[3] == n - 4 and raw[4] == 0x0A \
            and raw[5] == n - 6 and n < 0x82:
        v = [_utf8(raw, 6)]
    else:
        v = _decode(raw)
    if len(raw) <= _CACHE_VALUE_BYTES:
        if type(v) in _SCALARS or v is None:
            kept = v
        elif type(v) is list and all(type(x) in _SCALARS for x in v):
            kept = tuple(v)
        else:
            return v
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[raw] = kept
    return v


def value(raw: bytes) -> Any:
    """One serialized AnyValue as str/bool/int/float/bytes-as-hex/list/dict/None, like
    otlp.any_value. Lists and dicts are new objects on every call (callers may change them)."""
    v = _CACHE.get(raw, _MISSING)
    if v is _MISSING:
        return _miss(raw)
    return list(v) if type(v) is tuple else v


def attributes(entries) -> dict[str, Any]:
    """A map<string, bytes> attribute field as a dict of plain values (`value`, inlined: this
    runs for every attribute of every span)."""
    cache, out = _CACHE, {}
    for k in entries:  # (a map's items() iterates in Python; its keys and lookups are C)
        raw = entries[k]
        v = cache.get(raw, _MISSING)
        if v is _MISSING:
            v = _miss(raw)
        elif type(v) is tuple:
            v = list(v)
        out[k] = v
    return out
