"""wire.py: the mapper reads requests parsed with attributes as maps of raw AnyValue bytes, and
must map them exactly as it maps the official messages."""
from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from alephant_otel import wire
from alephant_otel.errors import DecodeError
from alephant_otel.inherit import resolve_steps
from alephant_otel.mapping import map_protobuf, map_request
from alephant_otel.otlp import any_value
from conftest import FIXTURES
from test_fuzz import UNKNOWN_FIELDS, fuzz, ld, metadata, proto_bodies, request_of, requests, tag, varint
from test_mapping import make_span

sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
from workload import make_request  # noqa: E402


def canonical(value):
    """Steps compared as data: dicts by key, NaN equal to NaN."""
    if isinstance(value, dict):
        return sorted((k, canonical(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


def canonical_span(data: bytes) -> bytes:
    """A span with each attribute list reduced to what a reader sees (last value of a key wins),
    sorted by key: the bytes two equivalent spans share."""
    span = Span.FromString(data)

    def fix(kvs):
        last = {kv.key: kv for kv in kvs}
        del kvs[:]
        kvs.extend(last[k] for k in sorted(last))

    fix(span.attributes)
    for part in list(span.events) + list(span.links):
        fix(part.attributes)
    return span.SerializeToString(deterministic=True)


def assert_same_batch(ours, official):
    assert canonical(ours.steps) == canonical(official.steps)
    assert ours.unmapped == official.unmapped
    assert [(r.reason, r.trace_id, r.span_id) for r in ours.rejected] == \
        [(r.reason, r.trace_id, r.span_id) for r in official.rejected]
    assert [canonical_span(r.span_bytes) for r in ours.rejected] == \
        [canonical_span(r.span_bytes) for r in official.rejected]


def assert_same_mapping(data: bytes, md=None, store_content=True):
    """The official messages, wire.parse and map_protobuf (the C reader where it reads the
    request) give the same steps."""
    official = map_request(ExportTraceServiceRequest.FromString(data), md, store_content=store_content)
    ours = map_request(wire.parse(data), md, store_content=store_content)
    assert_same_batch(ours, official)
    assert_same_batch(map_protobuf(data, md, store_content=store_content), official)
    return ours


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.pb")), ids=lambda p: p.stem)
def test_real_instrumentation_maps_the_same(path):
    batch = assert_same_mapping(path.read_bytes())
    assert batch.steps


def test_the_benchmark_workload_maps_the_same():
    data = make_request(3, spans=200)
    batch = assert_same_mapping(data, md=[("alephant-agent-id", "a1")])
    assert len(batch.steps) == 200 == wire.count_spans(data)


@fuzz(300)
@given(requests(), metadata)
def test_any_request_maps_the_same(req, md):
    assert_same_mapping(req.SerializeToString(), md, store_content=bool(len(md) % 2))


VALUES = [
    AnyValue(), AnyValue(string_value=""), AnyValue(string_value="é" * 70), AnyValue(string_value="x" * 200),
    AnyValue(string_value="y" * 20_000), AnyValue(int_value=0), AnyValue(int_value=-1), AnyValue(int_value=2**63 - 1),
    AnyValue(int_value=-2**63), AnyValue(double_value=-0.0), AnyValue(double_value=1e300),
    AnyValue(bool_value=False), AnyValue(bool_value=True), AnyValue(bytes_value=b"\x00\xff"),
    AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=2)])),
    AnyValue(array_value=ArrayValue()),
    # the shapes read inline (a short string; an array of one, as captured headers come) and
    # their edges: the longest whose lengths fit one byte, and one longer
    AnyValue(string_value="z" * 127), AnyValue(string_value="z" * 128),
    *(AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=s)])) for s in ("", "req-1", "é" * 61, "w" * 123)),
    AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(string_value="b")])),
    AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(double_value=0.5))])),
]


@pytest.mark.parametrize("v", VALUES, ids=lambda v: v.WhichOneof("value") or "unset")
def test_each_value_kind_reads_as_the_official_decoder_reads_it(v):
    raw = v.SerializeToString()
    for _ in range(2):  # decoded, then from the cache
        assert wire.value(raw) == any_value(v)


def test_cached_lists_are_handed_out_as_new_objects():
    raw = VALUES[14].SerializeToString()
    assert wire.value(raw) == ["a", 2]
    first = wire.value(raw)
    first.append("changed by a caller")
    assert wire.value(raw) == ["a", 2]


