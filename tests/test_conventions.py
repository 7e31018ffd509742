"""Every convention family maps to the right steps: real captured traces sent through the real
receiver, and focused spans for keys the captures do not exercise."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import FIXTURES, Running, shutdown
from test_bad_input import call
from test_mapping import map_one

ALL_FIXTURES = ["openai_otelv2_latest", "openai_otelv2_default_utilgenai11", "pydantic_ai_test_model",
                "openai_openinference", "traceloop_openai", "vercel_ai"]
FAMILY = {"openai_otelv2_latest": "gen_ai", "openai_otelv2_default_utilgenai11": "gen_ai",
          "pydantic_ai_test_model": "pydantic_ai", "openai_openinference": "openinference",
          "traceloop_openai": "traceloop", "vercel_ai": "vercel_ai"}
KIND = {"agent_or_workflow": "workflow_action", "other": "workflow_action"}


@pytest.mark.parametrize("fixture", ALL_FIXTURES)
def test_captured_traces_through_the_receiver(receiver, fixture):
    expected = json.loads((FIXTURES / f"{fixture}.expected.json").read_text())
    call(receiver, (FIXTURES / f"{fixture}.pb").read_bytes())
    steps = {s["span_id"]: s for s in receiver.rows("SELECT * FROM steps")}
    assert len(steps) == expected["span_count"]
    model_calls = 0
    for e in expected["spans"]:
        s = steps[e["span_id"]]
        assert s["step_kind"] == KIND.get(e["step_kind"], e["step_kind"]), e["name"]
        if s["step_kind"] == "model_call":
            model_calls += 1
            assert s["model"] == (e["response_model"] or e["request_model"])
            assert s["input_tokens"] + (s["cache_read_tokens"] or 0) + (s["cache_write_tokens"] or 0) == e["input_tokens"]
            assert s["output_tokens"] + (s["reasoning_tokens"] or 0) == e["output_tokens"]
            assert (s["cache_read_tokens"] or None) == e["cache_read_tokens"]
            assert (s["reasoning_tokens"] or None) == e["reasoning_tokens"]
            assert FAMILY[fixture] in s["convention"]
        else:
            assert s["input_tokens"] is None and s["model_cost"] is None  # rolled-up usage is not counted
        if e["tool_name"]:
            assert s["tool_name"] == e["tool_name"]
        if e["session_id"]:
            assert s["session_id"] == e["session_id"]
        if e["user_id"]:
            assert s["user_id"] == e["user_id"]
        if e["custom_property_attrs"] and not e["synthetic_fixture_span"]:
            assert json.loads(s["properties"]).get("tier") == "gold", e["name"]
    assert model_calls == 3
    # usage counted once: the run's tokens are the fake server's three calls, whatever rolls up
    totals = {e["span_id"]: e for e in expected["spans"] if e["step_kind"] == "model_call"}
    want = sum(e["input_tokens"] + e["output_tokens"] for e in totals.values())
    assert sum(r["total_tokens"] for r in receiver.rows("SELECT total_tokens FROM runs")) == want


def test_openinference_provided_cost_is_kept_beside_the_computed_one(tmp_path):
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
             "llm.token_count.prompt": 1000, "llm.token_count.completion": 100, "llm.cost.total": 0.5,
             "session.id": "s", "user.id": "u", "tag.tags": ["beta", "eu"],
             "metadata": json.dumps({"tier": "gold", "user_id": "u-meta"})}
    for preference, counts in [("provided", "provided"), ("computed", "computed")]:
        r = Running(tmp_path / f"{preference}.duckdb", cost_preference=preference).start()
        try:
            with shutdown(r.provider()) as tracer:
                with tracer.start_as_current_span("llm", attributes=attrs):
                    pass
            s = r.step("llm")
        finally:
            r.stop()
        assert s["provided_cost"] == Decimal("0.5")
        assert s["computed_cost"] == Decimal("0.000210000000")  # 1000 x $0.15/M + 100 x $0.60/M
        assert s["cost_difference"] == Decimal("0.5") - Decimal("0.00021")
        assert s["cost_source"] == counts
        assert s["model_cost"] == (s["provided_cost"] if counts == "provided" else s["computed_cost"])
        assert s["provided_cost_source"] == "llm.cost.total"
        assert (s["session_id"], s["user_id"]) == ("s", "u")
        assert json.loads(s["properties"]) == {"tier": "gold", "tags": "beta,eu"}


def test_traceloop_legacy_keys_and_association_properties():
    s = map_one({"llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-4o",
                 "llm.usage.prompt_tokens": 120, "llm.usage.completion_tokens": 30, "llm.usage.total_tokens": 150,
                 "traceloop.association.properties.session_id": "tl-s", "traceloop.association.properties.user_id": "tl-u",
                 "traceloop.association.properties.plan": "pro", "traceloop.prompt.key": "greeting",
                 "traceloop.prompt.version": 4})
    assert (s["step_kind"], s["provider"], s["input_tokens"], s["output_tokens"]) == ("model_call", "openai", 120, 30)
    assert s["tiers"][2]["session_id"] == "tl-s" and s["tiers"][2]["user_id"] == "tl-u"
    assert s["tiers"][2]["properties"] == {"plan": "pro"}
    assert (s["tiers"][2]["prompt_id"], s["tiers"][2]["prompt_version"]) == ("greeting", "4")
    tool = map_one({"traceloop.span.kind": "tool", "traceloop.entity.name": "lookup"})
    assert (tool["step_kind"], tool["tool_name"]) == ("tool_call", "lookup")


@pytest.mark.parametrize("usage,expect", [
    ({"ai.usage.promptTokens": 50, "ai.usage.completionTokens": 10}, (50, None, 10, None)),      # v4
    ({"ai.usage.inputTokens": 50, "ai.usage.outputTokens": 10, "ai.usage.cachedInputTokens": 20,
      "ai.usage.reasoningTokens": 4}, (30, 20, 6, 4)),                                            # v5
    ({"ai.usage.inputTokens": 50, "ai.usage.outputTokens": 10, "ai.usage.inputTokenDetails.noCacheTokens": 30,
      "ai.usage.inputTokenDetails.cacheReadTokens": 20, "ai.usage.outputTokenDetails.reasoningTokens": 4}, (30, 20, 6, 4)),  # v6
])
def test_vercel_usage_spellings(usage, expect):
    s = map_one({"ai.operationId": "ai.generateText.doGenerate", "ai.model.id": "gpt-4o-mini",
                 "ai.model.provider": "openai.chat", "ai.telemetry.metadata.sessionId": "v-s",
                 "ai.telemetry.metadata.userId": "v-u", "ai.telemetry.metadata.tier": "gold", **usage})
    assert s["step_kind"] == "model_call" and s["provider"] == "openai"
    assert (s["input_tokens"], s["cache_read_tokens"], s["output_tokens"], s["reasoning_tokens"]) == expect
    assert s["tiers"][2] == {"session_id": "v-s", "user_id": "v-u", "properties": {"tier": "gold"}}
    outer = map_one({"ai.operationId": "ai.generateText", "ai.model.id": "gpt-4o-mini", **usage})
    assert outer["step_kind"] == "workflow_action" and outer["input_tokens"] is None


def test_langsmith_kinds_metadata_and_tags():
    s = map_one({"langsmith.span.kind": "llm", "gen_ai.request.model": "gpt-4o", "gen_ai.system": "openai",
                 "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5,
                 "langsmith.metadata.thread_id": "thread-9", "langsmith.metadata.user_id": "ls-u",
                 "langsmith.metadata.variant": "B", "langsmith.span.tags": "prod,beta",
                 "langsmith.trace.session_id": "a-langsmith-project"})
    assert s["step_kind"] == "model_call" and "langsmith" in s["convention"]
    assert s["tiers"][2]["session_id"] == "thread-9"  # not the LangSmith project
    assert s["tiers"][2]["properties"] == {"variant": "B", "tags": "prod,beta"}
    assert map_one({"langsmith.span.kind": "tool", "gen_ai.tool.name": "t"})["step_kind"] == "tool_call"


def test_openlit_anthropic_input_excludes_cache_and_its_cost_is_provided():
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
             "gen_ai.usage.input_tokens": 1500, "gen_ai.usage.cache_read_input_tokens": 800,
             "gen_ai.usage.cache_creation_input_tokens": 200, "gen_ai.usage.output_tokens": 50,
             "gen_ai.usage.cost": 0.00123}
    for where in ({"resource": {"telemetry.sdk.name": "openlit"}}, {"scope": "openlit.otel.tracing"}):
        s = map_one(attrs, **where)
        assert (s["input_tokens"], s["cache_read_tokens"], s["cache_write_tokens"]) == (1500, 800, 200)
        assert s["provided_cost"] == Decimal("0.00123") and "openlit" in s["convention"]
    # the same keys without OpenLIT follow the GenAI convention: input includes cache
    plain = map_one(attrs)
    assert plain["input_tokens"] == 500 and plain["provided_cost"] is None
    # OpenLIT's OpenAI spans do include cache, as the convention says
    openai = map_one(attrs | {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"}, scope="openlit")
    assert openai["input_tokens"] == 500


def test_generic_session_and_user_keys():
    s = map_one({"session.id": "g-s", "enduser.id": "g-u"})
    assert s["tiers"][2] == {"session_id": "g-s", "user_id": "g-u"}
    assert map_one({"user.id": "a", "enduser.id": "b"})["tiers"][2]["user_id"] == "a"


def test_pydantic_ai_cost_and_run_id_candidate():
    s = map_one({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 5,
                 "gen_ai.usage.output_tokens": 1, "operation.cost": "0.0001", "gen_ai.agent.call.id": "call-1"})
    assert s["provided_cost"] == Decimal("0.0001") and s["provided_cost_source"] == "operation.cost"
    assert s["tiers"][2]["run_id"] == "call-1"
    assert "agent_name" not in map_one({"agent_name": "not-pydantic"})["tiers"][2]  # generic key, unrecognised span


def test_unrecognised_span_is_a_workflow_action_with_its_attributes(receiver):
    with shutdown(receiver.provider()) as tracer:
        with tracer.start_as_current_span("home.grown", attributes={"home.cost_cents": 12, "home.thing": "x"}):
            pass
    s = receiver.step("home.grown")
    assert s["step_kind"] == "workflow_action" and s["convention"] is None
    assert json.loads(receiver.rows("SELECT attributes FROM spans")[0]["attributes"]) == {"home.cost_cents": 12, "home.thing": "x"}


def test_cost_by_user(receiver):
    from click.testing import CliRunner
    from alephant_otel.cli import main
    with shutdown(receiver.provider()) as tracer:
        for user in ("u1", "u1", "u2"):
            with tracer.start_as_current_span("chat", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai",
                    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 0, "user.id": user}):
                pass
    receiver.stop()
    out = CliRunner().invoke(main, ["cost", "--by", "user", "--db", str(receiver.db), "--format", "json"])
    rows = {r["user_id"]: r for r in json.loads(out.output)}
    assert rows["u1"]["cost"] == pytest.approx(2 * rows["u2"]["cost"]) and rows["u1"]["step_count"] == 2


VERCEL = sorted((Path(__file__).parent / "data" / "vercel").glob("*.pb"))
NO_CACHE_INFO = {"vercel_ai_v5"}          # v5 generateText reports neither cache nor reasoning
NO_REASONING_INFO = {"vercel_ai_v5", "vercel_ai_v7"}  # v7's default shape has no reasoning count


@pytest.mark.parametrize("path", VERCEL, ids=[p.stem for p in VERCEL])
def test_vercel_ai_v4_to_v7_captures_count_each_call_once(receiver, path):
    """Captured with the real `ai` package, v4 to v7 (tests/data/README.md says how)."""
    call(receiver, path.read_bytes())
    calls = receiver.rows("SELECT * FROM steps WHERE step_kind = 'model_call'")
    assert len(calls) == 3  # the fake server answered three requests
    total_in = sum(s["input_tokens"] + (s["cache_read_tokens"] or 0) for s in calls)
    total_out = sum(s["output_tokens"] + (s["reasoning_tokens"] or 0) for s in calls)
    assert (total_in, total_out) == (21 + 57 + 88, 9 + 17 + 24)
    if path.stem not in NO_CACHE_INFO:
        assert sum(s["cache_read_tokens"] for s in calls) == 4 + 32 + 48
    if path.stem not in NO_REASONING_INFO:
        assert sum(s["reasoning_tokens"] for s in calls) == 3 + 5 + 7
    assert {(s["model"], s["provider"], s["session_id"], s["user_id"]) for s in calls} == \
        {("gpt-4o-mini-2024-07-18", "openai", "sess-fixture-1", "user-42")}
    assert all(json.loads(s["properties"]) == {"tier": "gold"} for s in calls)
    assert all(s["cost_source"] == "computed" for s in calls)
    tools = receiver.rows("SELECT tool_name FROM steps WHERE step_kind = 'tool_call'")
    assert tools == [{"tool_name": "get_weather"}]
    runs = receiver.rows("SELECT sum(total_tokens) AS t, sum(cost) AS c FROM runs")[0]
    assert runs["t"] == 166 + 50 and runs["c"] == sum(s["model_cost"] for s in calls)


DATA = Path(__file__).parent / "data"


def test_langsmith_capture(receiver):
    """langsmith[otel] with @traceable and wrap_openai (tests/data/README.md)."""
    call(receiver, (DATA / "langsmith_openai.pb").read_bytes())
    calls = receiver.rows("SELECT * FROM steps WHERE step_kind = 'model_call' ORDER BY start_time")
    assert [(c["input_tokens"], c["cache_read_tokens"], c["output_tokens"], c["reasoning_tokens"]) for c in calls] == \
        [(17, 4, 6, 3), (25, 32, 12, 5), (40, 48, 17, 7)]
    assert {(c["provider"], c["session_id"], c["user_id"]) for c in calls} == {("openai", "sess-fixture-1", "user-42")}
    props = json.loads(calls[0]["properties"])
    assert props["tier"] == "gold" and "openai-wrapper" in props["tags"]
    assert not any(k.startswith(("ls_", "LANGSMITH_")) or k in ("revision_id", "usage_metadata") for k in props)
    assert receiver.rows("SELECT tool_name FROM steps WHERE step_kind = 'tool_call'") == [{"tool_name": "get_weather"}]
    assert all("langsmith" in c["convention"] for c in calls)


def test_openlit_captures(receiver):
    """openlit with the openai and anthropic clients (tests/data/README.md)."""
    call(receiver, (DATA / "openlit_anthropic.pb").read_bytes())
    call(receiver, (DATA / "openlit_openai.pb").read_bytes())
    claude = receiver.rows("SELECT * FROM steps WHERE step_kind = 'model_call' AND provider = 'anthropic'")[0]
    # Anthropic through OpenLIT: input 100 excludes the 800 + 200 cache tokens; not subtracted again
    assert (claude["input_tokens"], claude["cache_read_tokens"], claude["cache_write_tokens"], claude["output_tokens"]) == (100, 800, 200, 50)
    assert claude["cost_source"] == "provided" and claude["provided_cost_source"] == "gen_ai.usage.cost"
    assert claude["computed_cost"] == claude["provided_cost"]  # OpenLIT with cache prices agrees with us
    gpt = receiver.rows("SELECT * FROM steps WHERE step_kind = 'model_call' AND provider = 'openai' ORDER BY start_time")
    assert [(g["input_tokens"], g["cache_read_tokens"]) for g in gpt] == [(17, 4), (25, 32), (40, 48)]
    assert {g["user_id"] for g in gpt} == {"user-42"}
    assert all(g["tool_name"] is None for g in gpt)  # the call that asks for a tool is not a tool call
    asked = [json.loads(r["attributes"] or "{}") for r in receiver.rows("SELECT attributes FROM spans WHERE name LIKE 'chat%'")]
    assert any(a.get("gen_ai.tool.name") == "get_weather" for a in asked)  # kept raw
