"""Inheritance inside a trace, precedence between carriers, and runs, whatever the arrival order."""
from __future__ import annotations

import json

import pytest

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id

from conftest import shutdown


def record(build, resource: dict | None = None):
    """Run `build(tracer)` under a real SDK and return the finished spans by name."""
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "recorded", **(resource or {})}))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    build(tp.get_tracer("tests"))
    tp.shutdown()
    return {s.name: s for s in mem.get_finished_spans()}


def three_levels(tracer):
    with tracer.start_as_current_span("root", attributes={
            "alephant.session.id": "s-root", "alephant.run.id": "r-root", "alephant.agent.id": "a-root",
            "alephant.prompt.id": "p-root", "alephant.property.tier": "gold", "alephant.property.ab": "A"}):
        with tracer.start_as_current_span("middle", attributes={"alephant.property.ab": "B"}):
            with tracer.start_as_current_span("leaf"):
                pass


def assert_inherited(receiver):
    for name in ("root", "middle", "leaf"):
        s = receiver.step(name)
        assert (s["session_id"], s["run_id"], s["agent_id"], s["prompt_id"]) == ("s-root", "r-root", "a-root", "p-root"), name
    assert json.loads(receiver.step("middle")["properties"]) == {"tier": "gold", "ab": "B"}
    assert json.loads(receiver.step("leaf")["properties"]) == {"tier": "gold", "ab": "B"}
    assert json.loads(receiver.step("root")["properties"]) == {"tier": "gold", "ab": "A"}


def test_children_inherit_in_one_request(receiver):
    spans = record(three_levels)
    receiver.exporter().export(list(spans.values()))
    assert_inherited(receiver)


def test_children_arrive_before_parents_in_other_requests(receiver):
    spans = record(three_levels)
    exp = receiver.exporter()
    for name in ("leaf", "middle", "root"):  # deepest first, each in its own export request
        exp.export([spans[name]])
    assert_inherited(receiver)
    assert receiver.rows("SELECT count(*) AS n FROM _orphans")[0]["n"] == 0


def test_parent_arrives_after_a_restart(receiver):
    spans = record(three_levels)
    receiver.exporter().export([spans["leaf"], spans["middle"]])
    assert receiver.step("leaf")["session_id"] is None
    receiver.restart()
    receiver.exporter().export([spans["root"]])
    assert_inherited(receiver)


def test_middle_arriving_last_links_both_sides(receiver):
    spans = record(three_levels)
    exp = receiver.exporter()
    exp.export([spans["root"]])
    exp.export([spans["leaf"]])
    assert receiver.step("leaf")["session_id"] is None  # its parent is not there yet
    exp.export([spans["middle"]])
    assert_inherited(receiver)


def test_precedence_between_carriers(receiver):
    """Alephant beats foreign everywhere; the span beats its ancestors; an ancestor's span
    attributes beat the span's resource and export call; the resource beats the export call."""
    def build(tracer):
        with tracer.start_as_current_span("root", attributes={"alephant.session.id": "s-span-root"}):
            with tracer.start_as_current_span("child", attributes={
                    "alephant.session.id": "s-span-child", "gen_ai.conversation.id": "conv-child"}):
                pass
            with tracer.start_as_current_span("sibling", attributes={"gen_ai.conversation.id": "conv-sibling",
                                                                      "gen_ai.agent.name": "foreign-agent"}):
                pass
    spans = record(build, resource={"alephant.agent.id": "agent-resource"})
    exp = receiver.exporter(headers={"alephant-session-id": "s-request", "alephant-agent-id": "agent-request",
                                     "alephant-run-id": "run-request"})
    exp.export(list(spans.values()))
    assert receiver.step("root")["session_id"] == "s-span-root"
    assert receiver.step("child")["session_id"] == "s-span-child"          # span beats ancestor
    assert receiver.step("sibling")["session_id"] == "s-span-root"         # Alephant ancestor beats foreign span
    assert receiver.step("sibling")["agent_id"] == "agent-resource"        # Alephant resource beats foreign span
    assert receiver.step("root")["agent_id"] == "agent-resource"           # resource beats export call
    assert receiver.step("root")["run_id"] == "run-request"                # export call applies when nothing else does