def test_attribute_order_does_not_change_the_step():
    """Carriers that compete for one field (two aliases of a metadata prefix, two spellings of a
    captured header) resolve by the table's order then by key, never by the order sent."""
    attrs = [("ai.operationId", "ai.generateText"), ("ai.telemetry.metadata.threadId", "t1"),
             ("ai.telemetry.metadata.sessionId", "s1"), ("http.request.header.alephant-run-id", ["r-lower"]),
             ("http.request.header.Alephant-Run-Id", ["r-upper"]), ("ai.telemetry.metadata.tier", "gold"),
             ("alephant.property.team", "core"), ("gen_ai.request.model", "gpt-4o")]
    seen = set()
    for seed in range(12):
        random.Random(seed).shuffle(attrs)
        data = request_of(make_span("s", attrs=dict(attrs))).SerializeToString()
        batch = assert_same_mapping(data)
        step = resolve_steps(batch.steps)[0]
        seen.add((step["session_id"], step["run_id"], step["attributes"], repr(sorted(step["properties"].items()))))
    assert len(seen) == 1
    session_id, run_id, _, _ = seen.pop()
    assert session_id == "s1" and run_id in ("r-lower", "r-upper")


def test_a_key_value_with_unknown_fields_is_read_on_spans_events_and_resources():
    """upb sets a map entry holding unknown fields aside; such a message is read as the official one."""
    def kv(key: bytes, value: bytes) -> bytes:  # a KeyValue from a newer OTLP: extra fields everywhere
        return ld(1, key) + ld(2, ld(1, value) + UNKNOWN_FIELDS) + UNKNOWN_FIELDS

    event = ld(2, b"payment") + ld(3, kv(b"alephant.payment.amount", b"2.50"))  # Span.Event name, attributes
    span = make_span("pay").SerializeToString() + ld(9, kv(b"gen_ai.request.model", b"gpt-4o")) + ld(11, event)
    resource = ld(1, kv(b"alephant.agent.id", b"agent-7"))  # Resource.attributes
    data = ld(1, ld(1, resource) + ld(2, ld(2, span)))  # request > resource spans > (resource, scope spans > span)
    batch = assert_same_mapping(data)
    step, payment = resolve_steps(batch.steps)
    assert step["request_model"] == "gpt-4o" and step["agent_id"] == "agent-7"
    assert payment["derived_from"] and float(payment["payment_amount"]) == 2.5


def test_counting_spans_reads_no_span_and_refuses_garbage():
    data = make_request(1, spans=30)
    assert wire.count_spans(data) == 30
    assert wire.count_spans(b"") == 0
    for read in (wire.count_spans, wire.parse):  # the client sees the official message names
        with pytest.raises(DecodeError, match="opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest") as exc:
            read(b"\x0a\xff\xff")
        assert "alephant.wire" not in str(exc.value)


def test_a_string_that_is_not_utf8_refuses_the_request_as_the_official_parse_does():
    kv = ld(1, b"k") + ld(2, ld(1, b"\xff\xfe"))
    data = ld(1, ld(2, ld(2, make_span("s").SerializeToString() + ld(9, kv))))
    with pytest.raises(Exception):
        ExportTraceServiceRequest.FromString(data)
    with pytest.raises(DecodeError, match="UTF-8"):
        map_request(wire.parse(data))
    # the same in a captured header (an array of one string), read by the inline path
    header = ld(1, b"http.request.header.x-request-id") + ld(2, ld(5, ld(1, ld(1, b"\xff\xfe"))))
    data = ld(1, ld(2, ld(2, make_span("s").SerializeToString() + ld(9, header))))
    with pytest.raises(DecodeError, match="UTF-8"):
        map_request(wire.parse(data))
    # and where nothing is mapped (found by the C reader's fuzz test): a scope's attributes, the
    # attributes of a span rejected for its ids, of its events and of its links
    rejected = make_span("r", span_id=bytes(8)).SerializeToString()
    for data in (ld(1, ld(2, ld(1, ld(1, b"lib") + ld(3, kv)) + ld(2, make_span("s").SerializeToString()))),
                 ld(1, ld(2, ld(2, rejected + ld(9, kv)))),
                 ld(1, ld(2, ld(2, rejected + ld(11, ld(2, b"exception") + ld(3, kv))))),
                 ld(1, ld(2, ld(2, rejected + ld(13, ld(1, b"\x01" * 16) + ld(2, b"\x02" * 8) + ld(4, kv)))))):
        with pytest.raises(Exception):
            ExportTraceServiceRequest.FromString(data)
        for read in (lambda d: map_request(wire.parse(d)), map_protobuf):
            with pytest.raises(DecodeError, match="UTF-8"):
                read(data)


@pytest.mark.parametrize("raw", [b"\x0a\x80" + b"a" * 128, b"\x2a\x80\x0a\x7e\x0a\x7c" + b"a" * 124],
                         ids=["string", "header array"])
def test_a_length_that_is_not_a_varint_is_refused_not_read_inline(raw):
    with pytest.raises(Exception):
        AnyValue.FromString(raw)
    with pytest.raises(DecodeError):
        wire.value(raw)
