"""OTLP spans for the DuckLake tests, built as protobuf (what any exporter sends)."""
from __future__ import annotations

import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from alephant_otel.api import map_request, price_steps


def kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def span(trace: bytes, sid: bytes, parent: bytes | None, name: str, start_ns: int, **attrs) -> Span:
    return Span(trace_id=trace, span_id=sid, parent_span_id=parent or b"", name=name,
                start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + 2_000_000,
                attributes=[kv(k.replace("__", "."), v) for k, v in attrs.items()])


def request(spans, service: str = "lake-test") -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource={"attributes": [kv("service.name", service)]},
        scope_spans=[ScopeSpans(scope={"name": "lake-tests"}, spans=list(spans))])])


def chat(trace, sid, parent, name, start_ns, tokens: int = 100, **extra) -> Span:
    return span(trace, sid, parent, name, start_ns, **{
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": tokens // 5, **extra})


def steps_of(req: ExportTraceServiceRequest) -> list[dict]:
    """Mapped and priced steps, as the receiver computes them."""
    batch = map_request(req)
    price_steps(batch.steps)
    return batch.steps


class Ids:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seen: set[bytes] = set()

    def new(self, n: int) -> bytes:
        while True:
            v = self.rng.getrandbits(8 * n).to_bytes(n, "big")
            if any(v) and v not in self.seen:
                self.seen.add(v)
                return v


def agent_trace(ids: Ids, run: str, session: str, agent: str, start_ns: int | None = None,
                calls: int = 4) -> list[Span]:
    """An invoke_agent root naming run, session and agent; model calls (one wraps an inner
    provider call that repeats its usage: counted once), a tool call, and a payment."""
    t0 = start_ns or time.time_ns()
    trace, root = ids.new(16), ids.new(8)
    out = [span(trace, root, None, "invoke_agent", t0, **{
        "gen_ai.operation.name": "invoke_agent", "alephant.run.id": run, "alephant.session.id": session,
        "alephant.agent.id": agent, "alephant.workspace.id": "ws-lake"})]
    for i in range(calls):
        out.append(chat(trace, ids.new(8), root, f"chat {i}", t0 + 10 + i, tokens=100 + 10 * i))
    outer, inner = ids.new(8), ids.new(8)
    out.append(chat(trace, outer, root, "framework llm", t0 + 50, tokens=500))
    out.append(chat(trace, inner, outer, "provider call", t0 + 51, tokens=500))
    out.append(span(trace, ids.new(8), root, "search", t0 + 60, **{
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search", "alephant.cost.amount": 0.02}))
    out.append(span(trace, ids.new(8), root, "charge", t0 + 70, **{
        "alephant.payment.amount": 0.5, "alephant.payment.direction": "inbound", "alephant.payment.status": "settled"}))
    return out
