"""The mapper as pure functions: classification, token buckets, bad values, real fixtures."""
from __future__ import annotations

import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from alephant_otel.inherit import resolve_steps
from alephant_otel.mapping import map_request
from conftest import FIXTURES

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def _value(v) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))
    return AnyValue(string_value=v)


def make_span(name="s", attrs=None, span_id=1, parent=None, kind=Span.SPAN_KIND_INTERNAL, **kw) -> Span:
    return Span(trace_id=kw.pop("trace_id", TRACE), span_id=span_id.to_bytes(8, "big") if isinstance(span_id, int) else span_id,
                parent_span_id=parent.to_bytes(8, "big") if parent else b"", name=name, kind=kind,
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_500_000_000,
                attributes=[KeyValue(key=k, value=_value(v)) for k, v in (attrs or {}).items()], **kw)


def map_one(attrs=None, resource=None, scope=None, rules=None, **kw) -> dict:
    rs = ResourceSpans(resource=Resource(attributes=[KeyValue(key=k, value=_value(v)) for k, v in (resource or {}).items()]),
                       scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope or ""),
                                               spans=[make_span(attrs=attrs, **kw)])])
    req = ExportTraceServiceRequest(resource_spans=[rs])
    batch = map_request(req, rules=rules)
    assert len(batch.steps) == 1 and batch.rejected_count == 0
    return batch.steps[0]


@pytest.mark.parametrize("op,kind", [
    ("chat", "model_call"), ("generate_content", "model_call"), ("text_completion", "model_call"),
    ("embeddings", "model_call"), ("execute_tool", "tool_call"), ("invoke_agent", "workflow_action"),
    ("invoke_workflow", "workflow_action"), ("create_agent", "workflow_action"),
    ("apply_guardrail", "policy_check"), ("something_new", "workflow_action"),
])
def test_gen_ai_operations_classify(op, kind):
    step = map_one({"gen_ai.operation.name": op})
    assert step["step_kind"] == kind and step["operation"] == op


def test_http_and_rpc_client_spans_are_api_calls_and_server_spans_are_not():
    assert map_one({"http.request.method": "GET"}, kind=Span.SPAN_KIND_CLIENT)["step_kind"] == "api_call"
    assert map_one({"rpc.system": "grpc"}, kind=Span.SPAN_KIND_CLIENT)["step_kind"] == "api_call"
    assert map_one({"http.request.method": "GET"}, kind=Span.SPAN_KIND_SERVER)["step_kind"] == "workflow_action"
    assert map_one({})["step_kind"] == "workflow_action"


def test_explicit_step_kind_wins_and_a_bad_one_is_flagged():
    assert map_one({"alephant.step.kind": "payment", "gen_ai.operation.name": "chat"})["step_kind"] == "payment"
    step = map_one({"alephant.step.kind": "teleport"})
    assert step["step_kind"] == "workflow_action"
    assert "teleport" in step["anomalies"]


def test_model_and_usage_without_operation_is_a_model_call():
    step = map_one({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2})
    assert step["step_kind"] == "model_call" and step["input_tokens"] == 10