def test_ancestor_span_value_beats_own_export_call(receiver):
    def build(tracer):
        with tracer.start_as_current_span("upstream", attributes={"alephant.session.id": "s-upstream"}):
            with tracer.start_as_current_span("downstream"):
                pass
    spans = record(build)
    receiver.exporter().export([spans["upstream"]])
    receiver.exporter(headers={"alephant-session-id": "s-downstream-process"}).export([spans["downstream"]])
    assert receiver.step("downstream")["session_id"] == "s-upstream"


def test_run_id_defaults_to_trace_id_and_runs_span_traces(receiver):
    with shutdown(receiver.provider()) as tracer:
        with tracer.start_as_current_span("no-run") as plain:
            pass
        for i in range(2):  # two traces (two root spans) of one run
            with tracer.start_as_current_span(f"task-{i}", attributes={"alephant.run.id": "long-task"}):
                with tracer.start_as_current_span(f"step-{i}"):
                    pass
    assert receiver.step("no-run")["run_id"] == format_trace_id(plain.get_span_context().trace_id)
    runs = receiver.rows("SELECT * FROM runs WHERE run_id = 'long-task'")
    assert len(runs) == 1
    assert runs[0]["trace_count"] == 2 and runs[0]["step_count"] == 4


def nested_llm_calls(tracer):
    """A framework's LLM span wrapping the provider client's LLM span for the same request
    (LangChain over OpenAI, both instrumented by OpenInference)."""
    usage = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
             "llm.token_count.prompt": 1000, "llm.token_count.completion": 100}
    with tracer.start_as_current_span("chain", attributes={"openinference.span.kind": "CHAIN"}):
        with tracer.start_as_current_span("ChatOpenAI", attributes=usage):
            with tracer.start_as_current_span("OpenAI chat", attributes=usage):
                pass


@pytest.mark.parametrize("order", [["chain", "ChatOpenAI", "OpenAI chat"], ["OpenAI chat", "ChatOpenAI", "chain"],
                                   ["ChatOpenAI", "chain", "OpenAI chat"], "one request"])
def test_a_model_call_repeated_by_its_child_is_counted_once(receiver, order):
    spans = record(nested_llm_calls)
    exp = receiver.exporter()
    if order == "one request":
        exp.export(list(spans.values()))
    else:
        for name in order:
            exp.export([spans[name]])
    inner, outer = receiver.step("OpenAI chat"), receiver.step("ChatOpenAI")
    assert inner["step_kind"] == "model_call" and inner["input_tokens"] == 1000
    assert outer["step_kind"] == "workflow_action"
    assert outer["input_tokens"] is None and outer["model_cost"] is None
    assert "usage repeated by child model call" in json.loads(outer["anomalies"])[0]
    run = receiver.rows("SELECT model_calls, total_tokens, cost FROM runs")[0]
    assert (run["model_calls"], run["total_tokens"], run["cost"]) == (1, 1100, inner["model_cost"])


def test_resolve_merges_properties_across_tiers_and_keeps_only_inherited_fields():
    """inherit.resolve fills the resolved fields in place of a filter: a field a tier carries
    that is not inherited stays out, and the properties it merges never alias a (shared) tier."""
    from alephant_otel.inherit import RESOLVED_FIELDS, resolve

    chain = [{"agent_id": "a0", "properties": {"ab": "B"}}, {"request_id": "req-1", "agent_id": "a1"},
             {"session_id": "s2", "properties": {"ab": "A", "tier": "gold"}}, {}]
    out = resolve(chain, "t1")
    assert list(out) == list(RESOLVED_FIELDS)
    assert (out["agent_id"], out["session_id"], out["run_id"]) == ("a0", "s2", "t1")
    assert out["properties"] == {"ab": "B", "tier": "gold"}
    shared = {"properties": {"tier": "gold"}}
    one = resolve([{}, {}, shared, {}], "t1")["properties"]
    one["tier"] = "changed"
    assert shared == {"properties": {"tier": "gold"}}
