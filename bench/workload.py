"""The benchmark workload: pre-serialized ExportTraceServiceRequests of gen_ai spans.

Each request has `spans` spans (default 1000) of ~18 attributes, ~10 spans per trace: an
`invoke_agent` root and nine chat spans under it with usage, captured request headers (run,
session, agent) and ~5% errors.
"""
from __future__ import annotations

import os
import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "gpt-4.1-mini"]
PROVIDERS = {"gpt-4o-mini": "openai", "gpt-4o": "openai", "claude-sonnet-4-5": "anthropic", "gpt-4.1-mini": "openai"}


def _kv(k, v) -> KeyValue:
    if isinstance(v, bool):
        return KeyValue(key=k, value=AnyValue(bool_value=v))
    if isinstance(v, int):
        return KeyValue(key=k, value=AnyValue(int_value=v))
    if isinstance(v, float):
        return KeyValue(key=k, value=AnyValue(double_value=v))
    if isinstance(v, list):
        return KeyValue(key=k, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=x) for x in v])))
    return KeyValue(key=k, value=AnyValue(string_value=v))


def make_request(seed: int, spans: int = 1000, start_ns: int = 1_795_000_000_000_000_000) -> bytes:
    rnd = random.Random(seed)
    out = []
    t = start_ns + seed * 10_000_000_000
    trace_id = b""
    parent = b""
    for i in range(spans):
        if i % 10 == 0:
            trace_id = os.urandom(16)
            parent = b""
            run, session, agent = f"run-{seed}-{i // 10}", f"sess-{seed % 500}-{rnd.randrange(50)}", f"agent-{rnd.randrange(20)}"
        model = rnd.choice(MODELS)
        span_id = os.urandom(8)
        inp = rnd.randrange(200, 8000)
        attrs = {
            "gen_ai.operation.name": "chat" if parent else "invoke_agent", "gen_ai.provider.name": PROVIDERS[model],
            "gen_ai.request.model": model, "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": inp, "gen_ai.usage.output_tokens": rnd.randrange(10, 800),
            "gen_ai.usage.cache_read.input_tokens": rnd.randrange(0, inp // 2),
            "gen_ai.response.id": f"chatcmpl-{rnd.getrandbits(48):x}", "gen_ai.response.finish_reasons": ["stop"],
            "server.address": "api.openai.com", "server.port": 443,
            "http.request.header.alephant-run-id": [run], "http.request.header.alephant-session-id": [session],
            "http.request.header.alephant-agent-id": [agent], "http.request.header.x-request-id": [f"req-{seed}-{i}"],
            "gen_ai.request.temperature": 0.2, "gen_ai.request.max_tokens": 1024, "alephant.property.tier": "gold",
        }
        error = rnd.random() < 0.05
        if error:
            attrs["error.type"] = "RateLimitError"
        s = Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=f"chat {model}",
                 kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=t + i * 1_000_000,
                 end_time_unix_nano=t + i * 1_000_000 + rnd.randrange(50_000_000, 3_000_000_000),
                 attributes=[_kv(k, v) for k, v in attrs.items()],
                 status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET))
        if not parent:
            parent = span_id
        out.append(s)
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[_kv("service.name", "bench-agent"), _kv("deployment.environment", "prod")]),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="opentelemetry.instrumentation.openai_v2"), spans=out)])])
    return req.SerializeToString()
