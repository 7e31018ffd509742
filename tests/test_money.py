"""Money end to end: a realistic paid-endpoint scenario exported through the real receiver,
with every figure asserted at every roll-up level, mixed currencies, an unpriced step, a
retry, a blocked policy, and repricing."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from click.testing import CliRunner
from genai_prices import Usage, calc_price
from opentelemetry.trace import SpanKind

from alephant_otel.cli import main
from alephant_otel.price_list import PriceList
from conftest import Running, shutdown

D = Decimal
Q = D("1e-12")
PRICES = PriceList.parse("""
version: test-rates-1
tools: {search: 0.05}
apis:
  - {host: api.deepl.example, method: POST, amount: 0.01}
""")


def gpt4o_mini(inp: int, cached: int, out: int) -> Decimal:
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return calc_price(Usage(input_tokens=inp, cache_read_tokens=cached or None, output_tokens=out),
                      model_ref="gpt-4o-mini", provider_id="openai", genai_request_timestamp=day).total_price.quantize(Q)


M1, M2, M3 = gpt4o_mini(10_000, 2_000, 1_000), gpt4o_mini(1_000, 0, 100), gpt4o_mini(500, 0, 50)


def chat(tracer, name, inp, cached, out, **extra):
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": inp, "gen_ai.usage.cache_read.input_tokens": cached,
            "gen_ai.usage.output_tokens": out, **extra}):
        pass


def scenario(tracer):
    ctx = {"alephant.workspace.id": "ws-1", "alephant.department.id": "dep-1", "alephant.agent.id": "translator",
           "alephant.session.id": "s-1", "alephant.workflow.name": "translate-flow", "alephant.endpoint.id": "ep-translate",
           "alephant.budget.scope": "agent", "alephant.budget.id": "bud-1", "alephant.budget.limit": 100,
           "alephant.budget.remaining": 42.5}
    # run 1: the buyer pays 0.50 USD (inbound x402, also stated as revenue: counted once)
    with tracer.start_as_current_span("POST /translate", kind=SpanKind.SERVER, attributes={
            **ctx, "alephant.run.id": "r1", "alephant.payment.amount": 0.50, "alephant.payment.direction": "inbound",
            "alephant.payment.rail": "x402", "alephant.payment.status": "settled", "alephant.revenue.amount": 0.50}):
        chat(tracer, "chat 1", 10_000, 2_000, 1_000)
        chat(tracer, "chat 1 retry", 1_000, 0, 100, **{"http.request.resend_count": 1})
        with tracer.start_as_current_span("search", attributes={"gen_ai.operation.name": "execute_tool",
                                                                "gen_ai.tool.name": "search", "alephant.cost.amount": 0.02}):
            pass  # provided 0.02 wins over the price list's 0.05
        with tracer.start_as_current_span("POST deepl", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "POST", "server.address": "api.deepl.example"}):
            pass
        with tracer.start_as_current_span("mystery", attributes={"gen_ai.operation.name": "execute_tool",
                                                                 "gen_ai.tool.name": "mystery_tool"}):
            pass  # not in the price list: unpriced, margin incomplete
        with tracer.start_as_current_span("buy glossary", kind=SpanKind.CLIENT, attributes={
                "alephant.payment.amount": "0.10", "alephant.payment.currency": "usdc",
                "alephant.payment.direction": "outbound", "alephant.payment.rail": "x402",
                "alephant.payment.status": "settled"}):
            pass
        with tracer.start_as_current_span("settle", attributes={"alephant.fee.amount": 0.015}):
            pass
        with tracer.start_as_current_span("pii check", attributes={"alephant.policy.decision": "blocked",
                                                                   "alephant.policy.id": "pol-pii",
                                                                   "alephant.policy.reason": "email in prompt"}):
            pass
    # run 2: a gateway records the inbound payment as an event on its request span
    with tracer.start_as_current_span("POST /translate", kind=SpanKind.SERVER, attributes={**ctx, "alephant.run.id": "r2"}) as s:
        s.add_event("alephant.payment", {"alephant.payment.amount": 0.50, "alephant.payment.direction": "inbound",
                                         "alephant.payment.status": "settled", "alephant.payment.rail": "x402"})
        chat(tracer, "chat 2", 500, 0, 50)
        with tracer.start_as_current_span("refund glossary", attributes={
                "alephant.payment.amount": 0.10, "alephant.payment.currency": "USDC",
                "alephant.payment.direction": "outbound", "alephant.payment.status": "refunded"}):
            pass
        with tracer.start_as_current_span("failed purchase", attributes={
                "alephant.payment.amount": 0.20, "alephant.payment.currency": "USDC",
                "alephant.payment.direction": "outbound", "alephant.payment.status": "failed"}):
            pass
        with tracer.start_as_current_span("apply_guardrail content", attributes={
                "gen_ai.operation.name": "apply_guardrail", "gen_ai.guardrail.policy.id": "gr-1",
                "gen_ai.guardrail.result.type": "action", "gen_ai.guardrail.result.value": "GUARDRAIL_INTERVENED"}):
            pass


@pytest.fixture(scope="module")
def paid(tmp_path_factory):
    r = Running(tmp_path_factory.mktemp("money") / "money.duckdb", prices=PRICES).start()
    with shutdown(r.provider()) as tracer:
        scenario(tracer)
    yield r
    r.stop()


def one(r, sql, params=None):
    rows = r.rows(sql, params)
    assert len(rows) == 1, rows
    return rows[0]


def test_steps_carry_each_money_signal(paid):
    root = paid.rows("SELECT * FROM steps WHERE name = 'POST /translate' AND run_id = 'r1'")[0]
    assert (root["step_kind"], root["revenue"], root["revenue_currency"]) == ("payment", D("0.5"), "USD")
    assert root["payment_spend"] is None and root["margin_contribution"] == D("0.5")
    search = paid.step("search")
    assert (search["tool_cost"], search["cost_source"], search["provided_cost"]) == (D("0.02"), "provided", D("0.02"))
    api = paid.step("POST deepl")
    assert (api["step_kind"], api["tool_cost"], api["price_source"]) == ("api_call", D("0.01"), "price list test-rates-1")
    mystery = paid.step("mystery")
    assert mystery["cost_source"] == "unpriced" and mystery["tool_cost"] is None
    buy = paid.step("buy glossary")
    assert (buy["step_kind"], buy["payment_spend"], buy["payment_currency"], buy["money_currency"]) == ("payment", D("0.1"), "USDC", "USDC")
    assert paid.step("settle")["fees"] == D("0.015")
    pii = paid.step("pii check")
    assert (pii["step_kind"], pii["policy_decision"], pii["policy_id"]) == ("policy_check", "blocked", "pol-pii")
    retry = paid.step("chat 1 retry")
    assert (retry["retry_attempt"], retry["model_cost"]) == (1, M2)
    # context inherited down the endpoint call, budget included
    for name in ("chat 1", "search", "pii check"):
        s = paid.step(name)
        assert (s["endpoint_id"], s["workflow_name"], s["budget_id"], s["budget_remaining"]) == \
            ("ep-translate", "translate-flow", "bud-1", D("42.5"))


def test_events_become_steps_counted_once(paid):
    event = one(paid, "SELECT * FROM steps WHERE derived_from IS NOT NULL")
    root = one(paid, "SELECT * FROM steps WHERE name = 'POST /translate' AND run_id = 'r2'")
    assert (event["step_kind"], event["revenue"], event["parent_span_id"]) == ("payment", D("0.5"), root["span_id"])
    assert root["revenue"] is None and root["step_kind"] == "workflow_action"
    assert (event["run_id"], event["endpoint_id"]) == ("r2", "ep-translate")
    refund, failed = paid.step("refund glossary"), paid.step("failed purchase")
    assert (refund["payment_spend"], failed["payment_spend"]) == (D("-0.1"), D("0"))
    guard = paid.step("apply_guardrail content")
    assert (guard["step_kind"], guard["policy_decision"], guard["policy_verdict"], guard["policy_id"]) == \
        ("policy_check", "blocked", "action=GUARDRAIL_INTERVENED", "gr-1")


R1_USD_COST = M1 + M2 + D("0.02") + D("0.01") + D("0.015")
R2_USD_COST = M3


def test_runs_per_currency_with_margin_and_retries(paid):
    usd1 = one(paid, "SELECT * FROM runs WHERE run_id = 'r1' AND currency = 'USD'")
    assert (usd1["model_cost"], usd1["tool_cost"], usd1["fees"], usd1["payment_spend"]) == (M1 + M2, D("0.03"), D("0.015"), 0)
    assert usd1["cost"] == R1_USD_COST and usd1["revenue"] == D("0.5")
    assert usd1["margin"] == D("0.5") - R1_USD_COST
    assert (usd1["unpriced_steps"], usd1["margin_complete"]) == (1, False)
    assert (usd1["retries"], usd1["retried_cost"]) == (1, M2)
    assert (usd1["step_count"], usd1["model_calls"], usd1["tool_calls"]) == (9, 2, 3)
    usdc1 = one(paid, "SELECT * FROM runs WHERE run_id = 'r1' AND currency = 'USDC'")
    assert (usdc1["cost"], usdc1["revenue"], usdc1["margin"]) == (D("0.1"), 0, D("-0.1"))
    usd2 = one(paid, "SELECT * FROM runs WHERE run_id = 'r2' AND currency = 'USD'")
    assert (usd2["cost"], usd2["revenue"], usd2["margin"], usd2["margin_complete"]) == (M3, D("0.5"), D("0.5") - M3, True)
    usdc2 = one(paid, "SELECT * FROM runs WHERE run_id = 'r2' AND currency = 'USDC'")
    assert (usdc2["payment_spend"], usdc2["cost"], usdc2["margin"]) == (D("-0.1"), D("-0.1"), D("0.1"))


@pytest.mark.parametrize("view,key,value", [
    ("sessions", "session_id", "s-1"), ("agents", "agent_id", "translator"),
    ("workflows", "workflow_name", "translate-flow"), ("endpoints", "endpoint_id", "ep-translate"),
    ("departments", "department_id", "dep-1"), ("workspaces", "workspace_id", "ws-1")])
def test_every_roll_up_level_agrees_to_the_cent(paid, view, key, value):
    usd = one(paid, f"SELECT * FROM {view} WHERE {key} = ? AND currency = 'USD'", [value])
    assert usd["cost"] == R1_USD_COST + R2_USD_COST
    assert usd["revenue"] == D("1.0")
    assert usd["margin"] == D("1.0") - R1_USD_COST - R2_USD_COST
    assert usd["unpriced_steps"] == 1 and usd["margin_complete"] is False
    usdc = one(paid, f"SELECT * FROM {view} WHERE {key} = ? AND currency = 'USDC'", [value])
    assert (usdc["cost"], usdc["margin"]) == (D("0"), D("0"))  # +0.10 bought, -0.10 refunded


def test_endpoint_calls_and_daily_costs_and_prompts(paid):
    ep = one(paid, "SELECT * FROM endpoints WHERE endpoint_id = 'ep-translate' AND currency = 'USD'")
    assert ep["calls"] == 2 and ep["success_rate"] == 1.0 and ep["median_server_ms"] is not None
    daily = paid.rows("SELECT * FROM daily_costs WHERE model = 'gpt-4o-mini' AND currency = 'USD'")
    assert len(daily) == 1 and daily[0]["model_cost"] == M1 + M2 + M3 and daily[0]["agent_id"] == "translator"
    assert paid.rows("SELECT count(*) AS n FROM prompts")[0]["n"] >= 1


def test_policy_decisions_view(paid):
    rows = {(r["policy_id"], r["policy_decision"]): r for r in paid.rows("SELECT * FROM policy_decisions")}
    assert rows[("pol-pii", "blocked")]["runs_blocked_or_escalated"] == ["r1"]
    assert rows[("gr-1", "blocked")]["runs_blocked_or_escalated"] == ["r2"]
    assert rows[("pol-pii", "blocked")]["agent_id"] == "translator"


def test_money_view_never_adds_currencies(paid):
    by_ccy = {r["currency"]: r["total"] for r in paid.rows(
        "SELECT currency, sum(amount) FILTER (WHERE component <> 'revenue') AS total FROM money GROUP BY currency")}
    assert by_ccy == {"USD": R1_USD_COST + R2_USD_COST, "USDC": D("0")}


def test_cli_margin_cost_run_and_session(paid):
    paid.stop()
    db = str(paid.db)
    try:
        res = CliRunner().invoke(main, ["margin", "--by", "run", "--db", db, "--format", "json"])
        rows = json.loads(res.output)
        assert [r["margin"] for r in rows] == sorted(r["margin"] for r in rows)  # least profitable first
        table = CliRunner().invoke(main, ["margin", "--by", "endpoint", "--db", db])
        assert "total USD:" in table.output and "total USDC:" in table.output
        res = CliRunner().invoke(main, ["cost", "--by", "tool", "--db", db, "--format", "json"])
        tools = {r["tool"]: r for r in json.loads(res.output)}
        assert tools["search"]["tool_cost"] == pytest.approx(0.02) and tools["mystery_tool"]["unpriced_steps"] == 1
        res = CliRunner().invoke(main, ["cost", "--by", "workspace", "--workspace", "nope", "--db", db, "--format", "json"])
        assert json.loads(res.output) == []
        tree = json.loads(CliRunner().invoke(main, ["run", "r1", "--db", db, "--format", "json"]).output)
        (root,) = tree["steps"]
        assert root["name"] == "POST /translate" and len(root["children"]) == 8
        text = CliRunner().invoke(main, ["run", "r1", "--db", db]).output
        assert "policy blocked" in text and "unpriced" in text and "retry 1" in text
        assert CliRunner().invoke(main, ["run", "nope", "--db", db]).exit_code == 1
    finally:
        paid.start()


def test_reprice_recomputes_computed_costs_only(tmp_path):
    r = Running(tmp_path / "reprice.duckdb", prices=PRICES).start()
    try:
        with shutdown(r.provider()) as tracer:
            scenario(tracer)
        provided_before = r.step("search")["tool_cost"]
    finally:
        r.stop()
    new = tmp_path / "rates-2.yaml"
    new.write_text("version: rates-2\ntools: {search: 0.5, mystery_tool: 0.25}\n"
                   "models:\n  - {provider: openai, model: gpt-4o-mini, input: 1.0, output: 2.0, cache_read: 0.5}\n")
    res = CliRunner().invoke(main, ["reprice", "--prices", str(new), "--db", str(r.db)])
    assert res.exit_code == 0, res.output
    assert "repriced" in res.output and "rates-2" in res.output
    r.start()
    try:
        chat1 = r.step("chat 1")
        assert chat1["computed_cost"] == (D(8000) * 1 + D(2000) * D("0.5") + D(1000) * 2) / 1_000_000
        assert chat1["model_cost"] == chat1["computed_cost"] and chat1["price_source"] == "price list rates-2"
        assert r.step("search")["tool_cost"] == provided_before  # provided: never overwritten
        assert r.step("mystery")["tool_cost"] == D("0.25") and r.step("mystery")["cost_source"] == "computed"
        assert r.step("POST deepl")["cost_source"] == "unpriced"  # no longer in the list
    finally:
        r.stop()


def test_property_grouping_and_filter_on_cost_and_margin(tmp_path):
    r = Running(tmp_path / "props.duckdb").start()
    with shutdown(r.provider()) as tracer:
        for plan, revenue in [("gold", 1.0), ("gold", 2.0), ("free", 0.0)]:
            with tracer.start_as_current_span("call", attributes={
                    "alephant.property.plan": plan, "alephant.revenue.amount": revenue, "alephant.cost.amount": 0.25,
                    "alephant.property.region": "eu" if revenue != 2.0 else "us"}):
                pass
    r.stop()
    out = json.loads(CliRunner().invoke(main, ["margin", "--by", "property.plan", "--db", str(r.db), "--format", "json"]).output)
    assert [(x["property.plan"], x["margin"]) for x in out] == [("free", -0.25), ("gold", 2.5)]
    out = json.loads(CliRunner().invoke(main, ["cost", "--by", "property.plan", "--where", "property.region=eu",
                                               "--db", str(r.db), "--format", "json"]).output)
    assert {x["property.plan"]: x["revenue"] for x in out} == {"gold": 1.0, "free": 0.0}
    bad = CliRunner().invoke(main, ["cost", "--by", "run", "--where", "nonsense", "--db", str(r.db)])
    assert bad.exit_code == 1 and "--where" in bad.output


def test_sessions_view_leaves_out_steps_without_a_session_but_cost_by_session_shows_them(tmp_path):
    r = Running(tmp_path / "nosess.duckdb").start()
    with shutdown(r.provider()) as tracer:
        for attrs in ({"alephant.session.id": "s1", "alephant.cost.amount": 1}, {"alephant.cost.amount": 2}):
            with tracer.start_as_current_span("x", attributes=attrs):
                pass
    assert [x["session_id"] for x in r.rows("SELECT session_id FROM sessions")] == ["s1"]
    r.stop()
    out = json.loads(CliRunner().invoke(main, ["cost", "--by", "session", "--db", str(r.db), "--format", "json"]).output)
    assert {x["session_id"]: x["cost"] for x in out} == {None: 2.0, "s1": 1.0}
