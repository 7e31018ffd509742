"""Model cost from token usage with the genai-prices package.

Each model-call step gets `cost_source`:
  computed  priced here from provider, model and the token buckets (cache rates included)
  provided  the span brought its own cost (llm.cost.total, operation.cost, gen_ai.usage.cost,
            alephant.cost.amount, or a mapping rule), which counts by default
  unpriced  could not be priced; `unpriced_reason` says why (never a silent 0)
`computed_cost` and `provided_cost` are both kept, so their difference is queryable.
Other steps carry no model cost; one that brings its own cost has cost_source `provided`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices import Usage, calc_price

PRICE_SOURCE = f"genai-prices {genai_prices.__version__}"
COST_PLACES = Decimal("0.000000000001")  # DECIMAL(18, 12)

# gen_ai.provider.name -> genai-prices provider id
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gcp.gen_ai": "google",
    "cohere": "cohere",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "perplexity": "perplexity",
    "moonshot_ai": "moonshotai",
}

_TOKEN_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")


@lru_cache(maxsize=65536)
def _price(provider_id: str | None, model: str, inp: int, cr: int, cw: int, out: int, day: int):
    usage = Usage(input_tokens=inp + cr + cw, cache_read_tokens=cr or None,
                  cache_write_tokens=cw or None, output_tokens=out)
    when = datetime.fromtimestamp(day * 86400, tz=timezone.utc)
    calc = calc_price(usage, model_ref=model, provider_id=provider_id, genai_request_timestamp=when)
    return calc.total_price.quantize(COST_PLACES), calc.model.id, calc.provider.id


COST_PREFERENCES = ("provided", "computed")


def price_step(step: dict, prefer: str = "provided") -> dict:
    """Fill computed_cost, model_cost, cost_source, unpriced_reason, currency, priced_model,
    priced_provider and price_source of one step (in place) and return it.

    A model call's cost is computed from its tokens whenever possible. When the span also brings
    its own cost (`provided_cost`), both are kept and `prefer` says which one counts as
    `model_cost`; the other is used when the preferred one is missing.
    """
    for f in ("model_cost", "computed_cost", "cost_source", "unpriced_reason", "currency",
              "priced_model", "priced_provider", "price_source"):
        step.setdefault(f, None)
    provided = step.get("provided_cost")
    if step.get("step_kind") != "model_call":
        if provided is not None:
            step.update(cost_source="provided", currency=step.get("provided_cost_currency") or "USD")
        return step
    reason = _compute(step)
    computed = step["computed_cost"]
    use_provided = provided is not None and (prefer == "provided" or computed is None)
    if use_provided:
        step.update(model_cost=provided, cost_source="provided", unpriced_reason=None,
                    currency=step.get("provided_cost_currency") or "USD")
    elif computed is not None:
        step.update(model_cost=computed, cost_source="computed", currency="USD")
    else:
        step.update(cost_source="unpriced", unpriced_reason=reason, currency=None)
    return step


def _compute(step: dict) -> str | None:
    """Set computed_cost and the price's provenance; return why it could not be, if it could not."""
    tokens = [step.get(f) for f in _TOKEN_FIELDS]
    if step.get("model") is None:
        return "no model on span"
    if all(t is None for t in tokens):
        return "no valid token usage on span"
    inp, cr, cw, out, rs = (t or 0 for t in tokens)
    provider = step.get("provider")
    # a provider we do not know is passed as is: genai-prices knows more than our table, and
    # an unknown one leaves the step unpriced rather than priced as some other provider's model
    provider_id = PROVIDERS.get(provider, provider) if provider else None
    day = (step.get("start_time") or 0) // 86_400_000_000
    candidates = [m for m in (step.get("response_model"), step.get("request_model")) if m]
    for model in dict.fromkeys(candidates or [step["model"]]):
        try:
            cost, priced_model, priced_provider = _price(provider_id, model, inp, cr, cw, out + rs, day)
        except LookupError:
            continue
        step.update(computed_cost=cost, priced_model=priced_model, priced_provider=priced_provider,
                    price_source=PRICE_SOURCE)
        return None
    return f"no price for model {step['model']!r}" + (f" from provider {provider!r}" if provider else "")


def price_steps(steps: list[dict], prefer: str = "provided") -> list[dict]:
    for s in steps:
        price_step(s, prefer)
    return steps
