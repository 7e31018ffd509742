"""Declarative rules for custom spans: matching, transforms, validation, and the real receiver."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from alephant_otel.cli import main
from alephant_otel.mapping.rules import RuleSet, RulesError
from conftest import Running, shutdown
from test_mapping import map_one

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "rules"


def rules(text: str) -> RuleSet:
    return RuleSet.parse(text, "test.yaml")


def test_the_shipped_examples_load():
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        assert RuleSet.load(f).rules


def test_payments_example_through_the_real_receiver(tmp_path):
    r = Running(tmp_path / "rules.duckdb", rules=RuleSet.load(EXAMPLES / "payments.yaml")).start()
    try:
        from opentelemetry.trace import SpanKind
        with shutdown(r.provider()) as tracer:
            with tracer.start_as_current_span("stripe.charges.create", kind=SpanKind.CLIENT, attributes={
                    "charge.amount_cents": 1999, "charge.currency": "eur", "customer.id": "cus_1",
                    "customer.plan": "pro", "app.job_ids": ["job-7", "job-8"]}):
                pass
            with tracer.start_as_current_span("stripe.charges.create", attributes={"charge.amount_cents": 5}):
                pass  # INTERNAL, not CLIENT: the rule does not match
        rows = r.rows("SELECT * FROM steps ORDER BY start_time")
    finally:
        r.stop()
    s, other = rows
    assert (s["step_kind"], s["operation"], s["tool_name"]) == ("payment", "charges.create", "stripe")
    assert (s["provided_cost"], s["currency"], s["cost_source"]) == (Decimal("19.99"), "EUR", "provided")
    assert (s["user_id"], s["run_id"], json.loads(s["properties"])) == ("cus_1", "job-7", {"plan": "pro"})
    assert "rules" in s["convention"]
    assert other["step_kind"] == "workflow_action" and other["provided_cost"] is None


def test_gateway_example_makes_priced_model_calls():
    rs = RuleSet.load(EXAMPLES / "llm-gateway.yaml")
    s = map_one({"gw.vendor": "openai", "gw.model.requested": "gpt-4o-mini", "gw.model.served": "gpt-4o-mini-2024-07-18",
                 "gw.tokens.prompt_uncached": 700, "gw.tokens.prompt_cached": 300, "gw.tokens.completion": 50,
                 "gw.tenant": "ws-1", "gw.caller": "agent:support-bot", "gw.prompt_ref": "refund-policy@7"},
                name="gateway.chat", scope="acme.llm_gateway", rules=rs)
    assert (s["step_kind"], s["provider"], s["model"]) == ("model_call", "openai", "gpt-4o-mini-2024-07-18")
    assert (s["input_tokens"], s["cache_read_tokens"], s["output_tokens"]) == (700, 300, 50)
    assert s["tiers"][0] == {"workspace_id": "ws-1", "agent_id": "support-bot", "prompt_id": "refund-policy", "prompt_version": "7"}
    assert map_one({"gw.vendor": "openai"}, name="gateway.chat", scope="other.scope", rules=rs)["step_kind"] == "workflow_action"


def test_job_runner_example_name_capture_and_attribute_regex():
    rs = RuleSet.load(EXAMPLES / "job-runner.yaml")
    tool = map_one({"job.conversation": "conv:8812:web"}, name="tool/search_orders", rules=rs)
    assert (tool["step_kind"], tool["tool_name"], tool["tiers"][0]) == ("tool_call", "search_orders", {"session_id": "8812"})
    api = map_one({"peer.service": "crm-api"}, name="GET", kind=3, rules=rs)
    assert (api["step_kind"], api["tool_name"]) == ("api_call", "crm-api")
    assert map_one({"peer.service": "other-api"}, name="GET", kind=3, rules=rs)["tool_name"] is None


def test_first_matching_rule_wins_and_explicit_attributes_beat_rules():
    rs = rules("""
