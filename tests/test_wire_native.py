"""The C reader (src/alephant_otel/_wirec.c, wire.decode_native): it reads the common span
(events included) straight into the mapper's rows, leaves other spans to the message classes and unusual
requests to wire.parse, never reads what the official parser refuses, and every request maps
exactly as the official messages map."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from alephant_otel import wire
from alephant_otel.errors import DecodeError
from alephant_otel.mapping import map_protobuf, map_request
from conftest import FIXTURES
from hypothesis import strategies as st

from test_fuzz import UNKNOWN_FIELDS, fuzz, ld, metadata, mutated, proto_bodies, requests, tag, varint
from test_mapping import make_span
from test_wire import assert_same_batch, assert_same_mapping, make_request


def request(*spans: bytes, scope: bytes = b"", resource: bytes = b"", rs_extra: bytes = b"", ss_extra: bytes = b"") -> bytes:
    """A request around serialized spans; `scope` and `resource` are serialized messages."""
    ss = (ld(1, scope) if scope else b"") + b"".join(ld(2, s) for s in spans) + ss_extra
    rs = (ld(1, resource) if resource else b"") + ld(2, ss) + rs_extra
    return ld(1, rs)


def span(name="s", attrs=None, **kw) -> bytes:
    times = {k: kw.pop(k) for k in ("start_time_unix_nano", "end_time_unix_nano") if k in kw}
    s = make_span(name, attrs=attrs, **kw)
    for k, v in times.items():
        setattr(s, k, v)
    return s.SerializeToString()


def kv(key: bytes, value: bytes) -> bytes:
    return ld(1, key) + ld(2, value)


def value(**kw) -> bytes:
    return AnyValue(**kw).SerializeToString()


def spans_of(decoded) -> list[tuple]:
    return [s for _, scopes in decoded for _, _, ss in scopes for s in ss]


def left_to_messages(data: bytes) -> list[bytes] | None:
    """The bytes of the spans the C reader left to the message classes; None when it left the
    whole request to wire.parse."""
    decoded = wire.decode_native(data)
    if decoded is None:
        return None
    return [data[offset:offset + length] for row, _, _, _, offset, length in spans_of(decoded) if row is None]


def test_the_c_reader_is_built():
    assert wire._wirec is not None, "alephant_otel._wirec was not built: install a C compiler and reinstall"


def test_the_benchmark_workload_and_every_captured_instrumentation_are_read_in_c():
    for data in [make_request(5, spans=100)] + [p.read_bytes() for p in sorted(FIXTURES.glob("*.pb"))]:
        decoded = wire.decode_native(data)
        assert decoded is not None
        spans = spans_of(decoded)
        assert len(spans) == wire.count_spans(data)
        for row, attrs, kind, events, offset, length in spans:  # each span's own bytes, for the rare raw paths
            official = Span.FromString(data[offset:offset + length])
            assert row["span_id"] == official.span_id.hex() and kind == official.kind
            assert len(attrs) == len({a.key for a in official.attributes}) and len(events) == len(official.events)


READ_IN_C = {
    "all span fields": span("full", {"a": "b"}, trace_state="k=v,x=y", status=Status(code=2, message="boom"),
                            dropped_attributes_count=3, dropped_events_count=1, dropped_links_count=2, flags=0x301,
                            parent=7, kind=Span.SPAN_KIND_CONSUMER),
    "empty name, unset kind and status": Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8).SerializeToString(),
    "end before start": span("late", start_time_unix_nano=2_000_000_000_000_001_999,
                             end_time_unix_nano=2_000_000_000_000_000_500),
    "start within the first microsecond": span("tiny", start_time_unix_nano=999, end_time_unix_nano=5_000),
    "no end": span("open", end_time_unix_nano=0),
    "ok status with a message": span("ok", status=Status(code=1, message="fine é")),
    "every scalar kind": span("values", {
        "s": "", "u": "é" * 300, "big": "y" * 20_000, "i": -1, "min": -2**63, "max": 2**63 - 1, "nan": math.nan,
        "neg0": -0.0, "inf": math.inf, "t": True, "f": False, "empty": [], "mixed": ["a", 2, 0.5, True],
        "gen_ai.usage.input_tokens": 12, "gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat"}),
    "a repeated attribute key keeps its last value": span("dup", {"gen_ai.request.model": "first"})
        + ld(9, kv(b"gen_ai.request.model", value(string_value="last"))),
    "a bool written as a long varint": span("b") + ld(9, kv(b"flag", tag(2, 0) + varint(2**40))),
    "events: an exception, a payment, a guardrail result": make_span("ev", events=[
        Span.Event(name="exception", time_unix_nano=5, attributes=[
            KeyValue(key="exception.type", value=AnyValue(string_value="TimeoutError")),
            KeyValue(key="gen_ai.prompt", value=AnyValue(string_value="secret prompt"))]),
        Span.Event(name="payment", time_unix_nano=7, dropped_attributes_count=2, attributes=[
            KeyValue(key="alephant.payment.amount", value=AnyValue(string_value="2.50")),
            KeyValue(key="alephant.payment.currency", value=AnyValue(string_value="USD"))]),
        Span.Event(name="gen_ai.guardrail.result", attributes=[
            KeyValue(key="alephant.policy.decision", value=AnyValue(string_value="deny"))]),
        Span.Event()]).SerializeToString(),
    "an event's repeated attribute key": make_span("er").SerializeToString() + ld(11, ld(2, b"x") + ld(
        3, kv(b"k", value(int_value=1))) + ld(3, kv(b"k", value(int_value=2)))),
}


@pytest.mark.parametrize("data", [
    *(request(s) for s in READ_IN_C.values()),
    request(span("a"), span("b", span_id=2), scope=InstrumentationScope(name="lib", version="1.2").SerializeToString(),
            resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc"))],
                              dropped_attributes_count=4).SerializeToString(),
            rs_extra=ld(3, b"https://opentelemetry.io/schemas/1.30.0"), ss_extra=ld(3, b"schema")),
    # fields in any order: the scope after the spans, the resource after the scope spans
    ld(1, ld(2, ld(2, span("after")) + ld(1, InstrumentationScope(name="late-scope").SerializeToString()))
       + ld(1, Resource(attributes=[KeyValue(key="alephant.agent.id", value=AnyValue(string_value="a9"))]).SerializeToString())),
    b"",
    ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans()])]).SerializeToString(),
], ids=[*READ_IN_C, "scope, resource and schema urls", "fields out of order", "empty request", "no spans"])
def test_what_the_c_reader_reads_maps_as_the_official_messages_do(data):
    assert left_to_messages(data) == []
    assert_same_mapping(data, md=[("alephant-session-id", "s1")])
    assert_same_mapping(data, store_content=False)


LEFT_TO_PARSE = {
    "an unknown field in an event": span("e") + ld(11, ld(2, b"payment") + UNKNOWN_FIELDS),
    "an event's name sent twice": span("e") + ld(11, ld(2, b"payment") + ld(2, b"exception")),
    "a kvlist in an event": span("e") + ld(11, ld(2, b"x") + ld(3, kv(b"k", value(kvlist_value=KeyValueList())))),
    "an event's dropped count past 32 bits": span("e") + ld(11, ld(2, b"x") + tag(4, 0) + varint(2**33)),
    "a link": make_span("l", links=[Span.Link(trace_id=b"\x03" * 16, span_id=b"\x04" * 8)]).SerializeToString(),
    "an unknown span field": span("u") + UNKNOWN_FIELDS,
    "an unknown field in a KeyValue": span("u") + ld(9, kv(b"k", value(string_value="v")) + UNKNOWN_FIELDS),
    "an unknown field in a value": span("u") + ld(9, kv(b"k", value(string_value="v") + UNKNOWN_FIELDS)),
    "an unknown field in the status": span("u", status=Status(code=2)) + ld(15, tag(1, 0) + varint(2)),
    "a name sent twice": span("first") + ld(5, b"second"),
    "a status sent twice (merged)": span("m", status=Status(code=2)) + ld(15, ld(2, b"merged message")),
    "a span kind past the enum": span("k") + tag(6, 0) + varint(9),
    "a status code past the enum": span("c") + ld(15, tag(3, 0) + varint(3)),
    "a zero trace id": make_span("z", trace_id=bytes(16)).SerializeToString(),
    "a short span id": make_span("short", span_id=b"\x01\x02").SerializeToString(),
    "a kvlist value": span("kv") + ld(9, kv(b"k", value(kvlist_value=KeyValueList(
        values=[KeyValue(key="x", value=AnyValue(int_value=1))])))),
    "a bytes value": span("by") + ld(9, kv(b"k", value(bytes_value=b"\x00\xff"))),
    "an empty value": span("ev") + ld(9, kv(b"k", b"")),
    "a KeyValue without its value": span("nv") + ld(9, ld(1, b"k")),
    "a nested array": span("na") + ld(9, kv(b"k", value(array_value=ArrayValue(values=[
        AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)]))])))),
    "a value with two kinds": span("two") + ld(9, kv(b"k", value(string_value="a") + value(int_value=3))),
}


@pytest.mark.parametrize("case", LEFT_TO_PARSE)
def test_a_span_the_c_reader_leaves_to_the_messages_maps_as_the_official_messages_do(case):
    """Read alone by the message classes, among spans the C reader reads (before and after it)."""
    odd = LEFT_TO_PARSE[case]
    data = request(span("before", {"gen_ai.request.model": "gpt-4o"}, span_id=11), odd,
                   span("after", {"gen_ai.usage.input_tokens": 3}, span_id=12))
    assert left_to_messages(data) == [odd]
    assert_same_mapping(data, md=[("alephant-run-id", "r1")])


@pytest.mark.parametrize("data", [
    request(span("sa"), scope=InstrumentationScope(name="lib", attributes=[
        KeyValue(key="k", value=AnyValue(string_value="v"))]).SerializeToString()),
    request(span("re"), resource=Resource(attributes=[]).SerializeToString() + UNKNOWN_FIELDS),
    request(span("rv"), resource=Resource(attributes=[KeyValue(key="k", value=AnyValue(
        kvlist_value=KeyValueList()))]).SerializeToString()),
    request(span("rq")) + UNKNOWN_FIELDS,
], ids=["scope attributes", "an unknown resource field", "a kvlist on the resource", "an unknown request field"])
def test_a_request_the_c_reader_leaves_to_parse_maps_as_the_official_messages_do(data):
    assert wire.decode_native(data) is None
    assert_same_mapping(data)


def test_a_few_spans_with_links_or_bad_ids_leave_the_rest_of_the_request_to_the_c_reader():
    exception = make_span("failed tool", span_id=0xE1, events=[Span.Event(
        name="exception", time_unix_nano=5, attributes=[KeyValue(key="exception.type", value=AnyValue(
            string_value="TimeoutError"))])]).SerializeToString()
    linked = make_span("linked", {"gen_ai.request.model": "gpt-4o"}, span_id=0xE2,
                       links=[Span.Link(trace_id=b"\x05" * 16, span_id=b"\x06" * 8)]).SerializeToString()
    bad = make_span("bad id", span_id=bytes(8)).SerializeToString()
    common = [span(f"chat {i}", {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": i}, span_id=100 + i)
              for i in range(40)]
    data = request(*common[:20], exception, linked, *common[20:], bad)
    assert left_to_messages(data) == [linked, bad]  # the exception event is read in C
    batch = assert_same_mapping(data)
    assert len(batch.steps) == 42 and len(batch.rejected) == 1
    assert next(s for s in batch.steps if s["name"] == "failed tool")["error_type"] == "TimeoutError"
    assert next(s for s in batch.steps if s["name"] == "linked")["links"]


@pytest.mark.parametrize("data", [
    request(span("s") + ld(5, b"\xff\xfe")),  # the name
    request(span("s") + ld(9, kv(b"k\xff", value(string_value="v")))),  # a key
    request(span("s") + ld(9, kv(b"k", ld(1, b"\xed\xa0\x80")))),  # a value (a UTF-16 surrogate)
    request(span("s") + ld(9, kv(b"k", ld(5, ld(1, ld(1, b"\xc0\xaf")))))),  # in an array (overlong)
    request(span("s") + ld(3, b"\x80")),  # the trace state
    request(span("s"), rs_extra=ld(3, b"\xff")),  # a schema url
    request(span("s"), scope=ld(1, b"\xff")),  # the scope name
    request(span("s") + ld(15, ld(2, b"\xff"))),  # the status message
    request(span("s"))[:-1],  # truncated
    request(span("s") + tag(7, 1) + b"\x01\x02"),  # a fixed64 cut short
    request(span("s") + tag(9, 3)),  # a group where a message belongs
], ids=["name", "key", "value", "array item", "trace state", "schema url", "scope name", "status message",
        "truncated", "short fixed64", "group"])
def test_what_the_official_parser_refuses_the_c_reader_leaves_to_the_messages_which_refuse_it(data):
    with pytest.raises(Exception):
        ExportTraceServiceRequest.FromString(data)
    assert_not_read_in_c(data)
    with pytest.raises(DecodeError):
        map_protobuf(data)


def assert_not_read_in_c(data: bytes) -> None:
    """For a request the official parser refuses: the C reader left it to wire.parse, or left
    it a span that the official parser refuses on its own."""
    left = left_to_messages(data)
    if left is None:
        return
    refused = []
    for raw in left:
        try:
            Span.FromString(raw)
        except Exception:
            refused.append(raw)
    assert refused, "the C reader read every span of a request the official parser refuses"


def plain(req: ExportTraceServiceRequest) -> bytes:
    """A random request reduced to what the C reader reads (no links, scope attributes, nested,
    kvlist, bytes or empty values; span kinds and status codes within their enums; usable ids,
    so that spans are mapped, not rejected)."""
    def keep(kv: KeyValue) -> bool:
        which = kv.value.WhichOneof("value")
        return which in ("string_value", "int_value", "double_value", "bool_value") or which == "array_value" and all(
            v.WhichOneof("value") in ("string_value", "int_value", "double_value", "bool_value")
            for v in kv.value.array_value.values)

    def clean(kvs) -> None:
        kept = [kv for kv in kvs if keep(kv)]
        del kvs[:]
        kvs.extend(kept)

    for rs in req.resource_spans:
        clean(rs.resource.attributes)
        for ss in rs.scope_spans:
            del ss.scope.attributes[:]
            for s in ss.spans:
                del s.links[:]
                clean(s.attributes)
                for e in s.events:
                    clean(e.attributes)
                s.kind %= 6
                s.status.code %= 3
                if len(s.trace_id) != 16 or not any(s.trace_id):
                    s.trace_id = bytes(range(1, 17))
                if len(s.span_id) != 8 or not any(s.span_id):
                    s.span_id = len(s.span_id).to_bytes(8, "big") if s.span_id else b"\x09" * 8
                if s.parent_span_id and (len(s.parent_span_id) != 8 or not any(s.parent_span_id)):
                    s.parent_span_id = b""
    return req.SerializeToString()


# mostly requests the C reader reads (their spans keyed or not), and those mutated
plain_bodies = st.one_of(requests().map(plain), requests().map(plain).flatmap(mutated))


@fuzz(400)
@given(st.one_of(proto_bodies, plain_bodies), metadata)
def test_random_and_mutated_bodies_are_read_in_c_only_where_the_official_parser_reads_them(body, md):
    """What the official parser refuses, the C reader leaves to the messages; and map_protobuf
    maps (or refuses) every body as map_request(wire.parse(body)) does. (Those two accept a few
    bodies the official parser refuses: an attribute value replaced by a later value of the
    same key is never read; see README, Bad input.)"""
    try:
        ExportTraceServiceRequest.FromString(body)
    except Exception:
        assert_not_read_in_c(body)
    try:
        expected = map_request(wire.parse(body), md)
    except DecodeError:
        with pytest.raises(DecodeError):
            map_protobuf(body, md)
        return
    assert_same_batch(map_protobuf(body, md), expected)


def test_a_span_the_mapper_fails_on_is_kept_raw_from_its_own_bytes(monkeypatch):
    from test_bad_input import mapper_fails_on

    mapper_fails_on("explodes", monkeypatch)
    data = request(span("fine"), span("explodes", {"keep.me": "yes", "http.request.header.authorization": ["x"]},
                                      span_id=2, parent=1), scope=InstrumentationScope(name="lib").SerializeToString())
    assert left_to_messages(data) == []
    batch = map_protobuf(data)
    official = map_request(ExportTraceServiceRequest.FromString(data))
    assert batch.unmapped == official.unmapped == 1
    assert_same_batch(batch, official)
    raw = next(s for s in batch.steps if s["name"] == "explodes")
    assert "cannot map this one" in raw["mapping_error"] and raw["scope_name"] == "lib"
    assert "keep.me" in raw["attributes"] and "authorization" not in raw["attributes"]


def test_attribute_keys_are_read_right_whatever_the_key_cache_holds():
    """Keys are kept in a bounded cache by their bytes: many distinct keys (more than it holds),
    keys longer than it keeps, keys that differ only in their last byte, each read as sent."""
    many = {f"k.{i}": i for i in range(10_000)}
    long = {"x" * 96 + tail: tail for tail in ("a", "b", "")} | {"y" * 200 + "1": 1, "y" * 200 + "2": 2}
    near = {f"gen_ai.request.mode{c}": c for c in "lmnop"}
    for attrs in (many, long, near, many):
        data = request(span("keys", attrs))
        (_, scopes), = wire.decode_native(data)
        assert scopes[0][2][0][1] == attrs
        assert_same_mapping(data)