def test_token_buckets_do_not_overlap():
    step = map_one({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.cache_read.input_tokens": 600,
                    "gen_ai.usage.cache_creation.input_tokens": 100, "gen_ai.usage.output_tokens": 300,
                    "gen_ai.usage.reasoning.output_tokens": 120})
    assert [step[k] for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")] \
        == [300, 600, 100, 180, 120]
    attrs = json.loads(step["attributes"] or "{}")
    assert not any(k.startswith("gen_ai.usage") for k in attrs)  # promoted, not kept twice


def test_deprecated_spellings_and_string_numbers():
    step = map_one({"gen_ai.operation.name": "chat", "gen_ai.system": "az.ai.openai", "gen_ai.request.model": "m",
                    "gen_ai.usage.prompt_tokens": "50", "gen_ai.usage.completion_tokens": 20.0,
                    "gen_ai.usage.cache_read_input_tokens": "10", "gen_ai.usage.reasoning_tokens": "5"})
    assert step["provider"] == "azure.ai.openai"
    assert (step["input_tokens"], step["cache_read_tokens"], step["output_tokens"], step["reasoning_tokens"]) == (40, 10, 15, 5)
    assert step["anomalies"] is None


@pytest.mark.parametrize("raw,why", [(-5, "negative"), (10**12, "exceeds"), ("lots", "not a whole number"),
                                     (1.5, "not a whole number"), (True, "not a whole number")])
def test_bad_token_values_are_flagged_not_stored_and_the_span_is_kept(raw, why):
    step = map_one({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                    "gen_ai.usage.input_tokens": raw, "gen_ai.usage.output_tokens": 7})
    assert step["input_tokens"] is None and step["output_tokens"] == 7
    assert why in step["anomalies"]
    assert "gen_ai.usage.input_tokens" in json.loads(step["attributes"])  # the raw value is not lost


def test_cache_larger_than_input_is_flagged_and_input_taken_as_uncached():
    step = map_one({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                    "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read.input_tokens": 50})
    assert (step["input_tokens"], step["cache_read_tokens"]) == (10, 50)
    assert "fewer than cache" in step["anomalies"]


def test_usage_on_agent_spans_is_not_counted_again():
    step = map_one({"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 500, "gen_ai.usage.output_tokens": 50})
    assert step["step_kind"] == "workflow_action"
    assert step["input_tokens"] is None and step["output_tokens"] is None
    assert json.loads(step["attributes"])["gen_ai.usage.input_tokens"] == 500


def test_invalid_ids_are_rejected_with_their_bytes():
    good = make_span("good", span_id=1)
    bad = make_span("bad", span_id=b"\x01\x02")
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[good, bad])])])
    batch = map_request(req)
    assert [s["name"] for s in batch.steps] == ["good"]
    assert batch.rejected_count == 1 and "span_id" in batch.rejected[0].reason
    assert Span.FromString(batch.rejected[0].span_bytes).name == "bad"


GEN_AI_FIXTURES = ["openai_otelv2_latest", "openai_otelv2_default_utilgenai11", "pydantic_ai_test_model"]
KIND = {"agent_or_workflow": "workflow_action", "other": "workflow_action"}


@pytest.mark.parametrize("fixture", GEN_AI_FIXTURES)
def test_real_gen_ai_fixtures_map_as_classified_by_hand(fixture):
    expected = json.loads((FIXTURES / f"{fixture}.expected.json").read_text())
    req = ExportTraceServiceRequest.FromString((FIXTURES / f"{fixture}.pb").read_bytes())
    steps = {s["span_id"]: s for s in resolve_steps(map_request(req).steps)}
    assert len(steps) == expected["span_count"]
    for e in expected["spans"]:
        s = steps[e["span_id"]]
        assert s["step_kind"] == KIND.get(e["step_kind"], e["step_kind"]), e["name"]
        if e["step_kind"] == "model_call":
            assert s["model"] == (e["response_model"] or e["request_model"])
            assert s["provider"] == e["provider"]
            total_in = s["input_tokens"] + (s["cache_read_tokens"] or 0) + (s["cache_write_tokens"] or 0)
            assert total_in == e["input_tokens"]
            assert s["output_tokens"] + (s["reasoning_tokens"] or 0) == e["output_tokens"]
        else:
            assert s["input_tokens"] is None  # aggregated usage is never counted on non-model steps
        if e["tool_name"]:
            assert s["tool_name"] == e["tool_name"]
        if e["session_id"]:
            assert s["session_id"] == e["session_id"]


def test_batches_cross_processes_unchanged():
    """Mapped batches travel to the receiver's writer pickled as rows per key shape: every
    row comes back equal and in its place, whatever mix of shapes the batch holds."""
    import pickle
    from alephant_otel.pricing import price_steps

    steps = []
    for path in sorted(FIXTURES.glob("*.pb")):
        batch = map_request(ExportTraceServiceRequest.FromString(path.read_bytes()))
        price_steps(batch.steps)
        steps += batch.steps
    steps.insert(1, {"trace_id": "t", "span_id": "s", "mapping_error": "boom"})  # odd shapes, interleaved
    steps.insert(5, dict(reversed(list(steps[4].items()))))
    batch.steps = steps
    assert len({tuple(s) for s in steps}) == 3
    back = pickle.loads(pickle.dumps(batch))
    assert back.steps == steps
    assert [list(s) for s in back.steps] == [list(s) for s in steps]  # same keys, same order
    assert (back.rejected, back.unmapped) == (batch.rejected, batch.unmapped)