rules:
  - match: {attributes: {x: 1}}
    set: {session_id: {const: from-first}, step_kind: tool_call}
  - match: {attributes: {x: 1}}
    set: {session_id: {const: from-second}, step_kind: payment}
""")
    s = map_one({"x": 1}, rules=rs)
    assert s["step_kind"] == "tool_call" and s["tiers"][0]["session_id"] == "from-first"
    explicit = map_one({"x": 1, "alephant.session.id": "mine"}, rules=rs)
    assert explicit["tiers"][0]["session_id"] == "mine"


def test_rules_beat_built_in_conventions():
    rs = rules("rules:\n  - match: {name: '^chat'}\n    set: {step_kind: tool_call, tool_name: {const: t}}\n")
    s = map_one({"gen_ai.operation.name": "chat"}, name="chat x", rules=rs)
    assert (s["step_kind"], s["tool_name"]) == ("tool_call", "t")


def test_transforms():
    rs = rules("""
rules:
  - match: {name: t}
    set:
      session_id: {from: ids, index: -1}
      user_id: {from: who, regex: "^user:(\\\\w+)"}
      provided_cost: {from: cents, scale: 0.01}
      agent_id: arr
      property.flag: {from: flag}
""")
    s = map_one({"ids": ["a", "b"], "who": "user:kim", "cents": "250", "arr": ["first", "second"], "flag": True}, name="t", rules=rs)
    assert s["tiers"][0] == {"session_id": "b", "user_id": "kim", "agent_id": "first", "properties": {"flag": "True"}}
    assert s["provided_cost"] == Decimal("2.5")
    missing = map_one({"who": "nobody"}, name="t", rules=rs)  # nothing to take: nothing set
    assert missing["tiers"][0] == {} and missing["provided_cost"] is None


@pytest.mark.parametrize("text,reason", [
    ("rules: {}", "expected a mapping with a `rules:` list"),
    ("rules:\n  - set: {step_kind: tool_call}", "rules[0] (rule 0): `match` must be"),
    ("rules:\n  - match: {name: x}\n    set: {step_kind: tool_call}\n  - name: two\n    match: {name: '('}\n    set: {step_kind: tool_call}", "rules[1] (two): match.name: bad regex"),
    ("rules:\n  - match: {name: x}\n    set: {step_kind: teleport}", "step_kind 'teleport' is not one of"),
    ("rules:\n  - match: {name: x}\n    set: {colour: {const: red}}", "unknown target 'colour'"),
    ("rules:\n  - match: {name: x, color: red}\n    set: {step_kind: tool_call}", "unknown match key(s): color"),
    ("rules:\n  - match: {kind: sideways}\n    set: {step_kind: tool_call}", "match.kind 'sideways'"),
    ("rules:\n  - match: {name: x}\n    set: {session_id: {from: a, const: b}}", "exactly one of `from`"),
    ("rules:\n  - match: {name: x}\n    set: {session_id: {from: a, scale: lots}}", "scale must be a number"),
    ("rules:\n  - match: {attributes: {a: [1, 2]}}\n    set: {step_kind: tool_call}", "match.attributes['a']"),
    ("rules: [", "not valid YAML"),
])
def test_bad_rules_name_the_file_rule_and_reason(text, reason):
    with pytest.raises(RulesError) as exc:
        rules(text)
    assert str(exc.value).startswith("test.yaml")
    assert reason in str(exc.value)


def test_serve_refuses_to_start_with_a_bad_rules_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - match: {name: '['}\n    set: {step_kind: tool_call}\n")
    res = CliRunner().invoke(main, ["serve", "--db", str(tmp_path / "x.duckdb"), "--grpc-port", "0", "--mapping", str(bad)])
    assert res.exit_code == 1
    assert f"{bad}: rules[0] (rule 0): match.name: bad regex" in res.output
    assert not (tmp_path / "x.duckdb").exists()
