"""Model cost through the real receiver, checked against genai-prices itself."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from genai_prices import Usage, calc_price

from conftest import shutdown


def chat(tracer, name, model, provider="openai", response_model=None, **usage):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.provider.name": provider}
    if response_model:
        attrs["gen_ai.response.model"] = response_model
    attrs.update({f"gen_ai.usage.{k}": v for k, v in usage.items()})
    with tracer.start_as_current_span(name, attributes=attrs):
        pass


def test_cost_with_cache_and_reasoning_tokens_matches_genai_prices(receiver):
    with shutdown(receiver.provider()) as tracer:
        chat(tracer, "anthropic-cached", "claude-sonnet-4-5", "anthropic", input_tokens=12000,
             **{"cache_read.input_tokens": 8000, "cache_creation.input_tokens": 2000}, output_tokens=900)
        chat(tracer, "openai-reasoning", "o3-mini", "openai", input_tokens=4000,
             **{"cache_read.input_tokens": 1024, "reasoning.output_tokens": 700}, output_tokens=1000)
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    want_a = calc_price(Usage(input_tokens=12000, cache_read_tokens=8000, cache_write_tokens=2000, output_tokens=900),
                        model_ref="claude-sonnet-4-5", provider_id="anthropic", genai_request_timestamp=day).total_price
    want_o = calc_price(Usage(input_tokens=4000, cache_read_tokens=1024, output_tokens=1000),
                        model_ref="o3-mini", provider_id="openai", genai_request_timestamp=day).total_price
    a, o = receiver.step("anthropic-cached"), receiver.step("openai-reasoning")
    assert a["model_cost"] == want_a.quantize(Decimal("1e-12")) and a["cost_source"] == "computed"
    assert o["model_cost"] == want_o.quantize(Decimal("1e-12"))
    # the cache discount is real: pricing every input token at the full rate would cost more
    full = calc_price(Usage(input_tokens=12000, output_tokens=900), model_ref="claude-sonnet-4-5",
                      provider_id="anthropic", genai_request_timestamp=day).total_price
    assert a["model_cost"] < full
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_write_tokens"]) == (2000, 8000, 2000)
    assert (o["output_tokens"], o["reasoning_tokens"]) == (300, 700)
    assert a["currency"] == "USD" and a["priced_model"] == "claude-sonnet-4-5"
    assert a["price_source"].startswith("genai-prices ")
    run_cost = receiver.rows("SELECT sum(cost) AS c FROM runs")[0]["c"]
    assert run_cost == a["model_cost"] + o["model_cost"]


def test_response_model_is_billed_and_request_model_is_the_fallback(receiver):
    with shutdown(receiver.provider()) as tracer:
        chat(tracer, "dated", "gpt-4o-mini", response_model="gpt-4o-mini-2024-07-18", input_tokens=100, output_tokens=10)
        chat(tracer, "unknown-response", "gpt-4o-mini", response_model="gpt-4o-mini-future-snapshot-x9",
             input_tokens=100, output_tokens=10)
    dated, fallback = receiver.step("dated"), receiver.step("unknown-response")
    assert dated["model"] == "gpt-4o-mini-2024-07-18" and dated["cost_source"] == "computed"
    assert fallback["cost_source"] == "computed" and fallback["model_cost"] == dated["model_cost"]


def test_unknown_model_is_unpriced_with_a_reason_never_zero(receiver):
    with shutdown(receiver.provider()) as tracer:
        chat(tracer, "mystery", "totally-made-up-model-7b", "openai", input_tokens=100, output_tokens=10)
        chat(tracer, "self-hosted", "llama-3-8b", "my-own-gpu-box", input_tokens=100, output_tokens=10)
        with tracer.start_as_current_span("no-usage", attributes={"gen_ai.operation.name": "chat",
                                                                   "gen_ai.request.model": "gpt-4o"}):
            pass
    for name, reason in [("mystery", "no price for model 'totally-made-up-model-7b'"),
                         ("self-hosted", "from provider 'my-own-gpu-box'"),
                         ("no-usage", "no valid token usage")]:
        s = receiver.step(name)
        assert s["cost_source"] == "unpriced" and s["model_cost"] is None, name
        assert reason in s["unpriced_reason"], name
    run = receiver.rows("SELECT unpriced_steps FROM runs")
    assert sum(r["unpriced_steps"] for r in run) == 3


def test_tool_and_api_calls_are_priced_from_a_price_list_or_visibly_unpriced(tmp_path):
    from alephant_otel.price_list import PriceList
    from conftest import Running
    from opentelemetry.trace import SpanKind

    prices = PriceList.parse("""
version: test-1
tools: {search: 0.01}
apis:
  - {host: api.maps.example, method: GET, amount: 0.005}
""")
    r = Running(tmp_path / "tools.duckdb", prices=prices).start()
    try:
        with shutdown(r.provider()) as tracer:
            for tool in ("search", "unknown_tool"):
                with tracer.start_as_current_span(f"tool {tool}", attributes={
                        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}):
                    pass
            with tracer.start_as_current_span("GET maps", kind=SpanKind.CLIENT, attributes={
                    "http.request.method": "GET", "url.full": "https://api.maps.example/v1/geocode?q=x"}):
                pass
            with tracer.start_as_current_span("plan", attributes={"gen_ai.operation.name": "plan"}):
                pass
        priced, unknown, api, plan = (r.step(n) for n in ("tool search", "tool unknown_tool", "GET maps", "plan"))
    finally:
        r.stop()
    assert (priced["tool_cost"], priced["cost_source"], priced["price_source"]) == (Decimal("0.01"), "computed", "price list test-1")
    assert unknown["cost_source"] == "unpriced" and "no price for tool 'unknown_tool'" in unknown["unpriced_reason"]
    assert (api["step_kind"], api["api_host"], api["api_method"], api["tool_cost"]) == ("api_call", "api.maps.example", "GET", Decimal("0.005"))
    assert (plan["step_kind"], plan["cost_source"], plan["tool_cost"]) == ("workflow_action", None, None)


def test_fast_linear_prices_equal_genai_prices_exactly_including_tiers():
    """Costs come from rates measured once per model and day; they must equal genai-prices' own
    figure for every usage, on both sides of a tier (Claude's price doubles above 200k input)."""
    import random
    from alephant_otel.pricing import _price
    day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    rnd = random.Random(7)
    for provider, model in [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1")]:
        for _ in range(40):
            inp, cr, cw, out = (rnd.choice([0, rnd.randrange(1, 5000), rnd.randrange(150_000, 260_000)]) for _ in range(4))
            want = calc_price(Usage(input_tokens=inp + cr + cw, cache_read_tokens=cr or None, cache_write_tokens=cw or None,
                                    output_tokens=out), model_ref=model, provider_id=provider,
                              genai_request_timestamp=day).total_price.quantize(Decimal("1e-12"))
            got = _price(provider, model, inp, cr, cw, out, int(day.timestamp()) // 86400)[0]
            assert got == want, (model, inp, cr, cw, out)