class _Forgetful(dict):
    """A memo that remembers nothing: every span is read by the conventions themselves."""

    def get(self, key, default=None):
        hash(key)  # as the real memo would: an unhashable key must still be handled
        return default

    def __setitem__(self, key, value):
        pass


def _variants(req: ExportTraceServiceRequest):
    """The same spans with every integer attribute one more (other token counts), then for each
    attribute key, with only that key's text values changed: a key the conventions read but the
    memo did not key on would map a changed span like the unchanged one."""
    keys = sorted({kv.key for rs in req.resource_spans for ss in rs.scope_spans for span in ss.spans
                   for kv in span.attributes})
    for key in [None, *keys]:
        out = ExportTraceServiceRequest()
        out.CopyFrom(req)
        for rs in out.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    for kv in span.attributes:
                        if key is None and kv.value.WhichOneof("value") == "int_value":
                            kv.value.int_value += 1
                        elif kv.key == key and kv.value.WhichOneof("value") == "string_value":
                            kv.value.string_value += "-changed"
        yield out


def test_remembered_convention_readings_map_every_span_as_a_first_reading_would(monkeypatch):
    """extract_all remembers what the conventions say per key shape and decisive values, and
    re-reads only passed-through token counts: spans mapped from the memo (warm, then with
    other token counts) equal spans whose conventions read everything afresh."""
    from alephant_otel.mapping import conventions
    from alephant_otel.pricing import price_steps

    originals = [ExportTraceServiceRequest.FromString(p.read_bytes()) for p in sorted(FIXTURES.glob("*.pb"))]
    requests = originals + [v for r in originals for v in _variants(r)]

    def mapped(memo):
        monkeypatch.setattr(conventions, "_MEMO", memo)
        out = []
        for req in requests:
            batch = map_request(req)
            price_steps(batch.steps)
            out += batch.steps
        return out

    fresh = mapped(_Forgetful())
    memo: dict = {}
    assert mapped(memo) == fresh
    assert len(memo) and mapped(memo) == fresh  # every reading from the memo this time
    n = sum(len(r.resource_spans[0].scope_spans[0].spans) for r in originals)
    usage = [[s["output_tokens"] for s in part if s["output_tokens"] is not None] for part in (fresh[:n], fresh[n:2 * n])]
    assert len(usage[0]) >= 5 and usage[0] != usage[1]  # the bumped counts came through


@pytest.mark.parametrize("first,second", [(1, 1.0), (1, True), (0.0, -0.0), ([1], [True])])
def test_values_equal_in_python_but_read_differently_are_not_confused(first, second):
    """The memo keys values with their types: 1, 1.0 and True are equal dict keys, not equal text."""
    a = map_one({"gen_ai.operation.name": "chat", "gen_ai.request.model": first})
    b = map_one({"gen_ai.operation.name": "chat", "gen_ai.request.model": second})
    assert None not in (a["request_model"], b["request_model"]) and a["request_model"] != b["request_model"]


def test_usage_read_from_a_json_attribute_is_not_taken_from_an_earlier_span():
    """Vercel AI v4/v5 report cache tokens only inside ai.response.providerMetadata: two spans
    alike but for that JSON each get their own figures (the memo keys on the JSON's text)."""
    def cache_read(n):
        return map_one({"ai.operationId": "ai.generateText.doGenerate", "ai.model.provider": "openai.chat",
                        "ai.model.id": "gpt-4o", "ai.usage.promptTokens": 100, "ai.usage.completionTokens": 5,
                        "ai.response.providerMetadata": json.dumps({"openai": {"cachedPromptTokens": n}})})
    assert [cache_read(n)["cache_read_tokens"] for n in (10, 20, 10)] == [10, 20, 10]
