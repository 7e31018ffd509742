"""Bad input gets a precise answer and loses nothing else; the server keeps serving."""
from __future__ import annotations

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

import alephant_otel.mapping as mapping
from test_mapping import make_span

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def call(receiver, body: bytes):
    with grpc.insecure_channel(receiver.address) as ch:
        return ch.unary_unary(METHOD)(body, timeout=10)


def request(*spans) -> bytes:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]).SerializeToString()


def test_undecodable_request_is_invalid_argument_and_the_server_keeps_serving(receiver):
    try:
        call(receiver, b"\xff\xff\xff\xff not protobuf")
        raise AssertionError("expected INVALID_ARGUMENT")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid ExportTraceServiceRequest" in exc.details()
        assert "Traceback" not in exc.details()
    resp = ExportTraceServiceResponse.FromString(call(receiver, request(make_span("after"))))
    assert resp.partial_success.rejected_spans == 0
    assert receiver.step("after")["step_kind"] == "workflow_action"


def test_empty_request_is_success(receiver):
    resp = ExportTraceServiceResponse.FromString(call(receiver, b""))
    assert not resp.HasField("partial_success")


def test_bad_span_is_rejected_alone_through_partial_success(receiver):
    body = request(make_span("ok-1", span_id=1), make_span("bad-id", span_id=b"\x00" * 8), make_span("ok-2", span_id=2))
    resp = ExportTraceServiceResponse.FromString(call(receiver, body))
    assert resp.partial_success.rejected_spans == 1
    assert "span_id" in resp.partial_success.error_message
    assert sorted(r["name"] for r in receiver.rows("SELECT name FROM steps")) == ["ok-1", "ok-2"]
    kept = receiver.rows("SELECT reason, span FROM _rejected_spans")
    assert len(kept) == 1 and b"bad-id" in kept[0]["span"]


def mapper_fails_on(name: str, monkeypatch) -> None:
    """Make the mapper raise on spans named `name` (both readers map through map_fields)."""
    real = mapping.map_fields

    def flaky(row, *a):
        if row["name"] == name:
            raise ValueError("cannot map this one")
        return real(row, *a)

    monkeypatch.setattr(mapping, "map_fields", flaky)


def test_a_span_the_mapper_fails_on_is_stored_raw_and_reported(receiver, monkeypatch):
    mapper_fails_on("explodes", monkeypatch)
    body = request(make_span("fine", span_id=1, attrs={"alephant.session.id": "s"}),
                   make_span("explodes", span_id=2, parent=1, attrs={"keep.me": "yes"}))
    resp = ExportTraceServiceResponse.FromString(call(receiver, body))
    assert resp.partial_success.rejected_spans == 1
    assert "cannot map this one" in resp.partial_success.error_message
    raw = receiver.step("explodes")
    assert raw["step_kind"] is None and "cannot map this one" in raw["mapping_error"]
    assert raw["session_id"] == "s"  # still part of its trace's context
    assert "keep.me" in receiver.rows("SELECT attributes FROM spans WHERE name = 'explodes'")[0]["attributes"]
